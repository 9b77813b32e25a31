//! # The `au` task plugin: action-unit detection
//!
//! Detects the occurrence of each facial action unit (FACS) of a dataset
//! (DISFA, BP4D): a `BatchNorm1d` + linear head on the backbone's flattened
//! output gives one logit per AU, trained with binary cross-entropy on the
//! logits (the sigmoid is in the loss and the scores).
//!
//! - Protocols: `linear_probe` (frozen backbone) and `fine_tune` (the
//!   task's own copy of the backbone), through [`visage_tasks::fit`]; the
//!   result is the last epoch's.
//! - Metrics (defaults, `visage_tasks::metrics::au`): per-AU binary F1 at
//!   probability 0.5 (`f1/<AU>`) and their mean `f1_mean` (the headline),
//!   and the mean ROC AUC over AUs `auc_mean`, all percent.
//! - Datasets: any with the `au` label and named `action_units`; with a
//!   `subject` label, `folds`-fold subject-exclusive cross-validation over
//!   the train split (3 by default), reported as the mean over folds
//!   beside `fold_<i>/<metric>`.
//!
//! No official AU code exists in the three papers; the conventions are the
//! field's (see the README).

#![warn(missing_docs)]

pub mod folds;
pub mod params;
pub mod task;

pub use params::AuParams;
pub use task::AuTask;

use visage_core::task::Protocol;
use visage_core::{declare_plugin, Registry, Result};

/// Registers the task `au` and the AU metrics (`au_f1`, `au_auc`).
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.task("au", &[Protocol::LinearProbe, Protocol::FineTune], AuTask::new)?;
    visage_tasks::metrics::au::register(registry)
}

declare_plugin!(name: "au", register: register);
