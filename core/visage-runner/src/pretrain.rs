//! Self-supervised pre-training: the method's pretext as a
//! [`Pretext`](visage_core::train::Pretext) learner of the training engine, on the
//! pre-training stream.

use std::sync::Arc;

use tch::{nn, Device};
use visage_core::backbone::Backbone;
use visage_core::data::{Loader, LoaderConfig, Sampling, ViewGroup};
use visage_core::dataset::Dataset;
use visage_core::method::{check_views, MethodContext};
use visage_core::optim::BackboneLayers;
use visage_core::optimizer::OptimizerContext;
use visage_core::scalars::Scalars;
use visage_core::teacher::{BackboneSpec, Teachers};
use visage_core::train::{Pretext, TrainConfig, Trainer};
use visage_core::Registry;

use crate::config::{augmentation_chain, Pretrain};
use crate::results::PretrainResult;
use crate::run::{BACKBONE, IN_CHANNELS};

/// Trains `backbone` (whose variables live in `vs` under [`BACKBONE`])
/// with the method on `dataset` (built and checked by
/// [`crate::run::prepare`]), writing checkpoints and metrics under
/// `run_dir`; when `resume`, continues from the newest checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn pretrain(
    registry: &Registry,
    config: &Pretrain,
    dataset: Box<dyn Dataset>,
    seed: u64,
    vs: &mut nn::VarStore,
    backbone: &dyn Backbone,
    backbone_spec: &BackboneSpec,
    device: Device,
    run_dir: &std::path::Path,
    resume: bool,
) -> anyhow::Result<PretrainResult> {
    let params = |c: &crate::config::Component| c.params.to_string();
    // Checked by `run::prepare`; kept for callers that skip it.
    anyhow::ensure!(
        !dataset.is_empty() && config.batch_size <= dataset.len(),
        "pretrain.batch_size {} does not fit pretrain.dataset `{}` ({} samples)",
        config.batch_size,
        config.dataset.name,
        dataset.len()
    );
    let augmentations = augmentation_chain(registry, &config.augmentations)?;
    let views = config
        .views
        .iter()
        .map(|group| {
            Ok(ViewGroup {
                count: group.count,
                augmentations: augmentation_chain(registry, &group.augmentations)?,
                shared_steps: group.shared_steps.clone(),
            })
        })
        .collect::<visage_core::Result<Vec<_>>>()?;
    let log = Scalars::default();
    let view_counts: Vec<usize> = config.views.iter().map(|g| g.count).collect();
    let (method, emas) = {
        let teachers = Teachers::new(registry, vs, backbone_spec.clone(), BACKBONE, IN_CHANNELS);
        let method_ctx = MethodContext {
            vs: vs.root() / "method",
            backbone_outputs: backbone.outputs(),
            views: view_counts.clone(),
            teachers: &teachers,
            log: log.clone(),
        };
        let method = registry.build_method(&config.method.name, &params(&config.method), &method_ctx)?;
        (method, teachers.into_emas())
    };
    check_views(&config.method.name, &method.views(), &view_counts)?;
    let optimizer = registry.build_optimizer(
        &config.optimizer.name,
        &params(&config.optimizer),
        &OptimizerContext {
            vs,
            total_steps: config.steps,
            backbone: Some(BackboneLayers {
                prefix: BACKBONE,
                layers: backbone.layers(),
            }),
        },
    )?;
    let scheduler = registry.build_scheduler(&config.scheduler.name, &params(&config.scheduler))?;
    let knn = match &config.knn_monitor {
        Some(k) => Some(crate::knn::Knn::new(registry, k, seed)?),
        None => None,
    };
    anyhow::ensure!(config.accumulate >= 1, "pretrain.accumulate must be at least 1");
    let engine = TrainConfig {
        steps: config.steps,
        accumulate: config.accumulate as usize,
        precision: config.precision,
        clip_grad_norm: config.clip_grad_norm,
        skip_nonfinite: config.skip_nonfinite as u64,
        checkpoint_every: config.checkpoint_every,
        keep_checkpoints: config.keep_checkpoints,
        log_every: config.log_every,
        seed,
        label: "pretrain".into(),
        device,
    };
    let mut pretext = Pretext::new(method, backbone);
    let mut trainer = Trainer::new(engine, vs, optimizer, scheduler)
        .with_dir(run_dir, resume)?
        .with_emas(emas)
        .with_log(log);
    let done = trainer.restore(&mut pretext)?;
    // Micro-batch `m` of the run holds stream positions
    // `m * batch_size ..`, so the step alone fixes where a resumed run starts.
    let consumed = done as usize * config.batch_size * config.accumulate as usize;
    let mut loader = Loader::with_views(
        Arc::from(dataset),
        Arc::from(augmentations),
        Arc::from(views),
        LoaderConfig {
            batch_size: config.batch_size,
            workers: config.workers,
            prefetch: config.prefetch,
            seed,
            sampling: Sampling::Stream { consumed },
            per_identity: config.per_identity.map(|k| k.get()),
            device,
        },
    )?;
    let mut monitor = |completed: u64| -> visage_core::Result<Vec<(String, f64)>> {
        match knn.as_ref().filter(|k| k.due(completed, config.steps)) {
            Some(knn) => {
                let accuracy = knn
                    .measure(backbone, device)
                    .map_err(|e| visage_core::Error::msg(crate::errors::describe(&e)))?;
                Ok(vec![(knn.name(), accuracy)])
            }
            None => Ok(vec![]),
        }
    };
    let summary = trainer.fit(&mut pretext, &mut loader, &mut monitor)?;
    Ok(PretrainResult {
        steps: summary.steps,
        final_losses: summary.final_losses,
        first_losses: summary.first_losses,
    })
}
