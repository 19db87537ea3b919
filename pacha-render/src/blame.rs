//! Provenance: for each line of a rendered file, the template line it came from and the
//! variables it printed, each with the master file and line that set it (`pacha blame`).
//!
//! A template is rendered again element by element with Handlebars' own renderer, so each
//! piece of output is known to come from a piece of the template: literal text (at a known
//! place in the template), a `{{…}}` expression, or a block (`#each`, `#with`, a partial) whose
//! output is not followed inside. `#if` and `#unless` are followed into the branch taken. When
//! the pieces do not add up to the file's rendering, every line is attributed to the template
//! as a whole, never to a wrong line.

use handlebars::template::{Parameter, TemplateElement, TemplateMapping};
use handlebars::{Context, Handlebars, RenderContext, Renderable, StringOutput, Template};
use pacha_core::{NodePath, VarLayers, VarOrigin};
use serde::Serialize;
use serde_json::Value;

use crate::template::{self, VariableRef};

/// What `pacha blame` shows for one file.
pub struct Blame {
    /// The node.
    pub node: String,
    /// The state it was rendered in.
    pub state: String,
    /// The file on the node.
    pub path: NodePath,
    /// The app that places it.
    pub app: String,
    /// The master file it is rendered (or copied) from.
    pub source: String,
    /// Whether it is a template (a copied file has no variables).
    pub template: bool,
    /// Whether it holds secrets (its secret lines read `<redacted>`).
    pub secret: bool,
    /// Placed once per item of a list (`each:` in app.yaml).
    pub each: bool,
    /// Its lines.
    pub lines: Vec<BlameLine>,
    /// The template's text and the data it was rendered with (for proposals).
    pub(crate) template_text: String,
    pub(crate) data: Value,
    /// The node's secret values (never to be printed or written into the master).
    pub(crate) secrets: Vec<String>,
}

/// One line of a rendered file.
pub struct BlameLine {
    /// 1-based.
    pub number: usize,
    /// The line as rendered; `<redacted>` when it holds a secret.
    pub text: String,
    /// The master file it comes from.
    pub template: String,
    /// Its line there, when the line comes from one place.
    pub template_line: Option<usize>,
    /// The variables it prints, in order.
    pub vars: Vec<BlameVar>,
    /// Whether it holds a secret.
    pub secret: bool,
    /// The line as rendered, with its line end (never to be printed when `secret`).
    pub(crate) rendered: String,
    /// What it is made of, when it is the rendering of exactly one template line.
    pub(crate) pieces: Option<Vec<Piece>>,
}

/// A variable printed on a line, and where its value was set.
#[derive(Debug, Clone, Serialize)]
pub struct BlameVar {
    /// As written in the template, e.g. `nginx.port`.
    pub name: String,
    /// The master file that set it (`built-in` for `pacha.*`).
    pub set_in: String,
    /// Its line there.
    pub line: Option<usize>,
    /// Whether its value is a secret.
    pub secret: bool,
    #[serde(skip)]
    pub(crate) origin: Option<VarOrigin>,
}

/// A piece of a line that is the rendering of one template line.
#[derive(Clone)]
pub(crate) enum Piece {
    /// Literal text, as written in the template.
    Raw(String),
    /// An expression's output: its text, the expression as written, and the variable it
    /// prints as it is (an index into the line's vars), when it does.
    Value {
        text: String,
        written: String,
        var: Option<usize>,
    },
}

/// A piece of the whole output.
struct Segment {
    text: String,
    kind: SegmentKind,
}

enum SegmentKind {
    /// Literal text at this byte of the template.
    Raw(usize),
    /// An expression at these bytes of the template.
    Expression {
        span: (usize, usize),
        references: Vec<VariableRef>,
        printed: Option<Vec<String>>,
    },
    /// A block, a partial, or text that could not be placed, from this template line on.
    Block { line: usize, references: Vec<VariableRef> },
}

/// Where one line of the template starts (byte offsets), for placing pieces.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn of(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        Lines { starts }
    }

    /// The 1-based line of byte `offset`.
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|start| *start <= offset)
    }

    /// The byte offset of a 1-based line and character column.
    fn offset(&self, text: &str, (line, column): (usize, usize)) -> Option<usize> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let rest = &text[start..];
        match column.checked_sub(1)? {
            0 => Some(start),
            skip => rest.char_indices().nth(skip).map(|(at, _)| start + at),
        }
    }

    /// The text of a 1-based line, without its line end.
    fn text<'a>(&self, text: &'a str, line: usize) -> &'a str {
        let Some(&start) = line.checked_sub(1).and_then(|index| self.starts.get(index)) else {
            return "";
        };
        let end = self.starts.get(line).map_or(text.len(), |next| next - 1);
        text[start..end].trim_end_matches('\r')
    }
}

/// Renders `template` (whose text is `source`) piece by piece; `None` when its pieces cannot
/// be rendered apart.
fn segments(registry: &Handlebars<'_>, template: &Template, source: &str, context: &Context) -> Option<Vec<Segment>> {
    let lines = Lines::of(source);
    let mut render_context = RenderContext::new(template.name.as_ref());
    let mut out = Vec::new();
    let mut cursor = 0;
    walk(
        registry,
        &template.elements,
        &template.mapping,
        (source, &lines),
        context,
        &mut render_context,
        &mut cursor,
        &mut out,
    )
    .ok()?;
    Some(out)
}

fn render_one<'reg: 'rc, 'rc>(
    registry: &'reg Handlebars<'reg>,
    element: &'rc TemplateElement,
    context: &'rc Context,
    render_context: &mut RenderContext<'reg, 'rc>,
) -> Result<String, handlebars::RenderError> {
    let mut output = StringOutput::new();
    element.render(registry, context, render_context, &mut output)?;
    Ok(output.into_string()?)
}

/// A `{{…}}` tag of a template: where it starts and ends, and what it does to nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Open,
    Close,
    Else,
    Other,
}

/// The next tag at or after byte `from`: its kind, start and end.
fn next_tag(source: &str, from: usize) -> Option<(Tag, usize, usize)> {
    let start = from + source.get(from..)?.find("{{")?;
    let inner = source[start + 2..].trim_start_matches(['{', '~']);
    let end = if inner.starts_with("!--") {
        start + source[start..].find("--}}")? + 4
    } else {
        let mut end = start + source[start..].find("}}")? + 2;
        while source[end..].starts_with('}') {
            end += 1;
        }
        end
    };
    let kind = if inner.starts_with('#') {
        Tag::Open
    } else if inner.starts_with('/') {
        Tag::Close
    } else if inner.starts_with("else") || inner.starts_with('^') {
        Tag::Else
    } else {
        Tag::Other
    };
    Some((kind, start, end))
}

/// From inside a block (at `from`, after its opening tag), the first tag of `wanted` kind at
/// its own level: its start and end.
fn tag_at_level(source: &str, mut from: usize, wanted: Tag) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    while let Some((kind, start, end)) = next_tag(source, from) {
        match kind {
            Tag::Open => depth += 1,
            Tag::Close if depth > 0 => depth -= 1,
            kind if kind == wanted && depth == 0 => return Some((start, end)),
            _ => {}
        }
        from = end;
    }
    None
}

#[expect(clippy::too_many_arguments, reason = "one walk's state")]
fn walk<'reg: 'rc, 'rc>(
    registry: &'reg Handlebars<'reg>,
    elements: &'rc [TemplateElement],
    mapping: &'rc [TemplateMapping],
    (source, lines): (&str, &Lines),
    context: &'rc Context,
    render_context: &mut RenderContext<'reg, 'rc>,
    cursor: &mut usize,
    out: &mut Vec<Segment>,
) -> Result<(), handlebars::RenderError> {
    for (index, element) in elements.iter().enumerate() {
        // Handlebars knows where tags start (not where literal text does).
        let tag_start = || {
            mapping
                .get(index)
                .and_then(|mapping| lines.offset(source, (mapping.0, mapping.1)))
                .filter(|at| *at >= *cursor && source[*at..].starts_with("{{"))
                .or_else(|| next_tag(source, *cursor).map(|(_, start, _)| start))
                .unwrap_or(*cursor)
        };
        let block = |text: String, line: usize, references: Vec<VariableRef>| Segment {
            text,
            kind: SegmentKind::Block { line, references },
        };
        match element {
            TemplateElement::RawString(_) => {
                let text = render_one(registry, element, context, render_context)?;
                if text.is_empty() {
                    continue;
                }
                // Whitespace control may have taken a little off the front.
                match source[*cursor..].find(&text) {
                    Some(found) => {
                        let at = *cursor + found;
                        *cursor = at + text.len();
                        out.push(Segment {
                            text,
                            kind: SegmentKind::Raw(at),
                        });
                    }
                    None => out.push(block(text, lines.line(*cursor), Vec::new())),
                }
            }
            TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                let start = tag_start();
                let here = (lines.line(start), 1);
                let text = render_one(registry, element, context, render_context)?;
                let references = template::element_references(element, here);
                match next_tag(source, start) {
                    Some((_, found, end)) if found == start && !text.contains('\n') => {
                        *cursor = end;
                        out.push(Segment {
                            text,
                            kind: SegmentKind::Expression {
                                span: (start, end),
                                references,
                                printed: template::printed_variable(helper),
                            },
                        });
                    }
                    found => {
                        if let Some((_, _, end)) = found {
                            *cursor = end;
                        }
                        out.push(block(text, here.0, references));
                    }
                }
            }
            TemplateElement::HelperBlock(helper) if matches!(&helper.name, Parameter::Name(name) if name == "if" || name == "unless") =>
            {
                let start = tag_start();
                let here = (lines.line(start), 1);
                let opened = next_tag(source, start).map_or(start, |(_, _, end)| end);
                let before = render_context.clone();
                let text = render_one(registry, element, context, render_context)?;
                // `{{else}}` starts the other branch; `{{else if …}}` is a block of its own.
                let otherwise = tag_at_level(source, opened, Tag::Else);
                let chained = |branch: &Template| matches!(branch.elements.first(), Some(TemplateElement::HelperBlock(inner)) if inner.chain);
                // The branch taken is the one that renders the same text.
                let mut followed = None;
                for (branch, from) in [
                    (&helper.template, Some(opened)),
                    (
                        &helper.inverse,
                        otherwise.map(|(tag, end)| {
                            if helper.inverse.as_ref().is_some_and(chained) {
                                tag
                            } else {
                                end
                            }
                        }),
                    ),
                ] {
                    let (Some(branch), Some(from)) = (branch, from) else {
                        continue;
                    };
                    let mut trial = before.clone();
                    let mut pieces = Vec::new();
                    let mut at = from;
                    let rendered = walk(
                        registry,
                        &branch.elements,
                        &branch.mapping,
                        (source, lines),
                        context,
                        &mut trial,
                        &mut at,
                        &mut pieces,
                    );
                    let same =
                        rendered.is_ok() && pieces.iter().map(|piece| piece.text.as_str()).collect::<String>() == text;
                    if same {
                        out.extend(pieces);
                        followed = Some(at);
                        break;
                    }
                }
                if followed.is_none() && !text.is_empty() {
                    out.push(block(text, here.0, template::element_references(element, here)));
                }
                // A chained `else if` ends where its first block does.
                *cursor = if helper.chain {
                    followed.unwrap_or(opened)
                } else {
                    tag_at_level(source, followed.unwrap_or(opened), Tag::Close).map_or(opened, |(_, end)| end)
                };
            }
            TemplateElement::Comment(_) => {
                if let Some((_, _, end)) = next_tag(source, *cursor) {
                    *cursor = end;
                }
            }
            _ => {
                let start = tag_start();
                let here = (lines.line(start), 1);
                let text = render_one(registry, element, context, render_context)?;
                let opened = next_tag(source, start).map_or(start, |(_, _, end)| end);
                let is_block = matches!(
                    element,
                    TemplateElement::HelperBlock(_)
                        | TemplateElement::DecoratorBlock(_)
                        | TemplateElement::PartialBlock(_)
                );
                *cursor = if is_block {
                    tag_at_level(source, opened, Tag::Close).map_or(opened, |(_, end)| end)
                } else {
                    opened
                };
                if !text.is_empty() {
                    out.push(block(text, here.0, template::element_references(element, here)));
                }
            }
        }
    }
    Ok(())
}

/// How a variable path is found: the item of an `each:` file, then the layers.
pub(crate) struct Origins<'a> {
    pub layers: &'a VarLayers,
    /// For a file placed per item: the list variable and the item.
    pub item: Option<(&'a [String], &'a Value)>,
}

impl Origins<'_> {
    fn var(&self, segments: &[String]) -> BlameVar {
        let name = segments.join(".");
        let from_item = self.item.filter(|(_, item)| {
            segments[0] == "item" || item.as_object().is_some_and(|fields| fields.contains_key(&segments[0]))
        });
        if segments[0] == "pacha" {
            return BlameVar {
                name,
                set_in: "built-in".to_owned(),
                line: None,
                secret: false,
                origin: None,
            };
        }
        let origin = match from_item {
            // The item's fields come from the list; they are not changed in place.
            Some((list, _)) => self.layers.origin(list).map(|origin| VarOrigin {
                literal: false,
                ..origin
            }),
            None => self.layers.origin(segments),
        };
        BlameVar {
            name,
            set_in: origin
                .as_ref()
                .map_or_else(|| "?".to_owned(), |origin| origin.file.clone()),
            line: origin.as_ref().and_then(|origin| origin.line),
            secret: origin.as_ref().is_some_and(|origin| origin.secret),
            origin,
        }
    }
}

/// Everything a blame needs of one rendered file.
pub(crate) struct Rendered<'a> {
    pub registry: &'a Handlebars<'static>,
    pub source: &'a str,
    pub text: &'a str,
    pub output: &'a str,
    pub data: &'a Value,
    pub secrets: &'a [String],
    pub shadow: Option<String>,
}

/// The lines of a rendered template with where each comes from.
pub(crate) fn template_lines(rendered: &Rendered<'_>, origins: &Origins<'_>) -> Vec<BlameLine> {
    let context = Context::from(rendered.data.clone());
    let template = rendered.registry.get_template(rendered.source);
    let lines = Lines::of(rendered.text);
    let pieces = template
        .and_then(|template| segments(rendered.registry, template, rendered.text, &context))
        .filter(|pieces| pieces.iter().map(|piece| piece.text.as_str()).collect::<String>() == rendered.output);
    let shadow_lines: Option<Vec<&str>> = rendered
        .shadow
        .as_deref()
        .map(|shadow| shadow.split_inclusive('\n').collect());
    let output_lines: Vec<&str> = rendered.output.split_inclusive('\n').collect();
    let Some(segments) = pieces else {
        // Not followed: the whole template, with every variable it reads.
        let mut references = Vec::new();
        if let Some(template) = template {
            for (index, element) in template.elements.iter().enumerate() {
                let here = template
                    .mapping
                    .get(index)
                    .map_or((1, 1), |mapping| (mapping.0, mapping.1));
                references.extend(template::element_references(element, here));
            }
        }
        let vars = dedup_vars(references.iter().map(|reference| origins.var(&reference.segments)));
        return output_lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                finish_line(
                    rendered,
                    index,
                    line,
                    (None, vars.clone(), None),
                    shadow_lines.as_deref(),
                    output_lines.len(),
                )
            })
            .collect();
    };

    // Split the segments into output lines.
    struct Building {
        text: String,
        first: Option<usize>,
        places: Vec<usize>,
        pieces: Vec<Piece>,
        written: String,
        vars: Vec<BlameVar>,
        block: bool,
    }
    let fresh = || Building {
        text: String::new(),
        first: None,
        places: Vec::new(),
        pieces: Vec::new(),
        written: String::new(),
        vars: Vec::new(),
        block: false,
    };
    let mut built: Vec<Building> = Vec::new();
    let mut current = fresh();
    for segment in &segments {
        let mut offset = 0;
        for chunk in segment.text.split_inclusive('\n') {
            let ends = chunk.ends_with('\n');
            let content = chunk.trim_end_matches('\n');
            current.text.push_str(chunk);
            match &segment.kind {
                SegmentKind::Raw(at) => {
                    let line = lines.line(at + offset);
                    if !content.is_empty() || current.first.is_none() {
                        current.first.get_or_insert(line);
                    }
                    current.places.push(line);
                    current.written.push_str(content);
                    current.pieces.push(Piece::Raw(content.to_owned()));
                }
                SegmentKind::Expression {
                    span,
                    references,
                    printed,
                } => {
                    let line = lines.line(span.0);
                    current.first.get_or_insert(line);
                    current.places.push(line);
                    let written = &rendered.text[span.0..span.1];
                    current.written.push_str(written);
                    let mut var = None;
                    for reference in references {
                        let blamed = origins.var(&reference.segments);
                        let index = match current.vars.iter().position(|known| known.name == blamed.name) {
                            Some(index) => index,
                            None => {
                                current.vars.push(blamed);
                                current.vars.len() - 1
                            }
                        };
                        if printed.as_ref() == Some(&reference.segments) {
                            var = Some(index);
                        }
                    }
                    current.pieces.push(Piece::Value {
                        text: content.to_owned(),
                        written: written.to_owned(),
                        var,
                    });
                }
                SegmentKind::Block { line, references } => {
                    current.first.get_or_insert(*line);
                    current.block = true;
                    for reference in references {
                        let blamed = origins.var(&reference.segments);
                        if !current.vars.iter().any(|known| known.name == blamed.name) {
                            current.vars.push(blamed);
                        }
                    }
                }
            }
            offset += chunk.len();
            if ends {
                built.push(std::mem::replace(&mut current, fresh()));
            }
        }
    }
    if !current.text.is_empty() {
        built.push(current);
    }
    built
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            // One template line, rendered whole: the pieces say how to change it.
            let single = line.first.filter(|first| {
                !line.block
                    && line.places.iter().all(|place| place == first)
                    && lines.text(rendered.text, *first) == line.written
            });
            let pieces = single.map(|_| line.pieces);
            finish_line(
                rendered,
                index,
                &line.text,
                (line.first, line.vars, pieces),
                shadow_lines.as_deref(),
                output_lines.len(),
            )
        })
        .collect()
}

fn finish_line(
    rendered: &Rendered<'_>,
    index: usize,
    text: &str,
    (template_line, vars, pieces): (Option<usize>, Vec<BlameVar>, Option<Vec<Piece>>),
    shadow: Option<&[&str]>,
    count: usize,
) -> BlameLine {
    let content = text.trim_end_matches('\n');
    let holds_secret = vars.iter().any(|var| var.secret)
        || rendered
            .secrets
            .iter()
            .any(|secret| !secret.is_empty() && content.contains(secret.as_str()))
        || match shadow {
            // A line the rendering without the secrets' values does not have came from one.
            Some(shadow) if shadow.len() == count => shadow[index] != text,
            Some(_) => !vars.is_empty(),
            None => false,
        };
    BlameLine {
        number: index + 1,
        text: if holds_secret {
            "<redacted>".to_owned()
        } else {
            content.to_owned()
        },
        template: rendered.source.to_owned(),
        template_line,
        vars,
        secret: holds_secret,
        rendered: text.to_owned(),
        pieces,
    }
}

fn dedup_vars(vars: impl Iterator<Item = BlameVar>) -> Vec<BlameVar> {
    let mut out: Vec<BlameVar> = Vec::new();
    for var in vars {
        if !out.iter().any(|known| known.name == var.name) {
            out.push(var);
        }
    }
    out
}

/// The lines of a file copied as it is: each from the same line of its source.
pub(crate) fn copied_lines(source: &str, content: &[u8]) -> Vec<BlameLine> {
    String::from_utf8_lossy(content)
        .split_inclusive('\n')
        .enumerate()
        .map(|(index, line)| BlameLine {
            number: index + 1,
            text: line.trim_end_matches('\n').to_owned(),
            template: source.to_owned(),
            template_line: Some(index + 1),
            vars: Vec::new(),
            secret: false,
            rendered: line.to_owned(),
            pieces: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blame(text: &str, data: Value) -> Vec<(Option<usize>, bool, String)> {
        let mut registry = template::registry();
        template::compile(&mut registry, "t.hbs", text).unwrap();
        let output = registry.render("t.hbs", &data).unwrap();
        let rendered = Rendered {
            registry: &registry,
            source: "t.hbs",
            text,
            output: &output,
            data: &data,
            secrets: &[],
            shadow: None,
        };
        let layers = VarLayers::default();
        let origins = Origins {
            layers: &layers,
            item: None,
        };
        template_lines(&rendered, &origins)
            .into_iter()
            .map(|line| (line.template_line, line.pieces.is_some(), line.text))
            .collect()
    }

    #[test]
    fn lines_point_at_their_template_line() {
        let text = "# head\nlisten {{port}};\n{{#if tls}}\nssl on;\n{{else}}\nssl off;\n{{/if}}\nname {{upper name}}\n{{#each list}}- {{this}}\n{{/each}}end\n";
        let lines = blame(
            text,
            serde_json::json!({"port": 80, "tls": false, "name": "web", "list": [1, 2]}),
        );
        assert_eq!(
            lines,
            [
                (Some(1), true, "# head".to_owned()),
                (Some(2), true, "listen 80;".to_owned()),
                (Some(6), true, "ssl off;".to_owned()),
                (Some(8), true, "name WEB".to_owned()),
                (Some(9), false, "- 1".to_owned()),
                (Some(9), false, "- 2".to_owned()),
                (Some(10), false, "end".to_owned()),
            ]
        );
    }

    #[test]
    fn chains_comments_and_whitespace_control_are_followed() {
        let text = "{{!-- a comment --}}\n{{#if a}}\nA\n{{else if b}}\nB {{b}}\n{{else}}\nC\n{{/if}}\n  {{~x~}}  tail\n{{#with w}}{{v}}{{/with}}\nlast {{x}}";
        let lines = blame(text, serde_json::json!({"a": false, "b": "bee", "x": 1, "w": {"v": 2}}));
        assert_eq!(
            lines,
            [
                (Some(5), true, "B bee".to_owned()),
                (Some(9), false, "1tail".to_owned()),
                (Some(10), false, "2".to_owned()),
                (Some(11), true, "last 1".to_owned()),
            ]
        );
    }
}
