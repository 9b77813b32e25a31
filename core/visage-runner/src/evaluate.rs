//! Downstream evaluation of a backbone, and of a randomly initialised copy
//! as a baseline.

use tch::Device;
use visage_core::backbone::Backbone;
use visage_core::dataset::{DatasetContext, Split};
use visage_core::task::{EvalContext, Metrics, TaskContext};
use visage_core::Registry;

use crate::config::Evaluation;

/// Runs one evaluation on `backbone`.
pub fn evaluate(
    registry: &Registry,
    evaluation: &Evaluation,
    backbone: &dyn Backbone,
    seed: u64,
    device: Device,
) -> anyhow::Result<Metrics> {
    let params = |c: &crate::config::Component| c.params.to_string();
    let split = |split| {
        registry.build_dataset(
            &evaluation.dataset.name,
            &params(&evaluation.dataset),
            &DatasetContext { split, seed },
        )
    };
    let (train, test) = (split(Split::Train)?, split(Split::Test)?);
    let metrics = evaluation
        .metrics
        .iter()
        .map(|m| Ok((m.name.clone(), registry.build_metric(&m.name, &params(m))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut task = registry.build_task(
        &evaluation.task.name,
        &params(&evaluation.task),
        &TaskContext {
            protocol: evaluation.protocol,
        },
    )?;
    let ctx = EvalContext {
        backbone,
        feature: &evaluation.feature,
        protocol: evaluation.protocol,
        train: train.as_ref(),
        test: test.as_ref(),
        metrics: &metrics,
        device,
        seed,
    };
    Ok(task.evaluate(&ctx)?)
}
