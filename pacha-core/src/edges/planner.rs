//! The planner edge: what turns a master's node and state into a [`Plan`]. `pacha-render`
//! implements it with Handlebars; the engine only asks for plans.

use crate::model::plan::Plan;

/// Why a node's plan could not be made: the planner's own error (a `pacha_render::RenderError`
/// from `pacha-render`), kept whole so a caller can look into it.
pub type PlanError = Box<dyn std::error::Error + Send + Sync>;

/// Makes plans.
pub trait Planner: Sync {
    /// The plan of leaf node `node` in `state`.
    fn plan(&self, node: &str, state: &str) -> Result<Plan, PlanError>;
}
