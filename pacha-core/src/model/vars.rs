//! Template variables and their layering.
//!
//! Precedence, lowest first: `pacha.yaml`, `app.yaml`, meta nodes (outer to inner), the node,
//! the node's state. Maps are merged key by key at every depth, so a node can change one key
//! of a map that `pacha.yaml` defines; any other value (lists included) is replaced whole.

use serde_json::Value;

/// A map of variables, in the order they were written.
pub type Vars = serde_json::Map<String, Value>;

/// Merges `over` into `base`: maps key by key, everything else replaced.
pub fn merge(base: &mut Vars, over: &Vars) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Object(inner)), Value::Object(over_inner)) => merge(inner, over_inner),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Every leaf of `vars` (a value that is not a non-empty map) with its dotted path.
pub fn leaves(vars: &Vars) -> Vec<(String, &Value)> {
    fn walk<'a>(prefix: &str, vars: &'a Vars, out: &mut Vec<(String, &'a Value)>) {
        for (key, value) in vars {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                Value::Object(inner) if !inner.is_empty() => walk(&path, inner, out),
                other => out.push((path, other)),
            }
        }
    }
    let mut out = Vec::new();
    walk("", vars, &mut out);
    out
}

/// Whether `vars` sets the dotted `path`, one of its parents, or something below it.
pub fn sets_path(vars: &Vars, path: &str) -> bool {
    let mut current = vars;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        match current.get(part) {
            None => return false,
            Some(Value::Object(inner)) if parts.peek().is_some() && !inner.is_empty() => current = inner,
            Some(_) => return true,
        }
    }
    true
}

/// Replaces every `{secret: true, value: X}` in `vars` by `X` and collects the secret values,
/// so that a single variable can be marked secret where it is written.
pub fn extract_marked_secrets(vars: &mut Vars, secrets: &mut Vec<String>) {
    for value in vars.values_mut() {
        if let Value::Object(inner) = value {
            let marked =
                inner.len() == 2 && inner.get("secret") == Some(&Value::Bool(true)) && inner.contains_key("value");
            if marked {
                let secret = inner.remove("value").unwrap_or(Value::Null);
                collect_secret_values(&secret, secrets);
                *value = secret;
            } else {
                extract_marked_secrets(inner, secrets);
            }
        }
    }
}

/// Folds a layer's `secrets` map into its `vars` (secrets win) after unwrapping the
/// `{secret: true, value: X}` marks in `vars`, and collects every secret value in `out`.
pub fn fold_secrets(vars: &mut Vars, secrets: &Vars, out: &mut Vec<String>) {
    extract_marked_secrets(vars, out);
    for value in secrets.values() {
        collect_secret_values(value, out);
    }
    merge(vars, secrets);
}

/// Every scalar inside `value`, as the text a template would print for it.
pub fn collect_secret_values(value: &Value, secrets: &mut Vec<String>) {
    match value {
        Value::String(text) if !text.is_empty() => secrets.push(text.clone()),
        Value::Number(number) => secrets.push(number.to_string()),
        Value::Array(items) => items.iter().for_each(|item| collect_secret_values(item, secrets)),
        Value::Object(map) => map.values().for_each(|item| collect_secret_values(item, secrets)),
        _ => {}
    }
}

/// Short, single-line text of a value for error messages.
pub fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars(value: Value) -> Vars {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn merges_maps_deeply_and_replaces_the_rest() {
        let mut base = vars(json!({"apache": {"port": 80, "user": "www"}, "list": [1, 2], "x": 1}));
        merge(
            &mut base,
            &vars(json!({"apache": {"port": 8080}, "list": [3], "y": {"a": 1}})),
        );
        assert_eq!(
            Value::Object(base),
            json!({"apache": {"port": 8080, "user": "www"}, "list": [3], "x": 1, "y": {"a": 1}})
        );
    }

    #[test]
    fn lists_leaves() {
        let v = vars(json!({"a": {"b": 1, "c": {}}, "d": "x"}));
        let paths: Vec<String> = leaves(&v).into_iter().map(|(path, _)| path).collect();
        assert_eq!(paths, ["a.b", "a.c", "d"]);
    }

    #[test]
    fn finds_set_paths() {
        let v = vars(json!({"a": {"b": 1}, "s": 2}));
        assert!(sets_path(&v, "a.b"));
        assert!(sets_path(&v, "a"));
        assert!(sets_path(&v, "s.t"));
        assert!(!sets_path(&v, "a.c"));
        assert!(!sets_path(&v, "z"));
    }

    #[test]
    fn marked_secrets_are_unwrapped_and_collected() {
        let mut v = vars(
            json!({"db": {"password": {"secret": true, "value": "hunter2"}}, "port": {"secret": true, "value": 5432}}),
        );
        let mut secrets = Vec::new();
        extract_marked_secrets(&mut v, &mut secrets);
        assert_eq!(Value::Object(v), json!({"db": {"password": "hunter2"}, "port": 5432}));
        assert_eq!(secrets, ["hunter2", "5432"]);
    }
}
