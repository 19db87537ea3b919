//! Snapshots of every plan of every fixture master, file contents included.

use std::fmt::Write as _;

use pacha_core::{Definition, Master};
use pacha_render::Renderer;

/// A plan as text: each file with destination, owner, group, mode, hash and source, and its
/// contents when it is text; then the scripts.
fn describe(master: &Master, state: &str) -> String {
    let renderer = Renderer::new(master);
    let mut text = String::new();
    for name in master.graph().names() {
        if !matches!(master.graph().definition(name).unwrap(), Definition::Node(_)) {
            continue;
        }
        let plan = renderer
            .plan(name, state)
            .unwrap_or_else(|err| panic!("{name} {state}: {err}"));
        writeln!(text, "== {name} ({state}) host={}", plan.target.host).unwrap();
        for file in &plan.files {
            writeln!(
                text,
                "{} {}:{} {} {} <- {} [{}]",
                file.destination,
                file.owner.as_deref().unwrap_or("-"),
                file.group.as_deref().unwrap_or("-"),
                file.mode,
                file.sha256.short(16),
                file.source,
                file.app,
            )
            .unwrap();
            match std::str::from_utf8(&file.content) {
                Ok(body) if !body.contains('\0') => {
                    for line in body.lines() {
                        writeln!(text, "  | {line}").unwrap();
                    }
                }
                _ => writeln!(text, "  (binary, {} bytes)", file.content.len()).unwrap(),
            }
        }
        for script in &plan.scripts {
            writeln!(
                text,
                "{} {}/{} <- {} {}",
                script.stage,
                script.phase,
                script.name,
                script.source,
                script.sha256.short(16)
            )
            .unwrap();
        }
        if !plan.secrets.is_empty() {
            writeln!(text, "secrets: {}", plan.secrets.len()).unwrap();
        }
    }
    text
}

#[test]
fn every_fixture_master_in_every_state() {
    for master_name in fixtures::MASTERS {
        let master = Master::open(&fixtures::master(master_name)).unwrap();
        for state in master.states() {
            insta::assert_snapshot!(format!("{master_name}-{state}"), describe(&master, state));
        }
    }
}

#[test]
fn meta_expansion_of_the_fleet() {
    let master = Master::open(&fixtures::master("fleet")).unwrap();
    assert_eq!(
        master.expand("all").unwrap(),
        ["web1", "web2", "web3", "db1", "db2", "lb1"]
    );
    assert_eq!(master.expand("dmz").unwrap(), ["web3", "web1"]);
}

/// `pacha push web1` and `pacha push webservers` render the same files for web1: inheritance
/// does not depend on the target.
#[test]
fn a_node_renders_the_same_however_it_is_reached() {
    let master = Master::open(&fixtures::master("fleet")).unwrap();
    let renderer = Renderer::new(&master);
    let alone = renderer.plan("web1", "production").unwrap();
    let mut through_meta = None;
    pacha_core::Rendering::new(&master, &renderer)
        .with_threads(2)
        .render("all", "production", None, |plan| {
            if plan.node == "web1" {
                through_meta = Some(plan);
            }
            Ok::<(), pacha_core::EngineError>(())
        })
        .unwrap();
    assert_eq!(Some(alone), through_meta);
}

#[test]
fn config_files_get_ampersands_and_quotes_unescaped() {
    let master = Master::open(&fixtures::master("small")).unwrap();
    let plan = Renderer::new(&master).plan("app1", "production").unwrap();
    let hosts = std::str::from_utf8(&plan.files[0].content).unwrap();
    assert!(hosts.contains("Smith & Sons <ops@example.com>"), "{hosts}");
    assert!(hosts.contains(r#"it's "quoted" & <raw>"#), "{hosts}");
    assert!(hosts.contains("10.0.0.2 db & cache"), "{hosts}");
}

#[test]
fn non_utf8_files_are_copied_byte_for_byte() {
    let master = Master::open(&fixtures::master("fleet")).unwrap();
    let plan = Renderer::new(&master).plan("web2", "default").unwrap();
    let dir = fixtures::master("fleet").join("templates/assets/default");
    for (destination, source) in [
        ("/var/www/assets/latin1.txt", "latin1.txt"),
        ("/var/www/assets/logo.png", "logo.png"),
    ] {
        let file = plan
            .files
            .iter()
            .find(|f| f.destination.as_str() == destination)
            .unwrap();
        assert_eq!(&*file.content, std::fs::read(dir.join(source)).unwrap().as_slice());
    }
    let script = plan
        .files
        .iter()
        .find(|f| f.destination.as_str() == "/var/www/assets/bin/rotate.sh")
        .unwrap();
    assert_eq!(
        script.mode.to_string(),
        "0755",
        "an executable source keeps its x bits by default"
    );
}

/// The generated fleets the benchmarks push and render are valid masters in the state they
/// use (a benchmark that cannot run is found here, not when someone runs it).
#[test]
fn a_generated_fleet_renders_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let shape = fixtures::FleetShape {
        nodes: 6,
        metas: 2,
        templates: 4,
    };
    let leaves = fixtures::generate_fleet(dir.path(), shape, &|_| String::new());
    let master = Master::open(dir.path()).unwrap();
    let renderer = Renderer::new(&master);
    for leaf in &leaves {
        let plan = renderer.plan(leaf, "production").unwrap();
        assert_eq!(plan.files.len(), 4, "{leaf}");
    }
    assert_eq!(master.expand("fleet").unwrap(), leaves);
}
