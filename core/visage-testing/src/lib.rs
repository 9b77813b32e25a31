//! What the task plugins' tests share (dev-only, never published).
//!
//! - [`experiment`]: an experiment file run through the workspace's release
//!   `runner`, its results read back, and the assertion every task's
//!   experiment test makes: the pre-trained backbone beats its random-init
//!   twin in both protocols.
//! - [`context`]: an [`EvalContext`](visage_core::task::EvalContext) over a
//!   seeded random tiny ResNet, with the trainable copy fine-tuning asks
//!   for, to run a task in process.
//! - [`faces`]: tiny synthface splits.
//!
//! Used as a dev-dependency: `visage-testing = { path = "../../core/visage-testing" }`.

pub mod context;
pub mod experiment;
pub mod faces;

pub use context::{registry_with, with_eval_context, EvalOptions, TaskUnderTest};
pub use experiment::{assert_beats_constant, assert_pretraining_wins, pair, Better, Experiment};
pub use faces::TinySynthFace;
