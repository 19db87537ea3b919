//! The helpers pacha registers besides Handlebars' built-ins (`if`, `each`, `eq`, `lookup`, ...):
//! small functions that configuration files need.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, JsonRender, RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use serde_json::Value;

type HelperFn = fn(&[&Value], &dyn Fn(&str) -> Option<Value>) -> Result<Value, String>;

/// A helper written as a plain function of its parameters and hash.
struct FunctionHelper {
    name: &'static str,
    function: HelperFn,
}

impl HelperDef for FunctionHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let params: Vec<&Value> = helper.params().iter().map(|param| param.value()).collect();
        let hash = |key: &str| helper.hash_get(key).map(|value| value.value().clone());
        (self.function)(&params, &hash)
            .map(ScopedJson::Derived)
            .map_err(|message| RenderErrorReason::Other(format!("helper `{}`: {message}", self.name)).into())
    }
}

/// The names of pacha's own helpers.
pub(crate) const HELPERS: [&str; 9] = [
    "upper", "lower", "add", "sub", "join", "default", "indent", "json", "yaml",
];

/// Registers pacha's helpers on `registry`.
pub(crate) fn register(registry: &mut Handlebars<'_>) {
    let helpers: [(&'static str, HelperFn); 9] = [
        ("upper", |p, _| Ok(Value::String(text(arg(p, 0, 1)?).to_uppercase()))),
        ("lower", |p, _| Ok(Value::String(text(arg(p, 0, 1)?).to_lowercase()))),
        ("add", |p, _| arithmetic(p, |a, b| a.checked_add(b), |a, b| a + b)),
        ("sub", |p, _| arithmetic(p, |a, b| a.checked_sub(b), |a, b| a - b)),
        ("join", join),
        ("default", |p, _| {
            let value = arg(p, 0, 2)?;
            let fallback = arg(p, 1, 2)?;
            Ok(if value.is_null() || value.as_str() == Some("") {
                fallback
            } else {
                value
            }
            .clone())
        }),
        ("indent", indent),
        ("json", |p, hash| {
            let value = arg(p, 0, 1)?;
            let pretty = hash("pretty").is_some_and(|v| v.as_bool() == Some(true));
            let rendered = if pretty {
                serde_json::to_string_pretty(value)
            } else {
                serde_json::to_string(value)
            };
            rendered.map(Value::String).map_err(|err| err.to_string())
        }),
        ("yaml", |p, _| {
            let value = arg(p, 0, 1)?;
            let rendered = yaml_serde::to_string(value).map_err(|err| err.to_string())?;
            Ok(Value::String(rendered.trim_end_matches('\n').to_owned()))
        }),
    ];
    for (name, function) in helpers {
        registry.register_helper(name, Box::new(FunctionHelper { name, function }));
    }
}

fn arg<'a>(params: &[&'a Value], index: usize, wanted: usize) -> Result<&'a Value, String> {
    params
        .get(index)
        .copied()
        .ok_or_else(|| format!("takes {wanted} parameter{}", if wanted == 1 { "" } else { "s" }))
}

/// A value as a template would print it.
fn text(value: &Value) -> String {
    value.render()
}

fn arithmetic(
    params: &[&Value],
    integer: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Value, String> {
    let a = number(arg(params, 0, 2)?)?;
    let b = number(arg(params, 1, 2)?)?;
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return integer(a, b)
            .map(Value::from)
            .ok_or_else(|| "integer overflow".to_owned());
    }
    let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) else {
        return Err("needs numbers".to_owned());
    };
    serde_json::Number::from_f64(float(a, b))
        .map(Value::Number)
        .ok_or_else(|| "result is not a number".to_owned())
}

/// A number, also from a string holding one (YAML authors quote numbers now and then).
fn number(value: &Value) -> Result<serde_json::Number, String> {
    match value {
        Value::Number(number) => Ok(number.clone()),
        Value::String(text) => text
            .trim()
            .parse::<i64>()
            .map(serde_json::Number::from)
            .or_else(|_| {
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .ok_or(())
            })
            .map_err(|()| "a parameter is not a number".to_owned()),
        _ => Err("a parameter is not a number".to_owned()),
    }
}

/// `{{join list ", "}}`: the items of a list as text, separated (default `, `).
fn join(params: &[&Value], _: &dyn Fn(&str) -> Option<Value>) -> Result<Value, String> {
    let list = arg(params, 0, 1)?;
    let separator = params.get(1).map_or_else(|| ", ".to_owned(), |value| text(value));
    let Value::Array(items) = list else {
        return Err(format!("needs a list, got {list}"));
    };
    Ok(Value::String(
        items.iter().map(text).collect::<Vec<_>>().join(&separator),
    ))
}

/// `{{indent 4 text}}`: every non-empty line of `text` indented by that many spaces.
/// The widest `indent`: wider is a mistake, and a width of billions would exhaust memory.
const MAX_INDENT: u64 = 1024;

fn indent(params: &[&Value], _: &dyn Fn(&str) -> Option<Value>) -> Result<Value, String> {
    let width = arg(params, 0, 2)?
        .as_u64()
        .filter(|width| *width <= MAX_INDENT)
        .ok_or_else(|| format!("the first parameter is the number of spaces, from 0 to {MAX_INDENT}"))?;
    let body = text(arg(params, 1, 2)?);
    let pad = " ".repeat(usize::try_from(width).map_err(|err| err.to_string())?);
    let indented: Vec<String> = body
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect();
    Ok(Value::String(indented.join("\n")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(template: &str, data: Value) -> Result<String, String> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        register(&mut registry);
        registry.render_template(template, &data).map_err(|err| err.to_string())
    }

    #[test]
    fn documented_examples() {
        let data =
            json!({"name": "Web", "port": 80, "hosts": ["a", "b"], "empty": null, "block": "x\ny", "m": {"k": [1]}});
        assert_eq!(
            render("{{upper name}} {{lower name}}", data.clone()).unwrap(),
            "WEB web"
        );
        assert_eq!(
            render("{{add port 363}} {{sub port 1}} {{add 1.5 1}}", data.clone()).unwrap(),
            "443 79 2.5"
        );
        assert_eq!(
            render("{{join hosts}}|{{join hosts \" \"}}", data.clone()).unwrap(),
            "a, b|a b"
        );
        assert_eq!(
            render("{{default empty 8080}} {{default port 1}}", data.clone()).unwrap(),
            "8080 80"
        );
        assert_eq!(render("{{indent 2 block}}", data.clone()).unwrap(), "  x\n  y");
        assert_eq!(render("{{json m}}", data.clone()).unwrap(), "{\"k\":[1]}");
        assert_eq!(render("{{yaml m}}", data.clone()).unwrap(), "k:\n- 1");
        assert_eq!(render("{{upper (join hosts \"-\")}}", data).unwrap(), "A-B");
    }

    #[test]
    fn helper_errors_say_which_helper() {
        let err = render("{{add name 1}}", json!({"name": "s3cret"})).unwrap_err();
        assert!(err.contains("helper `add`: a parameter is not a number"), "{err}");
        assert!(!err.contains("s3cret"), "a helper error never prints a value: {err}");
        let err = render("{{join name}}", json!({"name": "x"})).unwrap_err();
        assert!(err.contains("needs a list"), "{err}");
    }
}
