//! The `results.json` contract.
//!
//! ```json
//! {"experiment": "example", "status": "completed",
//!  "evaluations": [{"task": "...", "protocol": "linear_probe", "dataset": "...",
//!                   "metrics": {"accuracy": 91.4}, "random_init": {"accuracy": 60.2}}],
//!  "pretrain": {"steps": 60, "final_losses": {"rotation": 0.41}}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use visage_core::task::Protocol;

/// The outcome of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Experiment name.
    pub experiment: String,
    /// `completed` or `failed`.
    pub status: Status,
    /// The error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One entry per evaluation that finished.
    pub evaluations: Vec<EvaluationResult>,
    /// Pre-training summary, when the experiment pre-trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<PretrainResult>,
}

/// Whether the run finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every stage finished.
    Completed,
    /// A stage failed; see `error`.
    Failed,
}

/// One evaluation's metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvaluationResult {
    /// Task name.
    pub task: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Dataset name.
    pub dataset: String,
    /// Metrics of the (pre-trained) backbone.
    pub metrics: BTreeMap<String, f64>,
    /// Metrics of the randomly initialised backbone under the same
    /// protocol, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_init: Option<BTreeMap<String, f64>>,
    /// Metrics of the same architecture trained end to end on the task from
    /// random initialisation (the supervised upper bound), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervised: Option<BTreeMap<String, f64>>,
    /// Metrics of the task's best constant prediction (the train split's
    /// majority class, median pose, ...), for the tasks that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<BTreeMap<String, f64>>,
}

/// Pre-training summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainResult {
    /// Steps taken.
    pub steps: u64,
    /// Each loss term at the last step.
    pub final_losses: BTreeMap<String, f64>,
    /// Each loss term at the first step.
    pub first_losses: BTreeMap<String, f64>,
}
