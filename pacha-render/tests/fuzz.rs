//! Whatever a master holds, loading and rendering it gives a plan or an error, never a panic
//! or an abort (a stack overflow would end this test binary): random node files, settings and
//! templates built from the pieces that have crashed parsers and renderers before.

use proptest::prelude::*;

use pacha_core::Master;
use pacha_render::Renderer;

/// Pieces of YAML, valid and not.
fn yaml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("host: web1\n".to_owned()),
        Just("apps: [app]\n".to_owned()),
        Just("apps: [app, app]\n".to_owned()),
        Just("include_nodes: [web1]\n".to_owned()),
        Just("include_nodes: [meta]\n".to_owned()),
        Just("vars: {x: 1, y: {z: [1, 2]}}\n".to_owned()),
        Just("secrets: {x: s3cret}\n".to_owned()),
        Just("states: {production: {vars: {x: 2}}}\n".to_owned()),
        Just("vars:\n  x: 1\n  x: 2\n".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("key = value\n".to_owned()),
        Just("- [\n".to_owned()),
        Just("root: relative\n".to_owned()),
        Just("track: [\"/etc/[x\"]\n".to_owned()),
        Just("absent: [/etc/x]\n".to_owned()),
        "[a-z: \\[\\]{}\\n-]{0,24}",
    ]
}

/// Pieces of templates, valid and not.
fn template_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{x}}".to_owned()),
        Just("{{y.z}}".to_owned()),
        Just("{{#each y.z}}{{this}}{{/each}}".to_owned()),
        Just("{{#if x}}a{{else}}b{{/if}}".to_owned()),
        Just("{{add x 1}}".to_owned()),
        Just("{{indent 3000000000 x}}".to_owned()),
        Just("{{indent 2 x}}".to_owned()),
        Just("{{upper x}}{{lower x}}{{json y}}{{yaml y}}".to_owned()),
        Just("{{lookup y \"nope\"}}".to_owned()),
        Just("{{#*inline \"r\"}}{{> r}}{{/inline}}{{> r}}".to_owned()),
        Just("{{> missing}}".to_owned()),
        Just("{{#if}}".to_owned()),
        Just("{{".to_owned()),
        Just("}}".to_owned()),
        Just("{{undefined_var}}".to_owned()),
        "[a-z{}#/ \\n]{0,16}",
    ]
}

fn write(dir: &std::path::Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn loading_and_rendering_never_panics(
        settings in prop::collection::vec(yaml_piece(), 0..4),
        node in prop::collection::vec(yaml_piece(), 0..5),
        meta in prop::collection::vec(yaml_piece(), 0..3),
        template in prop::collection::vec(template_piece(), 0..6),
        app in prop::collection::vec(yaml_piece(), 0..2),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pacha.yaml", &settings.concat());
        write(dir.path(), "nodes/web1/web1.conf", &node.concat());
        write(dir.path(), "nodes/meta/meta.conf", &meta.concat());
        write(dir.path(), "templates/app/app.yaml", &app.concat());
        write(dir.path(), "templates/app/default/f.conf.hbs", &template.concat());
        if let Ok(master) = Master::open(dir.path()) {
            let _ = master.expand("meta");
            let renderer = Renderer::new(&master);
            for state in ["default", "production", "../x"] {
                let _ = renderer.plan("web1", state);
            }
        }
    }
}
