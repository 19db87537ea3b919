//! Compiling `.hbs` files: Handlebars in strict mode without HTML escaping, and the variables
//! each template refers to, checked before rendering (strict mode alone does not see a missing
//! variable inside `{{#if}}`, or in a branch that is not taken).

use std::collections::BTreeMap;

use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
use handlebars::{Handlebars, Path, PathSeg, Template};
use pacha_core::Location;
use serde_json::Value;

use crate::error::RenderError;
use crate::helpers;

/// Handlebars' own helpers: `{{len}}` alone calls a helper, it does not read a variable.
const BUILT_IN_HELPERS: [&str; 17] = [
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not",
    "len",
];

/// A variable a template reads from the root of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VariableRef {
    pub segments: Vec<String>,
    /// As written in the template.
    pub written: String,
    pub line: usize,
    pub column: usize,
}

/// A fresh registry with pacha's settings: strict, no escaping, pacha's helpers.
pub(crate) fn registry() -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    helpers::register(&mut registry);
    registry
}

/// Compiles `text` as the template `name` (the master file it comes from), registers it, and
/// returns the root variables it refers to.
pub(crate) fn compile(
    registry: &mut Handlebars<'static>,
    name: &str,
    text: &str,
) -> Result<Vec<VariableRef>, RenderError> {
    let template = Template::compile_with_name(text, name.to_owned()).map_err(|err| {
        let (line, column) = err
            .pos()
            .map_or((None, None), |(line, column)| (Some(line), Some(column)));
        RenderError::Template {
            at: Location {
                file: name.to_owned(),
                line,
                column,
            },
            message: err.reason().to_string(),
        }
    })?;
    if let Some((partial, line)) = recursive_partial(name, &template) {
        return Err(RenderError::Template {
            at: Location::line(name, Some(line)),
            message: format!(
                "partial {partial:?} includes itself (directly or through others); a template cannot recurse"
            ),
        });
    }
    let mut references = Vec::new();
    walk(&template, true, (1, 1), &is_helper, &mut references);
    registry.register_template(name, template);
    Ok(references)
}

/// The partials each part of a template includes: the template itself (under `name`) and every
/// inline partial it defines, with the line of each include.
fn partial_calls(name: &str, template: &Template) -> BTreeMap<String, Vec<(String, usize)>> {
    fn walk(template: &Template, owner: &str, calls: &mut BTreeMap<String, Vec<(String, usize)>>) {
        for (index, element) in template.elements.iter().enumerate() {
            let line = template.mapping.get(index).map_or(1, |mapping| mapping.0);
            match element {
                TemplateElement::PartialExpression(partial) | TemplateElement::PartialBlock(partial) => {
                    if let Some(called) = partial.name.as_name() {
                        calls
                            .entry(owner.to_owned())
                            .or_default()
                            .push((called.to_owned(), line));
                    }
                    if let Some(body) = &partial.template {
                        walk(body, owner, calls);
                    }
                }
                TemplateElement::DecoratorBlock(decorator) if decorator.name.as_name() == Some("inline") => {
                    let inline = match decorator.params.first() {
                        Some(Parameter::Literal(Value::String(inline))) => inline.clone(),
                        _ => continue,
                    };
                    calls.entry(inline.clone()).or_default();
                    if let Some(body) = &decorator.template {
                        walk(body, &inline, calls);
                    }
                }
                TemplateElement::HelperBlock(helper) => {
                    for body in helper.template.iter().chain(&helper.inverse) {
                        walk(body, owner, calls);
                    }
                }
                _ => {}
            }
        }
    }
    let mut calls = BTreeMap::new();
    calls.insert(name.to_owned(), Vec::new());
    walk(template, name, &mut calls);
    calls
}

/// A partial of `template` that can reach itself, with the line of an include on the way.
fn recursive_partial(name: &str, template: &Template) -> Option<(String, usize)> {
    let calls = partial_calls(name, template);
    for start in calls.keys() {
        // Depth first from `start` over what it includes; reaching `start` again is a loop.
        let mut stack: Vec<(&str, usize)> = calls[start]
            .iter()
            .map(|(called, line)| (called.as_str(), *line))
            .collect();
        let mut seen: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        while let Some((current, line)) = stack.pop() {
            if current == start {
                return Some((start.clone(), line));
            }
            if seen.insert(current)
                && let Some(next) = calls.get(current)
            {
                stack.extend(next.iter().map(|(called, line)| (called.as_str(), *line)));
            }
        }
    }
    None
}

/// The first reference that `data` does not define.
pub(crate) fn first_undefined<'a>(references: &'a [VariableRef], data: &Value) -> Option<&'a VariableRef> {
    references.iter().find(|reference| !resolves(&reference.segments, data))
}

fn resolves(segments: &[String], data: &Value) -> bool {
    let mut current = data;
    for segment in segments {
        current = match current {
            Value::Object(map) => match map.get(segment) {
                Some(value) => value,
                None => return false,
            },
            Value::Array(items) => match segment.parse::<usize>().ok().and_then(|index| items.get(index)) {
                Some(value) => value,
                None => return false,
            },
            _ => return false,
        };
    }
    true
}

/// Collects the references of `template`; `at_root` says whether the context is still the
/// root data (inside `#each` or `#with` it is not, and only `@root.` paths can be checked).
fn walk(
    template: &Template,
    at_root: bool,
    position: (usize, usize),
    is_helper: &dyn Fn(&str) -> bool,
    out: &mut Vec<VariableRef>,
) {
    for (index, element) in template.elements.iter().enumerate() {
        let position = template
            .mapping
            .get(index)
            .map_or(position, |mapping| (mapping.0, mapping.1));
        element_walk(element, at_root, position, is_helper, out);
    }
}

fn element_walk(
    element: &TemplateElement,
    at_root: bool,
    position: (usize, usize),
    is_helper: &dyn Fn(&str) -> bool,
    out: &mut Vec<VariableRef>,
) {
    match element {
        TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
            helper_references(helper, at_root, position, is_helper, out);
        }
        TemplateElement::HelperBlock(helper) => {
            helper_references(helper, at_root, position, is_helper, out);
            let keeps_context = matches!(&helper.name, Parameter::Name(name) if name == "if" || name == "unless");
            if let Some(body) = &helper.template {
                walk(body, at_root && keeps_context, position, is_helper, out);
            }
            if let Some(inverse) = &helper.inverse {
                walk(inverse, at_root, position, is_helper, out);
            }
        }
        _ => {}
    }
}

fn is_helper(candidate: &str) -> bool {
    BUILT_IN_HELPERS.contains(&candidate) || helpers::HELPERS.contains(&candidate)
}

/// The root variables one element of a template (at `position`) reads.
pub(crate) fn element_references(element: &TemplateElement, position: (usize, usize)) -> Vec<VariableRef> {
    let mut out = Vec::new();
    element_walk(element, true, position, &is_helper, &mut out);
    out
}

/// The variable an expression prints as it is (`{{port}}`, `{{nginx.port}}`), when it is one.
pub(crate) fn printed_variable(helper: &HelperTemplate) -> Option<Vec<String>> {
    if !helper.params.is_empty() || !helper.hash.is_empty() || helper.block_param.is_some() {
        return None;
    }
    let Parameter::Path(path) = &helper.name else {
        return None;
    };
    let mut references = Vec::new();
    path_reference(path, true, (1, 1), &mut references);
    let reference = references.pop()?;
    (!(reference.segments.len() == 1 && is_helper(&reference.segments[0]))).then_some(reference.segments)
}

fn helper_references(
    helper: &HelperTemplate,
    at_root: bool,
    position: (usize, usize),
    is_helper: &dyn Fn(&str) -> bool,
    out: &mut Vec<VariableRef>,
) {
    let helper_name = match &helper.name {
        Parameter::Name(name) => Some(name.as_str()),
        Parameter::Path(Path::Relative((segments, _))) if segments.len() == 1 => match &segments[0] {
            PathSeg::Named(name) if is_helper(name) => Some(name.as_str()),
            _ => None,
        },
        _ => None,
    };
    match (&helper.name, helper_name) {
        (Parameter::Path(path), None) => path_reference(path, at_root, position, out),
        (Parameter::Subexpression(sub), _) => {
            subexpression_references(sub.as_element(), at_root, position, is_helper, out)
        }
        _ => {}
    }
    // `default` exists to read a variable that may be missing.
    let skip_first = helper_name == Some("default");
    for (index, param) in helper.params.iter().enumerate() {
        if !(skip_first && index == 0) {
            param_references(param, at_root, position, is_helper, out);
        }
    }
    for param in helper.hash.values() {
        param_references(param, at_root, position, is_helper, out);
    }
}

fn subexpression_references(
    element: &TemplateElement,
    at_root: bool,
    position: (usize, usize),
    is_helper: &dyn Fn(&str) -> bool,
    out: &mut Vec<VariableRef>,
) {
    if let TemplateElement::Expression(helper) = element {
        helper_references(helper, at_root, position, is_helper, out);
    }
}

fn param_references(
    param: &Parameter,
    at_root: bool,
    position: (usize, usize),
    is_helper: &dyn Fn(&str) -> bool,
    out: &mut Vec<VariableRef>,
) {
    match param {
        Parameter::Path(path) => path_reference(path, at_root, position, out),
        Parameter::Subexpression(sub) => subexpression_references(sub.as_element(), at_root, position, is_helper, out),
        _ => {}
    }
}

fn path_reference(path: &Path, at_root: bool, position: (usize, usize), out: &mut Vec<VariableRef>) {
    let Path::Relative((segments, written)) = path else {
        return;
    };
    let from_root = written.starts_with("@root");
    if !(at_root || from_root) {
        return;
    }
    let mut named = Vec::with_capacity(segments.len());
    for (index, segment) in segments.iter().enumerate() {
        match segment {
            PathSeg::Named(name) => named.push(name.clone()),
            // `@root` at the start is fine; `../` or anything else makes the path relative to a
            // context this check does not follow.
            _ if index == 0 && from_root => {}
            _ => return,
        }
    }
    if named.is_empty() {
        return;
    }
    out.push(VariableRef {
        segments: named,
        written: written.clone(),
        line: position.0,
        column: position.1,
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refs(text: &str) -> Vec<String> {
        let mut registry = registry();
        compile(&mut registry, "t.hbs", text)
            .unwrap()
            .into_iter()
            .map(|r| format!("{}@{}:{}", r.segments.join("."), r.line, r.column))
            .collect()
    }

    #[test]
    fn finds_root_references_in_branches_and_params() {
        assert_eq!(refs("{{a}}\n  {{b.c}}"), ["a@1:1", "b.c@2:3"]);
        assert_eq!(
            refs("{{#if x}}{{y}}{{else}}{{z}}{{/if}}"),
            ["x@1:1", "y@1:10", "z@1:23"]
        );
        assert_eq!(
            refs("{{upper name}} {{join (lower a) sep}}"),
            ["name@1:1", "a@1:16", "sep@1:16"]
        );
        assert_eq!(
            refs("{{#each items}}{{this.x}} {{@index}} {{@root.top}}{{/each}}"),
            ["items@1:1", "top@1:38"]
        );
        assert_eq!(refs("{{default maybe 1}} {{lookup m \"k\"}}"), ["m@1:21"]);
        assert_eq!(
            refs("{{#unless off}}{{on}}{{/unless}} {{#with w}}{{inner}}{{/with}}"),
            ["off@1:1", "on@1:16", "w@1:34"]
        );
    }

    #[test]
    fn undefined_is_found_in_data() {
        let mut registry = registry();
        let references = compile(&mut registry, "t.hbs", "{{a.b}} {{list.1}} {{#if c}}{{/if}}").unwrap();
        assert_eq!(
            first_undefined(&references, &json!({"a": {"b": 1}, "list": [0, 1], "c": false})),
            None
        );
        let missing = first_undefined(&references, &json!({"a": {"b": 1}, "list": [0], "c": null})).unwrap();
        assert_eq!(missing.written, "list.1");
    }

    #[test]
    fn recursive_partials_are_refused_before_rendering() {
        let mut registry = registry();
        for text in [
            "{{#*inline \"r\"}}{{> r}}{{/inline}}{{> r}}",
            "{{#*inline \"a\"}}{{> b}}{{/inline}}\n{{#*inline \"b\"}}{{> a}}{{/inline}}{{> a}}",
            "x\n{{> t.hbs}}",
        ] {
            let err = compile(&mut registry, "t.hbs", text).unwrap_err();
            assert!(err.to_string().contains("includes itself"), "{text}: {err}");
        }
        let fine = "{{#*inline \"row\"}}- {{this}}\n{{/inline}}{{#each items}}{{> row}}{{/each}}";
        compile(&mut registry, "t.hbs", fine).unwrap();
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let mut registry = registry();
        let err = compile(
            &mut registry,
            "templates/a/default/x.hbs",
            "line\n{{#if a}}\n{{/each}}\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("templates/a/default/x.hbs:3:"), "{text}");
    }
}
