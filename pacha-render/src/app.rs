//! `templates/<app>/app.yaml`: where an app's files go, with what owner, group and mode.

use std::collections::BTreeMap;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use pacha_core::vars::{fold_secrets, merge};
use pacha_core::yaml::{self, line_of};
use pacha_core::{ConfigError, Location, Mode, NameKind, NodePath, StateSettings, Vars, check_account, check_name};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    dest: Option<String>,
    owner: Option<String>,
    group: Option<String>,
    mode: Option<Mode>,
    dir_mode: Option<Mode>,
    #[serde(default)]
    vars: Vars,
    /// Per-state settings, above `vars` in that state.
    #[serde(default)]
    states: BTreeMap<String, StateSettings>,
    /// Post phases that run only when a file, link or folder of this app changed or was removed.
    #[serde(default)]
    on_change: Vec<String>,
    #[serde(default)]
    files: Vec<FileRuleFile>,
    #[serde(default)]
    ignore: Vec<String>,
    /// Paths (relative to `dest`) that must not exist on the node.
    #[serde(default)]
    absent: Vec<String>,
    /// Managed symbolic links: path (relative to `dest`) to target (as written).
    #[serde(default)]
    links: BTreeMap<String, String>,
    /// Managed folders: path (relative to `dest`) to owner, group and mode.
    #[serde(default)]
    dirs: BTreeMap<String, DirFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirFile {
    owner: Option<String>,
    group: Option<String>,
    mode: Option<Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRuleFile {
    #[serde(rename = "match")]
    pattern: String,
    owner: Option<String>,
    group: Option<String>,
    mode: Option<Mode>,
    /// A command that checks the staged file before it replaces the live one (`%s`: its path).
    validate: Option<String>,
    /// One file per item of this list variable (a dotted path), named by `as`.
    each: Option<String>,
    /// The name of each item's file, relative to `dest`: a template (`sites/{{name}}.conf`).
    #[serde(rename = "as")]
    as_name: Option<String>,
}

/// Owner, group and mode as far as they are set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
    pub validate: Option<String>,
    /// `each:` and `as:` of the last matching rule that has them.
    pub each: Option<Each>,
}

/// A `files:` rule's `each: VAR` and `as: NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Each {
    /// The list variable, as dotted segments.
    pub var: Vec<String>,
    /// The name template.
    pub name: String,
    /// Where the rule is (app.yaml and line).
    pub at: Location,
}

impl Attributes {
    fn overlay(&mut self, over: &Attributes) {
        if over.owner.is_some() {
            self.owner.clone_from(&over.owner);
        }
        if over.group.is_some() {
            self.group.clone_from(&over.group);
        }
        if over.mode.is_some() {
            self.mode = over.mode;
        }
        if over.validate.is_some() {
            self.validate.clone_from(&over.validate);
        }
        if over.each.is_some() {
            self.each.clone_from(&over.each);
        }
    }
}

/// An app's settings, globs compiled.
#[derive(Debug)]
pub(crate) struct AppConfig {
    pub dest: NodePath,
    /// Paths on the node that must not exist, `dest` in front.
    pub absent: Vec<NodePath>,
    /// Managed links on the node (`dest` in front) and their targets.
    pub links: Vec<(NodePath, String)>,
    /// Managed folders on the node (`dest` in front), owner and group defaulting to the app's,
    /// mode to its `dir_mode`.
    pub dirs: Vec<(NodePath, Attributes)>,
    pub defaults: Attributes,
    pub dir_mode: Mode,
    pub vars: Vars,
    /// Values of the variables marked `{secret: true, value: …}` in `vars`.
    pub secrets: Vec<String>,
    /// Post phases (`scripts/post/<phase>/`) this app's changes run: its handlers.
    pub on_change: Vec<String>,
    rules: Vec<Attributes>,
    rule_globs: GlobSet,
    ignore: GlobSet,
}

impl AppConfig {
    /// Parses `app.yaml` (shown as `file`) for `state`: its vars with that state's block over
    /// them; `None` text means the app has none.
    pub(crate) fn parse(file: &str, text: Option<&str>, state: &str) -> Result<AppConfig, ConfigError> {
        let mut parsed: AppFile = match text {
            Some(text) => yaml::parse(file, text)?,
            None => AppFile::default(),
        };
        let text = text.unwrap_or_default();
        let at = |needle: &str| Location::line(file, line_of(text, needle));
        let dest = match &parsed.dest {
            Some(dest) => NodePath::parse(dest).map_err(|err| ConfigError::Invalid {
                at: at("dest"),
                message: format!("dest: {err}"),
            })?,
            None => NodePath::root(),
        };
        let glob = |pattern: &str| -> Result<Glob, ConfigError> {
            GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|err| ConfigError::Invalid {
                    at: at(pattern),
                    message: format!("invalid glob {pattern:?}: {}", err.kind()),
                })
        };
        // Owners and groups reach chown on the node: only names and numbers pass.
        let accounts = [&parsed.owner, &parsed.group]
            .into_iter()
            .chain(parsed.files.iter().flat_map(|rule| [&rule.owner, &rule.group]))
            .chain(parsed.dirs.values().flat_map(|dir| [&dir.owner, &dir.group]))
            .flatten();
        for account in accounts {
            check_account(account).map_err(|err| ConfigError::Invalid {
                at: at(if account.is_empty() { "\"\"" } else { account }),
                message: err.to_string(),
            })?;
        }
        let mut secrets = Vec::new();
        fold_secrets(&mut parsed.vars, &Vars::new(), &mut secrets);
        for phase in &parsed.on_change {
            check_name(NameKind::Phase, phase).map_err(|source| ConfigError::Name { at: at(phase), source })?;
        }
        for name in parsed.states.keys() {
            check_name(NameKind::State, name).map_err(|source| ConfigError::Name { at: at(name), source })?;
        }
        if let Some(mut block) = parsed.states.remove(state) {
            fold_secrets(&mut block.vars, &block.secrets, &mut secrets);
            merge(&mut parsed.vars, &block.vars);
        }
        let mut rule_globs = GlobSetBuilder::new();
        let mut rules = Vec::new();
        for rule in &parsed.files {
            rule_globs.add(glob(&rule.pattern)?);
            if let Some(command) = &rule.validate
                && (!command.contains("%s") || command.contains('\0'))
            {
                return Err(ConfigError::Invalid {
                    at: at(command),
                    message: format!("validate: {command:?} must name the staged file as %s, e.g. \"sshd -t -f %s\""),
                });
            }
            let each = match (&rule.each, &rule.as_name) {
                (None, None) => None,
                (Some(var), Some(name)) if !var.is_empty() && !name.trim().is_empty() => Some(Each {
                    var: var.split('.').map(str::to_owned).collect(),
                    name: name.clone(),
                    at: at(name),
                }),
                (each, _) => {
                    return Err(ConfigError::Invalid {
                        at: at(each.as_deref().unwrap_or(&rule.pattern)),
                        message: format!(
                            "files: the rule for {:?} needs both `each: LIST_VARIABLE` and `as: NAME_TEMPLATE` (one file per item, named by `as`)",
                            rule.pattern
                        ),
                    });
                }
            };
            rules.push(Attributes {
                owner: rule.owner.clone(),
                group: rule.group.clone(),
                mode: rule.mode,
                validate: rule.validate.clone(),
                each,
            });
        }
        let mut ignore = GlobSetBuilder::new();
        for pattern in &parsed.ignore {
            ignore.add(glob(pattern)?);
        }
        let mut absent = Vec::with_capacity(parsed.absent.len());
        for path in &parsed.absent {
            absent.push(dest.join(path).map_err(|err| ConfigError::Invalid {
                at: at(path),
                message: format!("absent: {err}"),
            })?);
        }
        let mut links = Vec::with_capacity(parsed.links.len());
        for (path, target) in &parsed.links {
            if target.is_empty() || target.contains('\0') {
                return Err(ConfigError::Invalid {
                    at: at(path),
                    message: format!("links: {path:?} needs a target"),
                });
            }
            let path = dest.join(path).map_err(|err| ConfigError::Invalid {
                at: at(path),
                message: format!("links: {err}"),
            })?;
            links.push((path, target.clone()));
        }
        let mut dirs = Vec::with_capacity(parsed.dirs.len());
        for (path, dir) in &parsed.dirs {
            let joined = dest.join(path).map_err(|err| ConfigError::Invalid {
                at: at(path),
                message: format!("dirs: {err}"),
            })?;
            dirs.push((
                joined,
                Attributes {
                    owner: dir.owner.clone().or_else(|| parsed.owner.clone()),
                    group: dir.group.clone().or_else(|| parsed.group.clone()),
                    mode: Some(dir.mode.or(parsed.dir_mode).unwrap_or(Mode::EXECUTABLE)),
                    validate: None,
                    each: None,
                },
            ));
        }
        let build = |builder: GlobSetBuilder| {
            builder.build().map_err(|err| ConfigError::Invalid {
                at: Location::file(file),
                message: err.to_string(),
            })
        };
        Ok(AppConfig {
            dest,
            absent,
            links,
            dirs,
            defaults: Attributes {
                owner: parsed.owner,
                group: parsed.group,
                mode: parsed.mode,
                validate: None,
                each: None,
            },
            dir_mode: parsed.dir_mode.unwrap_or(Mode::EXECUTABLE),
            secrets,
            on_change: parsed.on_change,
            vars: parsed.vars,
            rules,
            rule_globs: build(rule_globs)?,
            ignore: build(ignore)?,
        })
    }

    /// Whether the file at `relative` (to `dest`, `.hbs` dropped) is ignored.
    pub(crate) fn is_ignored(&self, relative: &str) -> bool {
        self.ignore.is_match(relative)
    }

    /// The attributes of the file at `relative`: the app's defaults, then each matching rule in
    /// order, so that each attribute comes from the last rule that sets it.
    pub(crate) fn attributes(&self, relative: &str) -> Attributes {
        self.attributes_of(&[relative])
    }

    /// [`AppConfig::attributes`] of a file known by several names (a template: its
    /// destination's and its own, `.hbs` included): a rule matching either applies.
    pub(crate) fn attributes_of(&self, names: &[&str]) -> Attributes {
        let mut attributes = self.defaults.clone();
        let mut matches: Vec<usize> = names.iter().flat_map(|name| self.rule_globs.matches(name)).collect();
        matches.sort_unstable();
        matches.dedup();
        for index in matches {
            attributes.overlay(&self.rules[index]);
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_matching_rule_wins_per_attribute() {
        let text = r#"
dest: /etc/app
owner: root
mode: "0644"
files:
  - match: "**/*.key"
    mode: "0600"
    owner: app
  - match: "secret/*.key"
    owner: vault
  - match: "*.conf"
    group: adm
ignore: ["**/*.swp"]
"#;
        let app = AppConfig::parse("templates/app/app.yaml", Some(text), "default").unwrap();
        assert_eq!(app.dest.as_str(), "/etc/app");
        let key = app.attributes("secret/db.key");
        assert_eq!(key.owner.as_deref(), Some("vault"));
        assert_eq!(key.mode, Some(Mode::parse("0600").unwrap()));
        // `*` does not cross `/`.
        assert_eq!(app.attributes("sub/x.conf").group, None);
        assert_eq!(app.attributes("x.conf").group.as_deref(), Some("adm"));
        assert!(app.is_ignored("a/b/.x.swp"));
        assert!(!app.is_ignored("x.conf"));
    }

    #[test]
    fn a_state_block_sits_above_the_app_vars_in_that_state() {
        let text =
            "vars: {workers: 2, user: www}\nstates:\n  production:\n    vars: {workers: 64}\n    secrets: {key: k3y}\n";
        let production = AppConfig::parse("app.yaml", Some(text), "production").unwrap();
        assert_eq!(
            serde_json::Value::Object(production.vars),
            serde_json::json!({"workers": 64, "user": "www", "key": "k3y"})
        );
        assert_eq!(production.secrets, ["k3y"]);
        let default = AppConfig::parse("app.yaml", Some(text), "default").unwrap();
        assert_eq!(default.vars["workers"], 2);
        assert!(default.secrets.is_empty());
        let err = AppConfig::parse("app.yaml", Some("states:\n  ../x: {}\n"), "default").unwrap_err();
        assert!(err.to_string().starts_with("app.yaml:2: invalid state name"), "{err}");
    }

    #[test]
    fn marked_secrets_in_app_vars_are_unwrapped_and_remembered() {
        let app = AppConfig::parse(
            "app.yaml",
            Some("vars:\n  key: {secret: true, value: s3cr3t}\n"),
            "default",
        )
        .unwrap();
        assert_eq!(app.vars["key"], "s3cr3t");
        assert_eq!(app.secrets, ["s3cr3t"]);
    }

    #[test]
    fn errors_name_the_line() {
        let err = AppConfig::parse(
            "templates/app/app.yaml",
            Some("dest: /etc\nmode: \"0999\"\n"),
            "default",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("templates/app/app.yaml:2:"), "{err}");
        assert!(err.to_string().contains("invalid mode"), "{err}");
        let err = AppConfig::parse("templates/app/app.yaml", Some("dest: /etc/../..\n"), "default").unwrap_err();
        assert_eq!(
            err.to_string(),
            "templates/app/app.yaml:1: dest: \"/etc/../..\" leaves /"
        );
        let err = AppConfig::parse("templates/app/app.yaml", Some("ignore: [\"a[\"]\n"), "default").unwrap_err();
        assert!(
            err.to_string().starts_with("templates/app/app.yaml:1: invalid glob"),
            "{err}"
        );
    }
}
