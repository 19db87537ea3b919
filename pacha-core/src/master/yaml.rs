//! Reading the master's YAML files with errors that name the file, line and column.

use serde::de::DeserializeOwned;

use crate::master::error::ConfigError;

/// Parses `text`, the contents of the master file shown to the user as `file`.
///
/// A line written as `key = value` (the seed's own example used that form) gets an error that
/// shows the YAML to write instead, before YAML parsing would give a more puzzling one.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    // Editors on some systems start a UTF-8 file with a byte order mark; it is no YAML.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some((line, found, suggestion)) = find_key_equals_value(text) {
        return Err(ConfigError::KeyEqualsValue {
            file: file.to_owned(),
            line,
            found,
            suggestion,
        });
    }
    // An empty file is an empty mapping, not an error: a node may need nothing but defaults.
    let is_empty = text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    });
    let text = if is_empty { "{}" } else { text };
    // A key written twice in one block mapping is named at its second line (the parser says
    // 1:1 for struct fields, and keeps the last silently in maps of variables).
    if let Some((line, key)) = find_duplicate_key(text) {
        return Err(ConfigError::Yaml {
            file: file.to_owned(),
            line: Some(line),
            column: None,
            message: format!("duplicate key `{key}` (it is already set above, in the same mapping)"),
        });
    }
    yaml_serde::from_str(text).map_err(|err| yaml_error(file, &err))
}

/// The first key of a block mapping that is written twice in it, with its line. Block scalars
/// (`|`, `>`), comments and flow collections are passed over.
fn find_duplicate_key(text: &str) -> Option<(usize, String)> {
    // Open mappings, innermost last: their indentation and the keys seen in them.
    let mut open: Vec<(usize, Vec<String>)> = Vec::new();
    // While inside a block scalar: the indentation its content is deeper than.
    let mut scalar_above: Option<usize> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut indent = raw.len() - trimmed.len();
        if let Some(above) = scalar_above {
            if indent > above {
                continue;
            }
            scalar_above = None;
        }
        if trimmed == "---" || trimmed.starts_with("...") {
            open.clear();
            continue;
        }
        let mut rest = trimmed;
        // A list item starts a new mapping at the item's content.
        while let Some(after) = rest.strip_prefix("- ").or_else(|| (rest == "-").then_some("")) {
            open.retain(|(level, _)| *level <= indent);
            if open.last().is_some_and(|(level, _)| *level == indent) {
                open.pop();
            }
            indent += rest.len() - after.len();
            rest = after.trim_start();
            open.retain(|(level, _)| *level < indent);
            open.push((indent, Vec::new()));
        }
        let Some(key) = block_key(rest) else {
            continue;
        };
        open.retain(|(level, _)| *level <= indent);
        match open.last_mut() {
            Some((level, keys)) if *level == indent => {
                if keys.contains(&key) {
                    return Some((index + 1, key));
                }
                keys.push(key.clone());
            }
            _ => open.push((indent, vec![key.clone()])),
        }
        let value = rest[rest.find(':').map_or(rest.len(), |at| at + 1)..].trim();
        let value = value.split(" #").next().unwrap_or_default().trim();
        if value.starts_with('|') || value.starts_with('>') {
            scalar_above = Some(indent);
        }
    }
    None
}

/// The key of a line `key: value` (or `key:`), unquoted; `None` for anything else.
fn block_key(line: &str) -> Option<String> {
    let (key, quoted) = match line.chars().next()? {
        quote @ ('"' | '\'') => {
            let end = line[1..].find(quote)? + 1;
            (&line[1..end], &line[end + 1..])
        }
        '{' | '[' | '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`' => return None,
        _ => {
            let colon = line
                .find(": ")
                .or_else(|| line.ends_with(':').then(|| line.len() - 1))?;
            (&line[..colon], &line[colon..])
        }
    };
    (quoted.starts_with(':') && !key.trim().is_empty()).then(|| key.trim().to_owned())
}

/// Converts a `yaml_serde` error into one that names the file, with the location split out.
pub fn yaml_error(file: &str, err: &yaml_serde::Error) -> ConfigError {
    let full = err.to_string();
    let message = match full.find(" at line ") {
        Some(cut) => full[..cut].to_owned(),
        None => full,
    };
    let (line, column) = err
        .location()
        .map_or((None, None), |at| (Some(at.line()), Some(at.column())));
    ConfigError::Yaml {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// Finds the first top-level line of the form `key = value` and returns its line number, the
/// line, and the YAML line to write instead.
fn find_key_equals_value(text: &str) -> Option<(usize, String, String)> {
    for (index, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim_end();
        let is_identifier = !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if !is_identifier || line.contains(": ") || line.trim_end().ends_with(':') {
            continue;
        }
        let value = value.trim();
        let suggestion = if key == "include_nodes" {
            format!("include_nodes: [{}]", list_of_names(value).join(", "))
        } else {
            format!("{key}: {value}")
        };
        return Some((index + 1, line.trim().to_owned(), suggestion));
    }
    None
}

/// The names of a Python-style list such as `['srv1.conf', "srv2"]`, without `.conf`.
fn list_of_names(value: &str) -> Vec<String> {
    value
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|item| item.trim().trim_matches(|c| c == '\'' || c == '"'))
        .filter(|item| !item.is_empty())
        .map(|item| item.strip_suffix(".conf").unwrap_or(item).to_owned())
        .collect()
}

/// The first line (1-based) of `text` that contains `needle`.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|index| index + 1)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_duplicate_key_is_named_at_its_line() {
        let found = |text: &str| find_duplicate_key(text);
        assert_eq!(found("jobs: 1\nvars: {}\njobs: 2\n"), Some((3, "jobs".into())));
        assert_eq!(found("vars:\n  a: 1\n  b: 2\n  a: 3\n"), Some((4, "a".into())));
        // The same key in sibling mappings, list items or a block scalar is fine.
        assert_eq!(found("a:\n  x: 1\nb:\n  x: 2\n"), None);
        assert_eq!(found("files:\n  - match: a\n    mode: x\n  - match: b\n"), None);
        assert_eq!(found("note: |\n  a: 1\n  a: 2\nnext: 1\n"), None);
        assert_eq!(found("\"a b\": 1\n'a b': 2\n"), Some((2, "a b".into())));
        assert_eq!(found("files:\n  - match: a\n    match: b\n"), Some((3, "match".into())));
        let err = parse::<yaml_serde::Value>("nodes/n/n.conf", "host: a\napps: []\nhost: b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "nodes/n/n.conf:3: duplicate key `host` (it is already set above, in the same mapping)"
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_yaml_and_is_passed_over() {
        let value: yaml_serde::Value = parse("pacha.yaml", "\u{feff}vars: {a: 1}\n").unwrap();
        assert_eq!(value["vars"]["a"], yaml_serde::Value::from(1));
    }

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        include_nodes: Vec<String>,
        #[serde(default)]
        host: Option<String>,
    }

    #[test]
    fn seed_syntax_gets_the_yaml_to_write() {
        let err = parse::<Sample>(
            "nodes/srvs/srvs.conf",
            "# meta\ninclude_nodes = ['srv1.conf', 'srv2.conf']\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "nodes/srvs/srvs.conf:2: `include_nodes = ['srv1.conf', 'srv2.conf']` is not YAML; write `include_nodes: [srv1, srv2]` instead"
        );
        let err = parse::<Sample>("n.conf", "host = web1.example.com\n").unwrap_err();
        assert!(
            err.to_string().ends_with("write `host: web1.example.com` instead"),
            "{err}"
        );
    }

    #[test]
    fn yaml_values_with_equals_are_fine() {
        let sample: Sample = parse("n.conf", "host: \"a=b\"\n").unwrap();
        assert_eq!(sample.host.as_deref(), Some("a=b"));
    }

    #[test]
    fn unknown_keys_name_file_and_line() {
        let err = parse::<Sample>("nodes/web1/web1.conf", "host: a\nhots: b\n").unwrap_err();
        let ConfigError::Yaml { line, message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, Some(2));
        assert!(message.contains("unknown field `hots`"), "{message}");
    }

    #[test]
    fn empty_file_is_empty_mapping() {
        let sample: Sample = parse("n.conf", "\n# nothing\n").unwrap();
        assert!(sample.include_nodes.is_empty());
    }
}
