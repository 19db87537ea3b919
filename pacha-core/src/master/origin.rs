//! Where a variable's value comes from: the layer, master file and line that set it (for
//! `pacha blame`), and changing a literal YAML value in place (for `pacha capture --propose`).
//!
//! The layers are read again from the master's files, in the precedence order of
//! [`Master::node_vars`](crate::Master::node_vars): `pacha.yaml` (its `vars`, `secrets`, the
//! encrypted `secrets/`, then its block for the state), `app.yaml` (its `vars`, `secrets`, its
//! state block), each meta node outer to inner, the node (`vars`, `secrets`, its encrypted
//! secrets, its state block). The highest layer that sets a path is where its value comes from.

use std::fs;

use serde::Serialize;
use serde_json::Value;

use crate::master::error::GraphError;
use crate::master::{Master, SETTINGS_FILE};

/// Where one variable's value was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VarOrigin {
    /// The master file (relative to the master), e.g. `nodes/web1/web1.conf` or
    /// `secrets/db_password.age`.
    pub file: String,
    /// Its line, when it is a YAML file and the key was found.
    pub line: Option<usize>,
    /// The YAML keys from the document's root to the value (empty for an encrypted secret).
    #[serde(skip)]
    pub keys: Vec<String>,
    /// Whether the value is a secret (never to be printed).
    pub secret: bool,
    /// Whether the value is written as it is, in a YAML file (not encrypted, not marked
    /// `{secret: true, value: …}`): one that can be changed in place.
    #[serde(skip)]
    pub literal: bool,
}

/// One layer: the map its file holds under `keys`.
#[derive(Debug, Clone)]
struct Layer {
    file: String,
    text: String,
    keys: Vec<String>,
    vars: Value,
    secret: bool,
    sealed: bool,
}

/// The layers of one node's variables in one state, lowest first.
#[derive(Debug, Clone, Default)]
pub struct VarLayers {
    master: Vec<Layer>,
    app: Vec<Layer>,
    upper: Vec<Layer>,
}

impl Master {
    /// The layers of `name`'s variables in `state`, read from the master's files, to find
    /// where each value comes from ([`VarLayers::origin`]). An app's layer is added with
    /// [`VarLayers::with_app`].
    pub fn var_layers(&self, name: &str, state: &str) -> Result<VarLayers, GraphError> {
        self.check_state(state)?;
        self.node(name)?;
        let mut layers = VarLayers::default();
        let sealed = |node: Option<&str>| -> Vec<Layer> {
            self.sealed
                .iter()
                .filter(|secret| secret.node.as_deref() == node)
                .map(|secret| Layer {
                    file: secret.file.clone(),
                    text: String::new(),
                    keys: Vec::new(),
                    vars: serde_json::json!({ secret.name.clone(): null }),
                    secret: true,
                    sealed: true,
                })
                .collect()
        };
        let settings = self.read_layer_file(SETTINGS_FILE);
        layers.master.extend(file_layers(SETTINGS_FILE, &settings, &[]));
        layers.master.extend(sealed(None));
        layers
            .master
            .extend(file_layers(SETTINGS_FILE, &settings, &["states", state]));
        let inherited = self.graph.inherited_vars(name, state, &|_| true)?;
        for meta in inherited.metas.iter().map(String::as_str).chain([name]) {
            let file = self.graph.file(meta).unwrap_or_default().to_owned();
            let text = self.read_layer_file(&file);
            layers.upper.extend(file_layers(&file, &text, &[]));
            if meta == name {
                layers.upper.extend(sealed(Some(name)));
            }
            layers.upper.extend(file_layers(&file, &text, &["states", state]));
        }
        Ok(layers)
    }

    fn read_layer_file(&self, file: &str) -> String {
        fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }
}

/// The `vars` and `secrets` layers of a YAML file, below `prefix` (nothing when it does not
/// parse: the master was loaded from it, so it did a moment ago).
fn file_layers(file: &str, text: &str, prefix: &[&str]) -> Vec<Layer> {
    let Ok(document) = yaml_serde::from_str::<Value>(text) else {
        return Vec::new();
    };
    let mut layers = Vec::new();
    for (key, secret) in [("vars", false), ("secrets", true)] {
        let keys: Vec<String> = prefix
            .iter()
            .map(|key| (*key).to_owned())
            .chain([key.to_owned()])
            .collect();
        let Some(value) = keys.iter().try_fold(&document, |at, key| at.get(key)) else {
            continue;
        };
        if value.is_object() {
            layers.push(Layer {
                file: file.to_owned(),
                text: text.to_owned(),
                keys,
                vars: value.clone(),
                secret,
                sealed: false,
            });
        }
    }
    layers
}

impl VarLayers {
    /// These layers with those of an app's `app.yaml` (shown as `file`, holding `text`) in
    /// `state`, between the master's and the nodes'.
    pub fn with_app(&self, file: &str, text: Option<&str>, state: &str) -> VarLayers {
        let mut layers = self.clone();
        if let Some(text) = text {
            layers.app = file_layers(file, text, &[]);
            layers.app.extend(file_layers(file, text, &["states", state]));
        }
        layers
    }

    /// Where the value at the dotted `path` comes from: the highest layer that sets it.
    pub fn origin(&self, path: &[String]) -> Option<VarOrigin> {
        self.master
            .iter()
            .chain(&self.app)
            .chain(&self.upper)
            .rev()
            .find_map(|layer| layer.origin(path))
    }
}

impl Layer {
    fn origin(&self, path: &[String]) -> Option<VarOrigin> {
        let mut value = &self.vars;
        let mut depth = 0;
        let mut marked = false;
        for segment in path {
            value = match value {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
            depth += 1;
            if is_marked_secret(value) {
                marked = true;
                break;
            }
        }
        if self.sealed {
            return Some(VarOrigin {
                file: self.file.clone(),
                line: None,
                keys: Vec::new(),
                secret: true,
                literal: false,
            });
        }
        let keys: Vec<String> = self.keys.iter().chain(&path[..depth]).cloned().collect();
        let located = locate(&self.text, &keys);
        Some(VarOrigin {
            file: self.file.clone(),
            line: located.as_ref().map(|found| found.line),
            literal: !self.secret && !marked && located.is_some_and(|found| found.value.is_some()),
            keys,
            secret: self.secret || marked,
        })
    }
}

/// `{secret: true, value: X}`: a variable marked secret where it is written.
fn is_marked_secret(value: &Value) -> bool {
    value.get("secret") == Some(&Value::Bool(true)) && value.get("value").is_some()
}

/// A key found in a YAML text: its line, and the byte range of its value when that is a
/// plain or quoted scalar on the same line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    line: usize,
    value: Option<(usize, usize)>,
}

/// Finds the nested `keys` in a block-style YAML `text` (a last key may sit in a one-line
/// flow mapping: `vars: {port: 80}`).
fn locate(text: &str, keys: &[String]) -> Option<Located> {
    let mut offsets = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        offsets.push(at);
        at += line.len();
    }
    let lines: Vec<&str> = text
        .split_inclusive('\n')
        .map(|line| line.trim_end_matches(['\n', '\r']))
        .collect();
    let mut start = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found: Option<usize> = None;
    for (depth, key) in keys.iter().enumerate() {
        let mut child_indent = None;
        let mut hit = None;
        for (index, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if parent_indent.is_some_and(|parent| indent <= parent) {
                break;
            }
            let child = *child_indent.get_or_insert(indent);
            if indent == child && key_rest(trimmed, key).is_some() {
                hit = Some(index);
                break;
            }
        }
        let Some(index) = hit else {
            // The rest may be inside a flow mapping on the parent's line.
            let parent = found?;
            if depth + 1 != keys.len() {
                return None;
            }
            let line = lines[parent];
            let open = line.find('{')?;
            let span = flow_value(&line[open..], key)?;
            return Some(Located {
                line: parent + 1,
                value: Some((offsets[parent] + open + span.0, offsets[parent] + open + span.1)),
            });
        };
        found = Some(index);
        parent_indent = child_indent;
        start = index + 1;
    }
    let index = found?;
    let line = lines[index];
    let rest = key_rest(line.trim_start(), keys.last()?)?;
    let rest_at = line.len() - rest.len();
    let value = scalar_span(rest).map(|(from, to)| (offsets[index] + rest_at + from, offsets[index] + rest_at + to));
    Some(Located { line: index + 1, value })
}

/// What follows `key:` at the start of `line`, when it starts with that key.
fn key_rest<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let line = line.strip_prefix("- ").unwrap_or(line);
    for quote in ["", "\"", "'"] {
        if let Some(rest) = line
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_prefix(key))
            .and_then(|rest| rest.strip_prefix(quote))
        {
            let rest = rest.trim_start_matches(' ');
            if let Some(value) = rest.strip_prefix(':')
                && (value.is_empty() || value.starts_with([' ', '\t']))
            {
                return Some(value);
            }
        }
    }
    None
}

/// The byte range in `rest` (what follows `key:`) of a scalar written on the line: plain or
/// quoted, without a trailing comment. `None` for a mapping, list, block scalar, anchor, alias
/// or tag, or nothing.
fn scalar_span(rest: &str) -> Option<(usize, usize)> {
    let start = rest.len() - rest.trim_start().len();
    let value = &rest[start..];
    if value.is_empty() || value.starts_with(['{', '[', '|', '>', '&', '*', '!', '#']) {
        return None;
    }
    let end = match value.as_bytes()[0] {
        quote @ (b'"' | b'\'') => {
            let mut index = 1;
            let bytes = value.as_bytes();
            loop {
                match bytes.get(index) {
                    None => return None,
                    Some(b'\\') if quote == b'"' => index += 2,
                    Some(&byte) if byte == quote => {
                        if quote == b'\'' && bytes.get(index + 1) == Some(&b'\'') {
                            index += 2;
                            continue;
                        }
                        break index + 1;
                    }
                    Some(_) => index += 1,
                }
            }
        }
        _ => value.find(" #").unwrap_or(value.len()),
    };
    let trimmed = value[..end].trim_end();
    Some((start, start + trimmed.len()))
}

/// The range of `key`'s scalar value in a one-line flow mapping `flow` (starting at `{`).
fn flow_value(flow: &str, key: &str) -> Option<(usize, usize)> {
    let inner = flow.strip_prefix('{')?;
    let mut at = 1;
    for part in inner.split(',') {
        let trimmed = part.trim_start();
        let lead = part.len() - trimmed.len();
        if let Some(rest) = key_rest(trimmed, key) {
            let rest_at = at + lead + (trimmed.len() - rest.len());
            let value = rest.trim_end().trim_end_matches('}').trim_end();
            let start = value.len() - value.trim_start().len();
            let value = value.trim_start();
            if value.is_empty() || value.starts_with(['{', '[', '"', '\'', '&', '*', '!']) {
                return None;
            }
            return Some((rest_at + start, rest_at + start + value.len()));
        }
        at += part.len() + 1;
    }
    None
}

/// `text` (a YAML file) with the scalar at `keys` changed to `new`, written as the kind of
/// value it was (a number stays a number when `new` is one); checked by reading the result
/// back: only that value differs. `Err` says why it cannot be done in place.
pub fn set_scalar(text: &str, keys: &[String], new: &str) -> Result<String, String> {
    let before: Value = yaml_serde::from_str(text).map_err(|err| format!("it does not parse: {err}"))?;
    let located = locate(text, keys).ok_or("the key was not found")?;
    let (from, to) = located.value.ok_or("the value is not a scalar written on its line")?;
    let old = keys
        .iter()
        .try_fold(&before, |at, key| at.get(key))
        .ok_or("the key was not found")?;
    let typed = match old {
        Value::Number(_) => match serde_json::from_str::<serde_json::Number>(new) {
            Ok(number) => Value::Number(number),
            Err(_) => Value::String(new.to_owned()),
        },
        Value::Bool(_) if new == "true" || new == "false" => Value::Bool(new == "true"),
        Value::String(_) | Value::Bool(_) => Value::String(new.to_owned()),
        _ => return Err("the value is not a single string, number or boolean".to_owned()),
    };
    let plain = match &typed {
        Value::String(string) => {
            let reads_back = yaml_serde::from_str::<Value>(&format!("k: {string}\n")).ok()
                == Some(serde_json::json!({ "k": string }));
            let quoted = text[from..to].starts_with(['"', '\'']);
            if reads_back && !quoted && !string.contains(" #") && string.trim() == string {
                string.clone()
            } else {
                serde_json::to_string(string).map_err(|err| err.to_string())?
            }
        }
        other => other.to_string(),
    };
    let changed = format!("{}{plain}{}", &text[..from], &text[to..]);
    let after: Value = yaml_serde::from_str(&changed).map_err(|err| format!("the change does not parse: {err}"))?;
    let mut expected = before.clone();
    let slot = keys
        .iter()
        .try_fold(&mut expected, |at, key| at.get_mut(key))
        .ok_or("the key was not found")?;
    *slot = typed;
    if after != expected {
        return Err("changing it in place changes more than the value".to_owned());
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(path: &str) -> Vec<String> {
        path.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn each_value_comes_from_the_highest_layer_that_sets_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(
            "pacha.yaml",
            "states:\n  default:\n  production:\n    vars:\n      level: prod\nvars:\n  level: base\n  only_master: 1\n  map: {a: 1, b: 1}\nsecrets:\n  token: t0ken\n",
        );
        write(
            "nodes/tier/tier.conf",
            "include_nodes: [web1]\nvars:\n  map:\n    b: 2\n  tier: gold\n",
        );
        write(
            "nodes/web1/web1.conf",
            "apps: []\nvars:\n  tier: silver\n  marked: {secret: true, value: x}\nstates:\n  production:\n    vars:\n      port: 443\n",
        );
        let master = Master::open(dir.path()).unwrap();
        let layers = master.var_layers("web1", "production").unwrap();
        let origin = |path: &str| {
            let path: Vec<String> = path.split('.').map(str::to_owned).collect();
            layers
                .origin(&path)
                .map(|origin| (origin.file, origin.line, origin.secret, origin.literal))
        };
        assert_eq!(origin("level"), Some(("pacha.yaml".into(), Some(5), false, true)));
        assert_eq!(origin("only_master"), Some(("pacha.yaml".into(), Some(8), false, true)));
        assert_eq!(origin("map.a"), Some(("pacha.yaml".into(), Some(9), false, true)));
        assert_eq!(
            origin("map.b"),
            Some(("nodes/tier/tier.conf".into(), Some(4), false, true))
        );
        assert_eq!(
            origin("tier"),
            Some(("nodes/web1/web1.conf".into(), Some(3), false, true))
        );
        assert_eq!(
            origin("port"),
            Some(("nodes/web1/web1.conf".into(), Some(8), false, true))
        );
        assert_eq!(origin("token"), Some(("pacha.yaml".into(), Some(11), true, false)));
        assert_eq!(
            origin("marked"),
            Some(("nodes/web1/web1.conf".into(), Some(4), true, false))
        );
        assert_eq!(origin("missing"), None);
        let with_app = layers.with_app("templates/a/app.yaml", Some("vars:\n  only_master: 2\n"), "production");
        let path = vec!["only_master".to_owned()];
        assert_eq!(with_app.origin(&path).unwrap().file, "templates/a/app.yaml");
    }

    #[test]
    fn keys_are_found_at_their_line_block_or_flow() {
        let text = "apps: [a]\nvars:\n  port: 80  # web\n  nested:\n    name: \"x y\"\nstates:\n  production:\n    vars: {port: 443, tier: prod}\n";
        let found = |path: &str| locate(text, &keys(path)).map(|located| located.line);
        assert_eq!(found("vars.port"), Some(3));
        assert_eq!(found("vars.nested.name"), Some(5));
        assert_eq!(found("states.production.vars.port"), Some(8));
        assert_eq!(found("states.production.vars.tier"), Some(8));
        assert_eq!(found("vars.missing"), None);
        let value = |path: &str| {
            let located = locate(text, &keys(path)).unwrap();
            located.value.map(|(from, to)| &text[from..to])
        };
        assert_eq!(value("vars.port"), Some("80"));
        assert_eq!(value("vars.nested.name"), Some("\"x y\""));
        assert_eq!(value("states.production.vars.tier"), Some("prod"));
        assert_eq!(value("vars.nested"), None);
    }

    #[test]
    fn a_scalar_changes_in_place_keeping_its_kind_and_comment() {
        let text = "vars:\n  port: 80  # web\n  name: web\n  quoted: \"a\"\n  flow: {x: 1, y: two}\n";
        assert_eq!(
            set_scalar(text, &keys("vars.port"), "8080").unwrap(),
            "vars:\n  port: 8080  # web\n  name: web\n  quoted: \"a\"\n  flow: {x: 1, y: two}\n"
        );
        assert!(
            set_scalar(text, &keys("vars.name"), "a: b")
                .unwrap()
                .contains("name: \"a: b\"\n")
        );
        assert!(
            set_scalar(text, &keys("vars.name"), "8080")
                .unwrap()
                .contains("name: \"8080\"\n")
        );
        assert!(
            set_scalar(text, &keys("vars.quoted"), "b")
                .unwrap()
                .contains("quoted: \"b\"\n")
        );
        assert!(
            set_scalar(text, &keys("vars.flow.y"), "three")
                .unwrap()
                .contains("{x: 1, y: three}")
        );
        assert!(
            set_scalar(text, &keys("vars.port"), "eighty")
                .unwrap()
                .contains("port: eighty  # web")
        );
        assert!(set_scalar(text, &keys("vars.flow"), "x").is_err());
        assert!(set_scalar("vars:\n  text: |\n    a\n", &keys("vars.text"), "b").is_err());
    }
}
