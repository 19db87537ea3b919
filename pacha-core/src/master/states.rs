//! The states a master knows: those `pacha.yaml` declares, else `default`, every state folder
//! under `templates/*/` and every `states:` key of a node, meta node or `app.yaml`. A state
//! outside them is refused before anything renders: a typo never pushes "default plus
//! nothing".

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::master::error::{ConfigError, Location};
use crate::master::graph::closest;
use crate::master::yaml::line_of;
use crate::model::settings::DeclaredStates;

/// The state every master has unless `pacha.yaml` declares otherwise.
pub(crate) const DEFAULT_STATE: &str = "default";

/// The states of a master.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KnownStates {
    /// In the order declared, else `default` first and the rest by name.
    pub names: Vec<String>,
    /// Whether `pacha.yaml` declares them.
    pub declared: bool,
}

/// Where a state is used: its name and the place (file and line) that uses it.
pub(crate) type StateUse = (String, Location);

impl KnownStates {
    /// The known states, given `pacha.yaml`'s declaration and every place that uses a state. With
    /// a declaration, a use of an undeclared state is an error naming its place.
    pub(crate) fn new(declared: Option<&DeclaredStates>, uses: &[StateUse]) -> Result<KnownStates, ConfigError> {
        if let Some(declared) = declared {
            let known = KnownStates {
                names: declared.names.clone(),
                declared: true,
            };
            for (state, at) in uses {
                if !known.names.contains(state) {
                    return Err(ConfigError::Invalid {
                        at: at.clone(),
                        message: format!(
                            "state {state:?} is not declared in pacha.yaml (states: {}); {}",
                            known.names.join(", "),
                            closest(state, known.names.iter().map(String::as_str)).map_or_else(
                                || "declare it there or rename this".to_owned(),
                                |name| format!("did you mean {name:?}?")
                            )
                        ),
                    });
                }
            }
            return Ok(known);
        }
        let mut rest: BTreeSet<&str> = uses.iter().map(|(state, _)| state.as_str()).collect();
        rest.remove(DEFAULT_STATE);
        let mut names = vec![DEFAULT_STATE.to_owned()];
        names.extend(rest.into_iter().map(str::to_owned));
        Ok(KnownStates { names, declared: false })
    }

    /// Refuses a state the master does not know.
    pub(crate) fn check(&self, state: &str) -> Result<(), ConfigError> {
        if self.names.iter().any(|name| name == state) {
            return Ok(());
        }
        // A typo, or a state cut short (`prod` for `production`) when only one starts so.
        let suggestion = closest(state, self.names.iter().map(String::as_str)).or_else(|| {
            let mut starting = self.names.iter().filter(|name| name.starts_with(state));
            match (starting.next(), starting.next()) {
                (Some(only), None) if !state.is_empty() => Some(only.clone()),
                _ => None,
            }
        });
        Err(ConfigError::UnknownState {
            state: state.to_owned(),
            known: self.names.clone(),
            suggestion,
            declared: self.declared,
        })
    }
}

/// The state folders of every app, `templates/<app>/<state>/` (the `default` folder is the
/// layer under every state, not a use of one), and the `states:` keys of its `app.yaml`.
pub(crate) fn template_state_folders(master: &Path) -> Result<Vec<StateUse>, ConfigError> {
    let mut uses = Vec::new();
    let read = |dir: &Path, shown: &str| -> Result<Vec<(String, bool)>, ConfigError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ConfigError::Read {
                    file: shown.to_owned(),
                    source,
                });
            }
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ConfigError::Read {
                file: shown.to_owned(),
                source,
            })?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            names.push((name, is_dir));
        }
        names.sort();
        Ok(names)
    };
    for (app, is_dir) in read(&master.join("templates"), "templates")? {
        if !is_dir {
            continue;
        }
        let shown = format!("templates/{app}");
        for (state, is_dir) in read(&master.join("templates").join(&app), &shown)? {
            if is_dir && state != DEFAULT_STATE {
                uses.push((state.clone(), Location::file(format!("{shown}/{state}"))));
            }
        }
        // The `states:` keys of app.yaml (a broken app.yaml is reported when the app renders).
        let app_yaml = format!("{shown}/app.yaml");
        if let Ok(text) = fs::read_to_string(master.join(&app_yaml))
            && let Ok(value) = yaml_serde::from_str::<yaml_serde::Value>(&text)
            && let Some(states) = value.get("states").and_then(yaml_serde::Value::as_mapping)
        {
            for state in states.keys().filter_map(yaml_serde::Value::as_str) {
                uses.push((state.to_owned(), Location::line(&app_yaml, line_of(&text, state))));
            }
        }
    }
    Ok(uses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(names: &[&str]) -> Vec<StateUse> {
        names
            .iter()
            .map(|name| ((*name).to_owned(), Location::file(format!("templates/app/{name}"))))
            .collect()
    }

    #[test]
    fn without_a_declaration_the_states_are_found() {
        let known = KnownStates::new(None, &used(&["production", "staging", "production"])).unwrap();
        assert_eq!(known.names, ["default", "production", "staging"]);
        let err = known.check("prodution").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown state \"prodution\" (states: default, production, staging); did you mean \"production\"?"
        );
        assert_eq!(
            known.check("qa").unwrap_err().to_string(),
            "unknown state \"qa\" (states: default, production, staging)"
        );
        known.check("default").unwrap();
        assert!(
            known
                .check("prod")
                .unwrap_err()
                .to_string()
                .ends_with("did you mean \"production\"?")
        );
    }

    #[test]
    fn a_declaration_is_exact_and_refuses_other_uses() {
        let declared = DeclaredStates {
            names: vec!["default".into(), "staging".into(), "production".into()],
            ..DeclaredStates::default()
        };
        let known = KnownStates::new(Some(&declared), &used(&["production"])).unwrap();
        assert_eq!(known.names, ["default", "staging", "production"]);
        let err = KnownStates::new(Some(&declared), &used(&["prodution"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("templates/app/prodution: state \"prodution\" is not declared in pacha.yaml (states: default, staging, production); did you mean \"production\"?"),
            "{err}"
        );
    }
}
