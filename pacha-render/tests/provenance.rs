//! Blame and proposals over random templates and random hand edits: a blame has one line per
//! line rendered, and a proposal without conflicts, once made in the master, renders exactly
//! the live file.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use pacha_core::{EditedFile, Master, NodePath};
use pacha_render::Renderer;
use proptest::prelude::*;

/// Lines and blocks of a template.
fn block() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("plain line\n".to_owned()),
        Just("listen {{port}};\n".to_owned()),
        Just("{{x}} and {{port}}\n".to_owned()),
        Just("name {{upper name}}\n".to_owned()),
        Just("{{x}}{{port}}\n".to_owned()),
        Just("  {{~x~}}  tail\n".to_owned()),
        Just("nested {{deep.key}} end\n".to_owned()),
        Just("brace \\{{x}} kept\n".to_owned()),
        Just("\n".to_owned()),
    ];
    let lines = prop::collection::vec(line, 1..3).prop_map(|lines| lines.concat());
    prop_oneof![
        3 => lines.clone(),
        1 => (lines.clone(), lines.clone()).prop_map(|(a, b)| format!("{{{{#if flag}}}}\n{a}{{{{else}}}}\n{b}{{{{/if}}}}\n")),
        1 => lines.clone().prop_map(|a| format!("{{{{#unless flag}}}}\n{a}{{{{/unless}}}}\n")),
        1 => Just("{{#each list}}\n- {{this}}\n{{/each}}\n".to_owned()),
    ]
}

/// A hand edit of rendered `text`: (line index, kind, new text).
fn edit() -> impl Strategy<Value = (usize, u8, String)> {
    (0usize..12, 0u8..5, "[a-z0-9 {}]{0,8}")
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn render(dir: &Path) -> Option<String> {
    let master = Master::open(dir).ok()?;
    let plan = Renderer::new(&master).plan("web1", "default").ok()?;
    Some(String::from_utf8(plan.files[0].content.to_vec()).unwrap())
}

fn edited(text: &str, (index, kind, new): &(usize, u8, String)) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    if lines.is_empty() {
        return format!("{new}\n");
    }
    let at = index % lines.len();
    match kind {
        0 => lines[at] = format!("{new}\n"),
        1 => lines.insert(at + 1, format!("{new}\n")),
        2 => {
            lines.remove(at);
        }
        // A value changed in place.
        3 => lines[at] = lines[at].replace("80", &format!("8{}", new.len())),
        _ => lines[at] = lines[at].replace("ex", new),
    }
    lines.concat()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn proposals_render_the_live_file(blocks in prop::collection::vec(block(), 1..5), flag in any::<bool>(), edit in edit()) {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        write(dir, "pacha.yaml", "vars:\n  x: ex\n  deep: {key: v1}\n");
        write(dir, "templates/t/app.yaml", "dest: /etc\n");
        let template = blocks.concat();
        write(dir, "templates/t/default/t.conf.hbs", &template);
        write(
            dir,
            "nodes/web1/web1.conf",
            &format!("apps: [t]\nvars:\n  port: 80\n  name: web\n  flag: {flag}\n  list: [a, b]\n"),
        );
        let rendered = render(dir).unwrap();
        let master = Master::open(dir).unwrap();
        let renderer = Renderer::new(&master);
        let path = NodePath::parse("/etc/t.conf").unwrap();
        let blame = renderer.blame("web1", "default", &path).unwrap();
        let lines: Vec<&str> = rendered.split_inclusive('\n').map(|line| line.trim_end_matches('\n')).collect();
        let blamed: Vec<&str> = blame.lines.iter().map(|line| line.text.as_str()).collect();
        prop_assert_eq!(blamed, lines);
        for line in &blame.lines {
            if let Some(at) = line.template_line {
                prop_assert!(at >= 1 && at <= template.lines().count().max(1), "{:?} in\n{}", line.template_line, template);
            }
        }

        let live = edited(&rendered, &edit);
        prop_assume!(live != rendered);
        let proposal = renderer
            .propose(
                "web1",
                "default",
                &[EditedFile {
                    path: path.clone(),
                    recorded: Arc::from(rendered.as_bytes()),
                    live: Arc::from(live.as_bytes()),
                }],
            )
            .unwrap();
        for change in &proposal.changes {
            prop_assert_eq!(&fs::read_to_string(dir.join(&change.file)).unwrap(), &change.before);
            write(dir, &change.file, &change.after);
        }
        if proposal.conflicts.is_empty() {
            prop_assert!(!proposal.changes.is_empty());
            prop_assert_eq!(render(dir), Some(live), "template:\n{}\npatch:\n{}", template, proposal.patch());
        }
    }
}

/// A file placed per item of a list: its lines name the item's fields as set where the list is.
#[test]
fn blame_of_a_file_per_item_names_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "pacha.yaml", "vars:\n  domain: example.com\n");
    write(
        dir,
        "templates/web/app.yaml",
        "dest: /etc/web\nfiles:\n  - {match: \"sites/site.conf.hbs\", each: sites, as: \"sites/{{name}}.conf\"}\n",
    );
    write(
        dir,
        "templates/web/default/sites/site.conf.hbs",
        "server {{name}}.{{domain}}\nroot /srv/{{item.name}}\n",
    );
    write(
        dir,
        "nodes/web1/web1.conf",
        "apps: [web]\nvars:\n  sites:\n    - {name: a}\n    - {name: b}\n",
    );
    let master = Master::open(dir).unwrap();
    let renderer = Renderer::new(&master);
    let blame = renderer
        .blame("web1", "default", &NodePath::parse("/etc/web/sites/b.conf").unwrap())
        .unwrap();
    assert!(blame.each);
    assert_eq!(blame.lines[0].text, "server b.example.com");
    let vars: Vec<(&str, &str, Option<usize>)> = blame.lines[0]
        .vars
        .iter()
        .map(|var| (var.name.as_str(), var.set_in.as_str(), var.line))
        .collect();
    assert_eq!(
        vars,
        [
            ("name", "nodes/web1/web1.conf", Some(3)),
            ("domain", "pacha.yaml", Some(2))
        ]
    );
    assert_eq!(blame.lines[1].text, "root /srv/b");
    assert_eq!(blame.lines[1].vars[0].name, "item.name");
    assert_eq!(blame.lines[1].vars[0].set_in, "nodes/web1/web1.conf");
    // An item's value is not changed in place: a proposal lists it as a conflict.
    let proposal = renderer
        .propose(
            "web1",
            "default",
            &[EditedFile {
                path: NodePath::parse("/etc/web/sites/b.conf").unwrap(),
                recorded: Arc::from(&b"server b.example.com\nroot /srv/b\n"[..]),
                live: Arc::from(&b"server c.example.com\nroot /srv/b\n"[..]),
            }],
        )
        .unwrap();
    assert!(proposal.changes.is_empty());
    assert_eq!(proposal.conflicts.len(), 1, "{:?}", proposal.conflicts);
    assert!(
        proposal.conflicts[0].reason.contains("name"),
        "{:?}",
        proposal.conflicts
    );
}

/// One variable printed by two files: edited alike it is one change; edited to two values it
/// is a conflict named at both hunks, and neither is counted as proposed.
#[test]
fn a_value_edited_in_two_files_is_one_change_or_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "pacha.yaml", "vars:\n  port: 80\n");
    write(dir, "templates/t/app.yaml", "dest: /etc\n");
    write(dir, "templates/t/default/a.conf.hbs", "listen {{port}};\n");
    write(dir, "templates/t/default/b.conf.hbs", "port={{port}}\n");
    write(dir, "nodes/web1/web1.conf", "apps: [t]\n");
    let master = Master::open(dir).unwrap();
    let renderer = Renderer::new(&master);
    let edit = |path: &str, recorded: &str, live: &str| EditedFile {
        path: NodePath::parse(path).unwrap(),
        recorded: Arc::from(recorded.as_bytes()),
        live: Arc::from(live.as_bytes()),
    };
    let alike = renderer
        .propose(
            "web1",
            "default",
            &[
                edit("/etc/a.conf", "listen 80;\n", "listen 8080;\n"),
                edit("/etc/b.conf", "port=80\n", "port=8080\n"),
            ],
        )
        .unwrap();
    assert!(alike.conflicts.is_empty(), "{:?}", alike.conflicts);
    assert_eq!(alike.proposed.len(), 2);
    assert_eq!(alike.changes.len(), 1);
    assert_eq!(alike.changes[0].file, "pacha.yaml");
    assert_eq!(alike.changes[0].after, "vars:\n  port: 8080\n");

    let apart = renderer
        .propose(
            "web1",
            "default",
            &[
                edit("/etc/a.conf", "listen 80;\n", "listen 8080;\n"),
                edit("/etc/b.conf", "port=80\n", "port=9090\n"),
            ],
        )
        .unwrap();
    assert!(apart.changes.is_empty());
    assert!(apart.proposed.is_empty(), "{:?}", apart.proposed);
    let named: Vec<(String, Option<usize>)> = apart
        .conflicts
        .iter()
        .map(|conflict| (conflict.path.to_string(), conflict.line))
        .collect();
    assert_eq!(
        named,
        [("/etc/a.conf".to_owned(), Some(1)), ("/etc/b.conf".to_owned(), Some(1))]
    );
    assert!(
        apart.conflicts[0].reason.contains("port (set in pacha.yaml)"),
        "{:?}",
        apart.conflicts
    );
}
