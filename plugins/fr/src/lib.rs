//! # Face recognition (`fr`)
//!
//! Face verification as LAFS (CVPR 2024) evaluates it, in both protocols:
//!
//! - the test split is embedded with flip-summed features `f(x) + f(hflip
//!   x)` ([`mirror`]), L2-normalised, scored by squared distance with
//!   LAFS's 10-fold protocol (`visage_tasks::metrics::verification`) on
//!   the dataset's pairs (images `2i`, `2i+1`, labels `same` and `fold`),
//!   or, on a dataset without pairs (synthface), on balanced seeded pairs
//!   built from the test identities ([`pairs`]);
//! - `linear_probe`: the frozen backbone's output is the embedding; nothing
//!   is trained (the paper's pairs evaluation of frozen features);
//! - `fine_tune`: the task's copy of the backbone and an embedding layer
//!   ([`head`]) trained with a CosFace (default) or ArcFace classifier
//!   ([`margin`]) over the train split's identities, through
//!   `visage_tasks::fit`; `shots` and `identities` make LAFS's few-shot
//!   training subsets ([`few_shot`]); optional `mixup` ([`mixup`]) and
//!   LAFS's landmark-position regularisation ([`landmark_regularisation`])
//!   enter the training steps through [`hooks`].
//!
//! Metrics (the task's defaults): `accuracy`, `accuracy_std`, `threshold`
//! (and `accuracy_cosine` with a fixed `threshold` param) from
//! `verification`; `tar_at_far_1e-4`, `tar_at_far_1e-3` from
//! [`tar`] on the pairs' cosine scores. With `templates` (an IJB-B/C test
//! set), LAFS's template verification instead ([`templates`]):
//! `tar_at_far_1e-6` ... `tar_at_far_1e-1`. See the README.

pub mod few_shot;
pub mod head;
pub mod hooks;
pub mod landmark_regularisation;
pub mod margin;
pub mod mirror;
pub mod mixup;
pub mod pairs;
pub mod params;
pub mod tar;
pub mod task;
pub mod templates;

pub use params::FrParams;
pub use task::FaceRecognition;

use visage_core::task::Protocol;
use visage_core::{declare_plugin, Registry, Result};

/// Registers the `fr` task and its metrics (`verification`, `tar_at_far`).
pub fn register(registry: &mut Registry) -> Result<()> {
    tracing::info!("registering the fr plugin's components");
    registry.task("fr", &[Protocol::LinearProbe, Protocol::FineTune], FaceRecognition::new)?;
    visage_tasks::metrics::verification::register(registry)?;
    tar::register(registry)?;
    Ok(())
}

declare_plugin!(name: "fr", register: register);
