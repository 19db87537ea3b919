//! Saved plans: `pacha plan NODE [STATE] -o FILE` writes exactly the change a diff showed,
//! with what each node held at every path it touches; `pacha apply FILE` pushes exactly that,
//! and only where the node still holds what the plan saw (compare and swap, under the
//! node's lock).
//!
//! The file is JSON. With `age` recipients, everything secret in it (the contents of files
//! that hold secrets, and the secret values a plan redacts) is stored as age armour.

use serde_json::{Value, json};

use crate::edges::report::NodeReport;
use crate::master::age::{AgeError, AgeKeys};
use crate::model::bytes;
use crate::model::hash::ContentHash;
use crate::model::plan::{Expectation, Plan};

/// The format version of a plan file.
const FORMAT: u64 = 1;

/// Why a plan file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// Not a plan file pacha can read.
    #[error("not a pacha plan file: {0}")]
    NotAPlan(String),
    /// A plan file of another format version.
    #[error("a plan file of format {found}; this pacha reads format {FORMAT}: make the plan again")]
    Format {
        /// The version found.
        found: u64,
    },
    /// Its secrets cannot be decrypted, or encrypted.
    #[error(transparent)]
    Age(#[from] AgeError),
}

/// A saved plan: the plans of a target's nodes, each with what its node held.
#[derive(Debug, Clone)]
pub struct SavedPlan {
    /// Its id (a hash of its plans), recorded with every push of it.
    pub id: String,
    /// When it was made (seconds since the epoch).
    pub created: i64,
    /// What was planned (a node or meta node), as given.
    pub target: String,
    /// The master's revision it was rendered from, when the master is a git repository.
    pub master_revision: Option<String>,
    /// One plan per node, each with its [`Expectation`].
    pub plans: Vec<Plan>,
}

impl SavedPlan {
    /// A saved plan of `plans`, with what `reports` (a dry run of them, in the same order)
    /// saw on each node.
    pub fn new(
        target: &str,
        created: i64,
        master_revision: Option<String>,
        plans: &[Plan],
        reports: &[NodeReport],
    ) -> SavedPlan {
        let mut plans: Vec<Plan> = plans.to_vec();
        for (plan, report) in plans.iter_mut().zip(reports) {
            plan.expect = Some(Expectation {
                id: String::new(),
                seen: report.seen.clone(),
            });
        }
        let text = serde_json::to_vec(&plans).unwrap_or_default();
        let id = ContentHash::of(&text).short(12);
        for plan in &mut plans {
            if let Some(expect) = &mut plan.expect {
                expect.id.clone_from(&id);
            }
        }
        SavedPlan {
            id,
            created,
            target: target.to_owned(),
            master_revision,
            plans,
        }
    }

    /// The file's contents: secrets sealed to `age`'s recipients when it has any.
    pub fn to_bytes(&self, age: &AgeKeys) -> Result<Vec<u8>, SavedPlanError> {
        let mut plans = serde_json::to_value(&self.plans).map_err(|err| SavedPlanError::NotAPlan(err.to_string()))?;
        let sealed = age.can_encrypt();
        if sealed {
            for plan in plans.as_array_mut().into_iter().flatten() {
                seal(plan, age)?;
            }
        }
        let document = json!({
            "pacha_plan": FORMAT,
            "id": self.id,
            "created": self.created,
            "target": self.target,
            "master_revision": self.master_revision,
            "sealed": sealed,
            "plans": plans,
        });
        let mut text = serde_json::to_vec_pretty(&document).map_err(|err| SavedPlanError::NotAPlan(err.to_string()))?;
        text.push(b'\n');
        Ok(text)
    }

    /// Reads a plan file, decrypting its secrets with `age`'s identity when they are sealed.
    pub fn from_bytes(bytes: &[u8], age: &AgeKeys) -> Result<SavedPlan, SavedPlanError> {
        let mut document: Value =
            serde_json::from_slice(bytes).map_err(|err| SavedPlanError::NotAPlan(err.to_string()))?;
        let format = document
            .get("pacha_plan")
            .and_then(Value::as_u64)
            .ok_or_else(|| SavedPlanError::NotAPlan("no `pacha_plan` format number".to_owned()))?;
        if format != FORMAT {
            return Err(SavedPlanError::Format { found: format });
        }
        let text = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_owned);
        let id = text("id").ok_or_else(|| SavedPlanError::NotAPlan("no `id`".to_owned()))?;
        let target = text("target").unwrap_or_default();
        let master_revision = text("master_revision");
        let created = document.get("created").and_then(Value::as_i64).unwrap_or_default();
        let sealed = document.get("sealed").and_then(Value::as_bool).unwrap_or(false);
        let mut plans = document.get_mut("plans").map(Value::take).unwrap_or(Value::Null);
        if sealed {
            for plan in plans.as_array_mut().into_iter().flatten() {
                unseal(plan, age)?;
            }
        }
        let plans: Vec<Plan> =
            serde_json::from_value(plans).map_err(|err| SavedPlanError::NotAPlan(err.to_string()))?;
        if plans
            .iter()
            .any(|plan| plan.expect.as_ref().is_none_or(|expect| expect.id != id))
        {
            return Err(SavedPlanError::NotAPlan(
                "a plan in it does not belong to it".to_owned(),
            ));
        }
        Ok(SavedPlan {
            id,
            created,
            target,
            master_revision,
            plans,
        })
    }
}

/// Replaces a plan's secret values and the contents of its files that hold secrets by age
/// armour.
fn seal(plan: &mut Value, age: &AgeKeys) -> Result<(), SavedPlanError> {
    let node = plan.get("node").and_then(Value::as_str).unwrap_or_default().to_owned();
    if let Some(secrets) = plan.get_mut("secrets") {
        let text = serde_json::to_vec(secrets).unwrap_or_default();
        let armour = age.encrypt(&format!("the secrets of {node}'s plan"), &text)?;
        *secrets = Value::String(String::from_utf8_lossy(&armour).into_owned());
    }
    for file in plan
        .get_mut("files")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if file.get("secret").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let content = file
            .get("content")
            .and_then(Value::as_str)
            .and_then(bytes::decode)
            .unwrap_or_default();
        let what = file
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let armour = age.encrypt(&what, &content)?;
        file["content"] = Value::String(String::from_utf8_lossy(&armour).into_owned());
    }
    Ok(())
}

/// The inverse of [`seal`].
fn unseal(plan: &mut Value, age: &AgeKeys) -> Result<(), SavedPlanError> {
    let node = plan.get("node").and_then(Value::as_str).unwrap_or_default().to_owned();
    if let Some(secrets) = plan.get_mut("secrets")
        && let Some(armour) = secrets.as_str()
    {
        let text = age.decrypt(&format!("the secrets of {node}'s plan"), armour.as_bytes())?;
        *secrets = serde_json::from_slice(&text).map_err(|err| SavedPlanError::NotAPlan(err.to_string()))?;
    }
    for file in plan
        .get_mut("files")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if file.get("secret").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let what = file
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let armour = file
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let content = age.decrypt(&what, armour.as_bytes())?;
        file["content"] = Value::String(bytes::encode(&content));
    }
    Ok(())
}
