//! The crate's layers import in one direction only: `model` (plain data) ← `master` (loading)
//! ← `edges` (traits) ← `ops` (operations) ← `engine`. A module that imports from a layer above
//! its own would tie the layers into a cycle; this test reads the sources and refuses that.

use std::fs;
use std::path::Path;

/// The layers, lowest first, with the `crate::` paths that are above each.
const LAYERS: [(&str, &[&str]); 4] = [
    (
        "model",
        &[
            "crate::master",
            "crate::edges",
            "crate::ops",
            "crate::engine",
            "crate::error",
        ],
    ),
    (
        "master",
        &["crate::edges", "crate::ops", "crate::engine", "crate::error"],
    ),
    ("edges", &["crate::ops", "crate::engine", "crate::error"]),
    ("ops", &["crate::engine"]),
];

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push((path.display().to_string(), fs::read_to_string(&path).expect("source")));
        }
    }
}

#[test]
fn no_layer_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    for (layer, above) in LAYERS {
        let mut files = Vec::new();
        sources(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "no sources in {layer}");
        for (file, text) in files {
            // Tests may use anything; the layering is about the code they test.
            if file.ends_with("tests.rs") {
                continue;
            }
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for line in code.lines() {
                if above.iter().any(|path| line.contains(path)) {
                    offences.push(format!("{file}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "imports against the layering:\n{}",
        offences.join("\n")
    );
}
