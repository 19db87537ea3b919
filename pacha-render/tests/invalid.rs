//! Every broken master under `fixtures/invalid/` fails with a clear error, snapshotted.

use pacha_core::Master;
use pacha_render::{RenderError, Renderer};

/// What `pacha render NODE STATE` reports for a master, through the library.
fn render_error(dir: &std::path::Path, node: &str, state: &str) -> String {
    let result = (|| -> Result<(), RenderError> {
        let master = Master::open(dir)?;
        let renderer = Renderer::new(&master);
        for leaf in master.expand(node)? {
            renderer.plan(&leaf, state)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => panic!("{} rendered without error", dir.display()),
        Err(err) => err.to_string(),
    }
}

#[test]
fn every_invalid_case_has_its_error() {
    let cases = fixtures::invalid_cases();
    assert!(cases.len() >= 20, "fixtures/invalid has {} cases", cases.len());
    for case in cases {
        assert_eq!(case.command[0], "render", "{}", case.name);
        let message = render_error(&case.dir, &case.command[1], &case.command[2]);
        let fixtures_root = fixtures::root().canonicalize().unwrap();
        let message = message.replace(&fixtures_root.display().to_string(), "[fixtures]");
        insta::assert_snapshot!(case.name.clone(), message);
    }
}
