//! Turning a node and a state into a [`Plan`].

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex, PoisonError};

use handlebars::{Context, Handlebars, RenderErrorReason};
use pacha_core::yaml::line_of;
use pacha_core::{
    ContentHash, HandledApp, Location, Master, Mode, NameKind, NodePath, NodeVars, OnFailure, Plan, PlanError,
    PlannedDir, PlannedFile, PlannedLink, PlannedScript, Planner, Stage, check_name,
};
use serde_json::{Value, json};

use crate::app::AppConfig;
use crate::blame::{self, Blame, Origins, Rendered};
use crate::error::RenderError;
use crate::template::{self, VariableRef};
use crate::tree;

/// Renders plans of one master. Templates are read and compiled once per app and state and
/// shared by every node, so rendering a fleet costs little more than rendering its templates.
/// A `Renderer` can be shared between threads.
pub struct Renderer<'m> {
    master: &'m Master,
    apps: Mutex<HashMap<(String, String), Arc<ResolvedApp>>>,
    phases: Mutex<HashMap<(Stage, String), ScriptList>>,
}

/// The scripts of one phase, in name order.
type ScriptList = Arc<Vec<ScriptSource>>;

/// An app in a state: its settings, files and compiled templates.
struct ResolvedApp {
    config: AppConfig,
    files: Vec<AppFile>,
    registry: Handlebars<'static>,
}

struct AppFile {
    destination: NodePath,
    /// One file per item of a list variable (`each:`/`as:` in app.yaml).
    each: Option<EachFile>,
    source: String,
    content: Content,
    owner: Option<String>,
    group: Option<String>,
    mode: Mode,
    validate: Option<String>,
}

impl AppFile {
    /// This file as a plan places it at `destination`, with its rendered content.
    fn planned(
        &self,
        destination: NodePath,
        app: &str,
        dir_mode: Mode,
        (content, sha256, secret): (Arc<[u8]>, ContentHash, bool),
    ) -> PlannedFile {
        PlannedFile {
            destination,
            app: app.to_owned(),
            source: self.source.clone(),
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode,
            dir_mode,
            content,
            sha256,
            secret,
            validate: self.validate.clone(),
        }
    }
}

/// A template placed once per item of a list: its name template, registered as `key`.
struct EachFile {
    var: Vec<String>,
    key: String,
    references: Vec<VariableRef>,
    at: Location,
}

enum Content {
    /// A `.hbs` file: rendered per node.
    Template(Vec<VariableRef>),
    /// Any other file, copied byte for byte.
    Bytes(Arc<[u8]>, ContentHash),
}

struct ScriptSource {
    name: String,
    source: String,
    content: Arc<[u8]>,
    sha256: ContentHash,
}

impl ScriptSource {
    /// This script as a plan runs it, in `phase` of `stage`; `handles` for a handler.
    fn planned(&self, stage: Stage, phase: &str, handles: Vec<HandledApp>) -> PlannedScript {
        PlannedScript {
            stage,
            phase: phase.to_owned(),
            name: self.name.clone(),
            source: self.source.clone(),
            content: self.content.clone(),
            sha256: self.sha256,
            handles,
        }
    }
}

/// What an app gives a file it places when no rule says otherwise ([`Renderer::file_defaults`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDefaults {
    /// The app's `dest`.
    pub dest: NodePath,
    /// The owner its settings set (`None`: the SSH user's).
    pub owner: Option<String>,
    /// The group its settings set (`None`: the SSH user's).
    pub group: Option<String>,
    /// The mode.
    pub mode: Mode,
}

impl<'m> Renderer<'m> {
    /// A renderer of `master`'s nodes.
    pub fn new(master: &'m Master) -> Renderer<'m> {
        Renderer {
            master,
            apps: Mutex::default(),
            phases: Mutex::default(),
        }
    }

    /// The master it renders.
    pub fn master(&self) -> &'m Master {
        self.master
    }

    /// The plan of node `name` (not a meta node) in `state`.
    pub fn plan(&self, name: &str, state: &str) -> Result<Plan, RenderError> {
        check_name(NameKind::State, state).map_err(pacha_core::ConfigError::StateName)?;
        let graph = self.master.graph();
        let node = graph.node(name)?;
        let node_file = graph.file(name).unwrap_or_default().to_owned();
        let node_text = || fs::read_to_string(self.master.dir().join(&node_file)).unwrap_or_default();
        let target = self.master.target(name)?;
        let node_vars = self.master.node_vars(name, state)?;

        let mut files = Vec::new();
        let mut absent = Vec::new();
        let mut links: Vec<PlannedLink> = Vec::new();
        let mut dirs: Vec<PlannedDir> = Vec::new();
        let mut secrets = node_vars.secrets.clone();
        for app_name in &node.apps {
            let at = || Location::line(&node_file, line_of(&node_text(), app_name));
            let app = self.app(app_name, state, at)?;
            secrets.extend(app.config.secrets.iter().cloned());
            absent.extend(app.config.absent.iter().cloned());
            for (path, target) in &app.config.links {
                links.push(PlannedLink {
                    path: path.clone(),
                    target: target.clone(),
                    app: app_name.clone(),
                });
            }
            for (path, attributes) in &app.config.dirs {
                dirs.push(PlannedDir {
                    path: path.clone(),
                    owner: attributes.owner.clone(),
                    group: attributes.group.clone(),
                    mode: attributes.mode.unwrap_or(Mode::EXECUTABLE),
                    app: app_name.clone(),
                });
            }
            let data = app_data(&node_vars, &app.config.vars, [name, &target.host, state, app_name]);
            let mut context: Option<Context> = None;
            // The same data with every secret value replaced: a file whose rendering differs
            // read a secret, whatever helper or partial it went through.
            let mut shadow: Option<Context> = None;
            for file in &app.files {
                if let Some(each) = &file.each {
                    let placed = each_files(&app, file, each, &data, &secrets, self.master.dir(), name, app_name)?;
                    files.extend(placed);
                    continue;
                }
                let (content, sha256, secret) = match &file.content {
                    Content::Bytes(bytes, hash) => (bytes.clone(), *hash, false),
                    Content::Template(references) => {
                        if let Some(missing) = template::first_undefined(references, &data) {
                            return Err(RenderError::UndefinedVariable {
                                at: Location {
                                    file: file.source.clone(),
                                    line: Some(missing.line),
                                    column: Some(missing.column),
                                },
                                variable: missing.segments.join("."),
                                node: name.to_owned(),
                            });
                        }
                        let context = context.get_or_insert_with(|| Context::from(data.clone()));
                        let text = app
                            .registry
                            .render_with_context(&file.source, context)
                            .map_err(|err| render_error(self.master.dir(), &file.source, name, &err))?;
                        let secret = !secrets.is_empty() && {
                            let shadow = shadow.get_or_insert_with(|| Context::from(shadowed(&data, &secrets)));
                            // A rendering that fails without the real values depends on them.
                            app.registry
                                .render_with_context(&file.source, shadow)
                                .map_or(true, |shadowed| shadowed != text)
                        };
                        let bytes: Arc<[u8]> = Arc::from(text.into_bytes());
                        let hash = ContentHash::of(&bytes);
                        (bytes, hash, secret)
                    }
                };
                files.push(file.planned(
                    file.destination.clone(),
                    app_name,
                    app.config.dir_mode,
                    (content, sha256, secret),
                ));
            }
        }
        files.sort_by(|a, b| a.destination.cmp(&b.destination));
        if let Some(pair) = files.windows(2).find(|pair| pair[0].destination == pair[1].destination) {
            return Err(RenderError::DuplicateDestination {
                node: name.to_owned(),
                destination: pair[0].destination.to_string(),
                first: pair[0].source.clone(),
                second: pair[1].source.clone(),
            });
        }
        // A destination that is also a folder of another one cannot be placed: the push would
        // create the folder, then fail to rename a file over it.
        let by_destination: HashMap<&str, &PlannedFile> =
            files.iter().map(|file| (file.destination.as_str(), file)).collect();
        for file in &files {
            let mut parent = file.destination.parent();
            while let Some(folder) = parent {
                if let Some(other) = by_destination.get(folder.as_str()) {
                    return Err(RenderError::FileAndFolder {
                        node: name.to_owned(),
                        path: folder.to_string(),
                        file: other.source.clone(),
                        inside: file.source.clone(),
                    });
                }
                parent = folder.parent();
            }
        }

        secrets.sort();
        secrets.dedup();
        let mut scripts = Vec::new();
        let mut health_scripts = Vec::new();
        for (stage, phases) in [(Stage::Pre, &node.scripts.pre), (Stage::Post, &node.scripts.post)] {
            for phase in phases {
                let at = || Location::line(&node_file, line_of(&node_text(), phase));
                for script in self.phase(stage, phase, at)?.iter() {
                    scripts.push(script.planned(stage, phase, Vec::new()));
                }
            }
        }
        // Health checks: the node's phases, else pacha.yaml's.
        let health = self.master.settings().health.overlaid(&node.health);
        for phase in health.scripts.iter().flatten() {
            let at = || Location::line(&node_file, line_of(&node_text(), phase));
            for script in self.phase(Stage::Health, phase, at)?.iter() {
                health_scripts.push(script.planned(Stage::Health, phase, Vec::new()));
            }
        }
        // Handlers: each app's `on_change` phases, after the node's own post phases, once per
        // push whichever of the apps naming a phase changed (a phase the node runs anyway is
        // not run twice).
        let mut handlers: Vec<(String, Vec<HandledApp>)> = Vec::new();
        for app_name in &node.apps {
            let at = || Location::line(&node_file, line_of(&node_text(), app_name));
            let app = self.app(app_name, state, at)?;
            for phase in &app.config.on_change {
                if node.scripts.post.contains(phase) {
                    continue;
                }
                let handled = HandledApp {
                    app: app_name.clone(),
                    dest: app.config.dest.clone(),
                };
                match handlers.iter_mut().find(|(name, _)| name == phase) {
                    Some((_, apps)) => apps.push(handled),
                    None => handlers.push((phase.clone(), vec![handled])),
                }
            }
        }
        for (phase, apps) in handlers {
            let shown = format!("templates/{}/app.yaml", apps[0].app);
            let at = || {
                let text = fs::read_to_string(self.master.dir().join(&shown)).unwrap_or_default();
                Location::line(&shown, line_of(&text, &phase))
            };
            for script in self.phase(Stage::Post, &phase, at)?.iter() {
                scripts.push(script.planned(Stage::Post, &phase, apps.clone()));
            }
        }
        scripts.extend(health_scripts);

        absent.extend(node.absent.iter().filter_map(|path| NodePath::parse(path).ok()));
        absent.sort();
        absent.dedup();
        // What the plan places is not absent.
        absent.retain(|path| files.binary_search_by(|file| file.destination.cmp(path)).is_err());
        links.sort_by(|a, b| a.path.cmp(&b.path));
        dirs.sort_by(|a, b| a.path.cmp(&b.path));
        // One thing per path: a file, a link or a folder; nothing placed through a managed link.
        let mut claimed: HashMap<&str, String> = files
            .iter()
            .map(|file| (file.destination.as_str(), file.source.clone()))
            .collect();
        for (path, what) in links
            .iter()
            .map(|link| (&link.path, format!("links: in templates/{}/app.yaml", link.app)))
            .chain(
                dirs.iter()
                    .map(|dir| (&dir.path, format!("dirs: in templates/{}/app.yaml", dir.app))),
            )
        {
            if let Some(first) = claimed.insert(path.as_str(), what.clone()) {
                return Err(RenderError::DuplicateDestination {
                    node: name.to_owned(),
                    destination: path.to_string(),
                    first,
                    second: what,
                });
            }
        }
        for link in &links {
            let inside = files
                .iter()
                .map(|file| &file.destination)
                .chain(dirs.iter().map(|dir| &dir.path))
                .find(|path| path.starts_with(&link.path) && **path != link.path);
            if let Some(inside) = inside {
                return Err(RenderError::FileAndFolder {
                    node: name.to_owned(),
                    path: link.path.to_string(),
                    file: format!("links: in templates/{}/app.yaml", link.app),
                    inside: inside.to_string(),
                });
            }
        }
        Ok(Plan {
            node: name.to_owned(),
            state: state.to_owned(),
            target,
            files,
            scripts,
            secrets,
            absent,
            links,
            dirs,
            script_timeout: node
                .scripts
                .timeout
                .or(self.master.settings().scripts.timeout)
                .filter(|seconds| *seconds > 0),
            keep_on_failure: node.on_failure.or(self.master.settings().on_failure) == Some(OnFailure::Keep),
            confirm_ssh: health.confirm(),
            expect: None,
        })
    }

    /// What `app` (in `state`) would give a file at `relative` to its `dest` when no
    /// `files:` rule is added: its `dest`, and the owner, group and mode its settings set
    /// (`None` for an owner or group it leaves to the SSH user). `None` when the master has no
    /// such app.
    pub fn file_defaults(&self, app: &str, state: &str, relative: &str) -> Result<Option<FileDefaults>, RenderError> {
        check_name(NameKind::App, app).map_err(|source| pacha_core::ConfigError::Name {
            at: Location::file(format!("templates/{app}")),
            source,
        })?;
        if !self.master.dir().join("templates").join(app).is_dir() {
            return Ok(None);
        }
        let resolved = self.app(app, state, || Location::file(format!("templates/{app}")))?;
        let attributes = resolved.config.attributes(relative);
        Ok(Some(FileDefaults {
            dest: resolved.config.dest.clone(),
            owner: attributes.owner,
            group: attributes.group,
            mode: attributes.mode.unwrap_or(Mode::FILE),
        }))
    }

    /// Where each line of the file at `path` that node `name` gets in `state` comes from: the
    /// template line, and each variable it prints with the master file and line that set it.
    pub fn blame(&self, name: &str, state: &str, path: &NodePath) -> Result<Blame, RenderError> {
        let plan = self.plan(name, state)?;
        let Some(planned) = plan.files.iter().find(|file| file.destination == *path) else {
            return Err(RenderError::NotPlaced {
                node: name.to_owned(),
                state: state.to_owned(),
                path: path.to_string(),
            });
        };
        let app_name = planned.app.as_str();
        let app = self.app(app_name, state, || Location::file(format!("templates/{app_name}")))?;
        let Some(file) = app.files.iter().find(|file| file.source == planned.source) else {
            return Err(RenderError::NotPlaced {
                node: name.to_owned(),
                state: state.to_owned(),
                path: path.to_string(),
            });
        };
        let node_vars = self.master.node_vars(name, state)?;
        let data = app_data(&node_vars, &app.config.vars, [name, &plan.target.host, state, app_name]);
        let mut secrets = node_vars.secrets.clone();
        secrets.extend(app.config.secrets.iter().cloned());
        let shown_yaml = format!("templates/{app_name}/app.yaml");
        let app_text = fs::read_to_string(self.master.dir().join(&shown_yaml)).ok();
        let layers = self
            .master
            .var_layers(name, state)?
            .with_app(&shown_yaml, app_text.as_deref(), state);
        // A file placed per item: the item whose name is this path.
        let mut item = None;
        if let Some(each) = &file.each {
            let mut list = &data;
            for segment in &each.var {
                list = list.get(segment).unwrap_or(&Value::Null);
            }
            for candidate in list.as_array().into_iter().flatten() {
                let context = Context::from(item_data(&data, candidate));
                let placed = app
                    .registry
                    .render_with_context(&each.key, &context)
                    .ok()
                    .and_then(|name| app.config.dest.join(name.trim()).ok());
                if placed.as_ref() == Some(path) {
                    item = Some(candidate.clone());
                    break;
                }
            }
        }
        let data = match &item {
            Some(item) => item_data(&data, item),
            None => data,
        };
        let list = file.each.as_ref().map(|each| each.var.as_slice());
        let origins = Origins {
            layers: &layers,
            item: list.zip(item.as_ref()),
        };
        let (lines, template_text) = match &file.content {
            Content::Bytes(bytes, _) => (blame::copied_lines(&file.source, bytes), String::new()),
            Content::Template(_) => {
                let text = fs::read_to_string(self.master.dir().join(&file.source))
                    .map_err(|err| RenderError::io(&file.source, err))?;
                let output = String::from_utf8_lossy(&planned.content).into_owned();
                let shadow = planned.secret.then(|| {
                    app.registry
                        .render_with_context(&file.source, &Context::from(shadowed(&data, &secrets)))
                        .unwrap_or_default()
                });
                let rendered = Rendered {
                    registry: &app.registry,
                    source: &file.source,
                    text: &text,
                    output: &output,
                    data: &data,
                    secrets: if planned.secret { &secrets } else { &[] },
                    shadow,
                };
                (blame::template_lines(&rendered, &origins), text)
            }
        };
        Ok(Blame {
            node: name.to_owned(),
            state: state.to_owned(),
            path: path.clone(),
            app: app_name.to_owned(),
            source: file.source.clone(),
            template: matches!(file.content, Content::Template(_)),
            secret: planned.secret,
            each: file.each.is_some(),
            lines,
            template_text,
            data,
            secrets,
        })
    }

    fn app(&self, app: &str, state: &str, at: impl Fn() -> Location) -> Result<Arc<ResolvedApp>, RenderError> {
        let key = (app.to_owned(), state.to_owned());
        if let Some(found) = self.apps.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(found.clone());
        }
        let resolved = Arc::new(self.resolve_app(app, state, at)?);
        self.apps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, resolved.clone());
        Ok(resolved)
    }

    fn resolve_app(&self, app: &str, state: &str, at: impl Fn() -> Location) -> Result<ResolvedApp, RenderError> {
        let templates = self.master.dir().join("templates");
        let Some(tree) = tree::app_files(&templates, app, state)? else {
            return Err(RenderError::MissingApp {
                at: at(),
                app: app.to_owned(),
                state: state.to_owned(),
            });
        };
        let app_yaml = templates.join(app).join("app.yaml");
        let shown_yaml = format!("templates/{app}/app.yaml");
        let app_text = if app_yaml.is_file() {
            Some(fs::read_to_string(&app_yaml).map_err(|err| RenderError::io(&shown_yaml, err))?)
        } else {
            None
        };
        let config = AppConfig::parse(&shown_yaml, app_text.as_deref(), state)?;
        let mut registry = template::registry();
        let mut files = Vec::with_capacity(tree.len());
        for (relative, file) in tree {
            if config.is_ignored(&relative) {
                continue;
            }
            let destination = config.dest.join(&relative).map_err(|err| RenderError::PathEscapes {
                at: Location::file(&file.source),
                message: err.to_string(),
            })?;
            // What no file system on the node can hold is refused here, naming its source,
            // rather than failing there as a connection cut by an oversized command.
            let longest = destination.as_str().split('/').map(str::len).max().unwrap_or(0);
            if destination.as_str().len() > 4000 || longest > 255 {
                return Err(RenderError::PathEscapes {
                    at: Location::file(&file.source),
                    message: format!(
                        "the destination is too long for a node ({} bytes, a name of {longest}; at most 4000 and 255)",
                        destination.as_str().len()
                    ),
                });
            }
            let bytes = fs::read(&file.path).map_err(|err| RenderError::io(&file.source, err))?;
            let executable = fs::metadata(&file.path)
                .map(|meta| meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            let content = if file.is_template {
                let text = String::from_utf8(bytes).map_err(|_| RenderError::NotUtf8Template {
                    source_file: file.source.clone(),
                })?;
                Content::Template(template::compile(&mut registry, &file.source, &text)?)
            } else {
                let hash = ContentHash::of(&bytes);
                Content::Bytes(Arc::from(bytes), hash)
            };
            let as_written = format!("{relative}{}", tree::TEMPLATE_SUFFIX);
            let attributes = if file.is_template {
                config.attributes_of(&[&relative, &as_written])
            } else {
                config.attributes(&relative)
            };
            let default_mode = if executable { Mode::EXECUTABLE } else { Mode::FILE };
            let each = match &attributes.each {
                Some(each) => {
                    let key = format!("{}#as", file.source);
                    let references = template::compile(&mut registry, &key, &each.name).map_err(|err| match err {
                        RenderError::Template { message, .. } => RenderError::Template {
                            at: each.at.clone(),
                            message: format!("as: {message}"),
                        },
                        other => other,
                    })?;
                    Some(EachFile {
                        var: each.var.clone(),
                        key,
                        references,
                        at: each.at.clone(),
                    })
                }
                None => None,
            };
            files.push(AppFile {
                destination,
                each,
                source: file.source,
                content,
                owner: attributes.owner,
                group: attributes.group,
                mode: attributes.mode.unwrap_or(default_mode),
                validate: attributes.validate,
            });
        }
        Ok(ResolvedApp {
            config,
            files,
            registry,
        })
    }

    fn phase(&self, stage: Stage, phase: &str, at: impl Fn() -> Location) -> Result<ScriptList, RenderError> {
        let key = (stage, phase.to_owned());
        if let Some(found) = self.phases.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(found.clone());
        }
        let dir = self.master.dir().join("scripts").join(stage.as_str()).join(phase);
        if !dir.is_dir() {
            return Err(RenderError::MissingPhase {
                at: at(),
                stage,
                phase: phase.to_owned(),
            });
        }
        let shown = format!("scripts/{stage}/{phase}");
        let mut entries: Vec<(String, std::path::PathBuf)> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|err| RenderError::io(&shown, err))? {
            let entry = entry.map_err(|err| RenderError::io(&shown, err))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(RenderError::NotUtf8Name {
                    source_file: format!("{shown}/{}", entry.file_name().to_string_lossy()),
                });
            };
            // Editor backups and swap files are hidden; they must not run.
            if name.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            entries.push((name, entry.path()));
        }
        entries.sort();
        let mut scripts = Vec::with_capacity(entries.len());
        for (name, path) in entries {
            let source = format!("{shown}/{name}");
            let bytes = fs::read(&path).map_err(|err| RenderError::io(&source, err))?;
            scripts.push(ScriptSource {
                sha256: ContentHash::of(&bytes),
                content: Arc::from(bytes),
                name,
                source,
            });
        }
        let scripts = Arc::new(scripts);
        self.phases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, scripts.clone());
        Ok(scripts)
    }
}

/// A Handlebars rendering error as a pacha error with the template's position.
/// The files of an `each:` rule: one per item of the list, the item's fields over the other
/// variables and the item itself as `item`, placed at `dest` joined with the rendered `as`.
#[expect(clippy::too_many_arguments, reason = "the state of one node's rendering")]
fn each_files(
    app: &ResolvedApp,
    file: &AppFile,
    each: &EachFile,
    data: &Value,
    secrets: &[String],
    master: &std::path::Path,
    node: &str,
    app_name: &str,
) -> Result<Vec<PlannedFile>, RenderError> {
    let mut value = data;
    for segment in &each.var {
        value = value.get(segment).ok_or_else(|| RenderError::UndefinedVariable {
            at: each.at.clone(),
            variable: each.var.join("."),
            node: node.to_owned(),
        })?;
    }
    let Value::Array(items) = value else {
        return Err(RenderError::Config(pacha_core::ConfigError::Invalid {
            at: each.at.clone(),
            message: format!(
                "each: {} is not a list for node {node:?} (one file is placed per item of a list)",
                each.var.join(".")
            ),
        }));
    };
    let mut placed = Vec::with_capacity(items.len());
    for item in items {
        let item_data = item_data(data, item);
        let undefined = |references: &[VariableRef], source: &str| {
            template::first_undefined(references, &item_data).map(|missing| RenderError::UndefinedVariable {
                at: Location {
                    file: source.to_owned(),
                    line: Some(missing.line),
                    column: Some(missing.column),
                },
                variable: missing.segments.join("."),
                node: node.to_owned(),
            })
        };
        if let Some(err) = undefined(&each.references, &each.at.file) {
            return Err(err);
        }
        let context = Context::from(item_data.clone());
        let name = app
            .registry
            .render_with_context(&each.key, &context)
            .map_err(|err| render_error(master, &each.at.file, node, &err))?;
        let destination = app
            .config
            .dest
            .join(name.trim())
            .map_err(|err| RenderError::PathEscapes {
                at: each.at.clone(),
                message: format!("as: {name:?} for node {node:?}: {err}"),
            })?;
        let (content, sha256, secret) = match &file.content {
            Content::Bytes(bytes, hash) => (bytes.clone(), *hash, false),
            Content::Template(references) => {
                if let Some(err) = undefined(references, &file.source) {
                    return Err(err);
                }
                let text = app
                    .registry
                    .render_with_context(&file.source, &context)
                    .map_err(|err| render_error(master, &file.source, node, &err))?;
                let secret = !secrets.is_empty() && {
                    let shadow = Context::from(shadowed(&item_data, secrets));
                    app.registry
                        .render_with_context(&file.source, &shadow)
                        .map_or(true, |shadowed| shadowed != text)
                };
                let bytes: Arc<[u8]> = Arc::from(text.into_bytes());
                let hash = ContentHash::of(&bytes);
                (bytes, hash, secret)
            }
        };
        placed.push(file.planned(destination, app_name, app.config.dir_mode, (content, sha256, secret)));
    }
    Ok(placed)
}

/// The data an app's templates render with: the node's layered vars with the app's, and
/// `pacha.node`, `pacha.host`, `pacha.state`, `pacha.app`.
fn app_data(node_vars: &NodeVars, app_vars: &pacha_core::Vars, [node, host, state, app]: [&str; 4]) -> Value {
    let mut data = node_vars.for_app(app_vars);
    data.insert(
        "pacha".to_owned(),
        json!({"node": node, "host": host, "state": state, "app": app}),
    );
    Value::Object(data)
}

/// The data of one item of an `each:` file: its fields over the others, and itself as `item`.
fn item_data(data: &Value, item: &Value) -> Value {
    let mut object = data.as_object().cloned().unwrap_or_default();
    if let Value::Object(fields) = item {
        for (key, field) in fields {
            object.insert(key.clone(), field.clone());
        }
    }
    object.insert("item".to_owned(), item.clone());
    Value::Object(object)
}

fn render_error(master: &std::path::Path, source: &str, node: &str, err: &handlebars::RenderError) -> RenderError {
    let at = Location {
        file: err.template_name.clone().unwrap_or_else(|| source.to_owned()),
        line: err.line_no,
        column: err.column_no,
    };
    match err.reason() {
        // Strict mode's word for a `lookup` (or `../`) that finds nothing names no variable:
        // say what the expression at that place is.
        RenderErrorReason::MissingVariable(None) => {
            let expression = fs::read_to_string(master.join(&at.file))
                .ok()
                .and_then(|text| expression_at(&text, at.line?, at.column?));
            RenderError::Helper {
                message: match expression {
                    Some(expression) => format!(
                        "`{expression}` finds nothing there: a key it looks up is missing (use `default` for one that may be)"
                    ),
                    None => "a key looked up is missing (use `default` for one that may be)".to_owned(),
                },
                at,
                node: node.to_owned(),
            }
        }
        RenderErrorReason::MissingVariable(Some(variable)) => RenderError::UndefinedVariable {
            at,
            variable: variable.clone(),
            node: node.to_owned(),
        },
        RenderErrorReason::Other(message) => RenderError::Helper {
            at,
            message: message.clone(),
            node: node.to_owned(),
        },
        other => RenderError::Helper {
            at,
            message: other.to_string(),
            node: node.to_owned(),
        },
    }
}
/// `data` with every secret value (a string, or a number as text) replaced by another value
/// of the same kind.
fn shadowed(data: &Value, secrets: &[String]) -> Value {
    match data {
        Value::String(text) if secrets.contains(text) => {
            Value::String(format!("\u{1}pacha-shadow-{}\u{1}", text.len()))
        }
        Value::Number(number) if secrets.contains(&number.to_string()) => match number.as_i64() {
            Some(integer) => Value::from(integer.wrapping_add(7919)),
            None => Value::from(number.as_f64().unwrap_or_default() + 7919.5),
        },
        Value::Array(items) => Value::Array(items.iter().map(|item| shadowed(item, secrets)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), shadowed(value, secrets)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The `{{…}}` expression that starts at `line` and `column` (1-based) of `text`.
fn expression_at(text: &str, line: usize, column: usize) -> Option<String> {
    let line = text.lines().nth(line.checked_sub(1)?)?;
    let start = line.char_indices().nth(column.checked_sub(1)?).map(|(at, _)| at)?;
    let rest = &line[start..];
    let end = rest.find("}}")? + 2;
    rest.starts_with("{{").then(|| rest[..end].to_owned())
}

impl Planner for Renderer<'_> {
    fn plan(&self, node: &str, state: &str) -> Result<Plan, PlanError> {
        Renderer::plan(self, node, state).map_err(PlanError::from)
    }
}
