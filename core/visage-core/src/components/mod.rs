//! The component kinds a plugin can register, one file each.
//!
//! Every kind has a trait (what the host calls), a context (what the host
//! hands the constructor) and an impl for [`Guarded`](crate::guard::Guarded)
//! that contains panics on the plugin's side.

pub mod augmentation;
pub mod backbone;
pub mod dataset;
pub mod method;
pub mod metric;
pub mod optimizer;
pub mod scheduler;
pub mod task;

use serde::{Deserialize, Serialize};

/// The kinds of component the registry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A feature extractor ([`backbone::Backbone`]).
    Backbone,
    /// A self-supervised pretext ([`method::Method`]).
    Method,
    /// A downstream evaluation ([`task::Task`]).
    Task,
    /// A source of samples ([`dataset::Dataset`]).
    Dataset,
    /// A sample transform ([`augmentation::Augmentation`]).
    Augmentation,
    /// A score ([`metric::Metric`]).
    Metric,
    /// A parameter update rule ([`optimizer::Optimizer`]).
    Optimizer,
    /// A learning-rate schedule ([`scheduler::Scheduler`]).
    Scheduler,
}

impl Kind {
    /// Every kind, in listing order.
    pub const ALL: [Kind; 8] = [
        Kind::Backbone,
        Kind::Method,
        Kind::Task,
        Kind::Dataset,
        Kind::Augmentation,
        Kind::Metric,
        Kind::Optimizer,
        Kind::Scheduler,
    ];

    /// The lower-case name used in configs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backbone => "backbone",
            Kind::Method => "method",
            Kind::Task => "task",
            Kind::Dataset => "dataset",
            Kind::Augmentation => "augmentation",
            Kind::Metric => "metric",
            Kind::Optimizer => "optimizer",
            Kind::Scheduler => "scheduler",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown component kind `{s}` (one of: backbone, method, task, dataset, augmentation, metric, optimizer, scheduler)"))
    }
}
