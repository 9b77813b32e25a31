//! Downstream evaluation of a backbone, and of a randomly initialised copy
//! as a baseline.

use std::path::PathBuf;
use std::sync::Arc;

use tch::Device;
use visage_core::backbone::Backbone;
use visage_core::dataset::{DatasetContext, Split};
use visage_core::task::{CopyBackbone, EvalContext, EvalSplit, Metrics, Protocol, Task, TaskContext};
use visage_core::Registry;

use crate::config::{augmentation_chain, Evaluation};

/// Where and how one evaluation runs.
pub struct Placement {
    /// The evaluation's own folder, for a task's trainer.
    pub dir: PathBuf,
    /// Whether the run is resumed.
    pub resume: bool,
    /// Seed of the head and the data order.
    pub seed: u64,
    /// Where to compute.
    pub device: Device,
}

/// The backbone under evaluation, how to copy it, and the protocol (the
/// experiment's, or `fine_tune` for the supervised twin).
pub struct Subject<'a> {
    /// The backbone.
    pub backbone: &'a dyn Backbone,
    /// Builds a trainable copy of it ([`EvalContext::copy_backbone`]).
    pub copy: &'a CopyBackbone<'a>,
    /// The protocol.
    pub protocol: Protocol,
    /// The task's parameters (`task.params`, or the supervised twin's).
    pub task_params: &'a serde_json::Value,
}

/// Runs one evaluation on `on.backbone`.
pub fn evaluate(
    registry: &Registry,
    evaluation: &Evaluation,
    on: &Subject<'_>,
    at: &Placement,
) -> anyhow::Result<Metrics> {
    with_task(registry, evaluation, on, at, |task, ctx| task.evaluate(ctx))
}

/// The metrics of the task's best constant prediction ([`Task::constant`]),
/// `None` when the task has none.
pub fn constant(
    registry: &Registry,
    evaluation: &Evaluation,
    on: &Subject<'_>,
    at: &Placement,
) -> anyhow::Result<Option<Metrics>> {
    with_task(registry, evaluation, on, at, |task, ctx| task.constant(ctx))
}

/// Builds the evaluation's task and context and calls `f` on them.
fn with_task<T>(
    registry: &Registry,
    evaluation: &Evaluation,
    on: &Subject<'_>,
    at: &Placement,
    f: impl FnOnce(&mut dyn Task, &EvalContext<'_>) -> visage_core::Result<T>,
) -> anyhow::Result<T> {
    let (seed, device) = (at.seed, at.device);
    let params = |c: &crate::config::Component| c.params.to_string();
    let split = |split, chain: &[crate::config::Component]| -> anyhow::Result<EvalSplit> {
        let dataset = registry.build_dataset(
            &evaluation.dataset.name,
            &params(&evaluation.dataset),
            &DatasetContext { split, seed },
        )?;
        Ok(EvalSplit {
            dataset: Arc::from(dataset),
            augmentations: Arc::from(augmentation_chain(registry, chain)?),
        })
    };
    let metrics = evaluation
        .metrics
        .iter()
        .map(|m| Ok((m.name.clone(), registry.build_metric(&m.name, &params(m))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut task = registry.build_task(
        &evaluation.task.name,
        &on.task_params.to_string(),
        &TaskContext { protocol: on.protocol },
    )?;
    let ctx = EvalContext {
        backbone: on.backbone,
        feature: &evaluation.feature,
        copy_backbone: on.copy,
        protocol: on.protocol,
        train: split(Split::Train, &evaluation.augmentations)?,
        test: split(Split::Test, &evaluation.test_augmentations)?,
        metrics: &metrics,
        device,
        seed,
        workers: evaluation.workers,
        dir: Some(at.dir.clone()),
        resume: at.resume,
    };
    Ok(f(task.as_mut(), &ctx)?)
}
