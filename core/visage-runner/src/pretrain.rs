//! Self-supervised pre-training: a loop over the method's losses with
//! gradient accumulation and clipping, checkpoints and exact resume.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;

use tch::{nn, Device};
use visage_core::backbone::Backbone;
use visage_core::data::{Loader, LoaderConfig, Sampling, ViewGroup};
use visage_core::dataset::{DatasetContext, Split};
use visage_core::method::MethodContext;
use visage_core::optim::clip_grad_norm;
use visage_core::optimizer::OptimizerContext;
use visage_core::rng::Rng;
use visage_core::Registry;

use crate::checkpoint::{self, Checkpoints};
use crate::config::{augmentation_chain, Precision, Pretrain};
use crate::metrics::MetricsLog;
use crate::results::PretrainResult;

/// Trains `backbone` (whose variables live in `vs`) with the method,
/// checkpointing every `config.checkpoint_every` steps and at the end; when
/// `checkpoints` resumes, continues from the newest checkpoint.
pub fn pretrain(
    registry: &Registry,
    config: &Pretrain,
    seed: u64,
    vs: &mut nn::VarStore,
    backbone: &dyn Backbone,
    device: Device,
    checkpoints: &Checkpoints,
) -> anyhow::Result<PretrainResult> {
    let params = |c: &crate::config::Component| c.params.to_string();
    let dataset = registry.build_dataset(
        &config.dataset.name,
        &params(&config.dataset),
        &DatasetContext {
            split: Split::Train,
            seed,
        },
    )?;
    anyhow::ensure!(
        !dataset.is_empty(),
        "pretrain.dataset `{}` is empty",
        config.dataset.name
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
    let method_ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
    };
    let mut method = registry.build_method(&config.method.name, &params(&config.method), &method_ctx)?;
    let mut optimizer = registry.build_optimizer(
        &config.optimizer.name,
        &params(&config.optimizer),
        &OptimizerContext {
            vs,
            total_steps: config.steps,
        },
    )?;
    let scheduler = registry.build_scheduler(&config.scheduler.name, &params(&config.scheduler))?;

    let knn = match &config.knn_monitor {
        Some(k) => Some(crate::knn::Knn::new(registry, k, seed)?),
        None => None,
    };
    let mut done = checkpoint::Progress::default();
    if let Some(latest) = checkpoints.resume_from()? {
        done = checkpoints.load(&latest, vs, optimizer.as_mut())?;
        tracing::info!(checkpoint = %latest.display(), step = done.step, "resumed");
    }
    anyhow::ensure!(config.accumulate >= 1, "pretrain.accumulate must be at least 1");
    let micro_batches = config.accumulate as usize;
    let progress = Progress::new(config.steps, config.log_every, done.step);
    // Micro-batch `m` of the run holds stream positions
    // `m * batch_size ..`, so the step alone fixes where a resumed run starts.
    let consumed = done.step as usize * config.batch_size * micro_batches;
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
            device,
        },
    )?;
    let (mut first, mut last) = (done.first_losses, done.last_losses);
    let mut metrics = MetricsLog::open(checkpoints.run_dir(), done.step)?;
    let mut skipped = 0;
    let mut scaler = (config.precision == Precision::Fp16).then(|| done.loss_scaler.clone().unwrap_or_default());
    for step in done.step..config.steps {
        // libtorch's generator (dropout, masks) is a function of (seed, step),
        // so a resumed run draws what the uninterrupted one drew.
        tch::manual_seed(Rng::new(&[seed, step, TORCH_STREAM]).next_u64() as i64 >> 1);
        method.begin_step(step, config.steps)?;
        optimizer.zero_grad()?;
        let mut values: BTreeMap<String, f64> = BTreeMap::new();
        for _ in 0..micro_batches {
            let batch = loader
                .next_batch()
                .ok_or_else(|| anyhow::anyhow!("the pre-training data stream ended"))??
                .to_device(device);
            let losses = match config.precision.autocast_kind() {
                Some(kind) => visage_core::amp::autocast(device, kind, || method.training_step(backbone, &batch))??,
                None => method.training_step(backbone, &batch)?,
            };
            for (name, term) in &losses.0 {
                *values.entry(name.clone()).or_default() += term.double_value(&[]) / micro_batches as f64;
            }
            if values.values().all(|v| v.is_finite()) {
                let loss = losses.total()? / micro_batches as f64;
                match &scaler {
                    Some(s) => s.scale_loss(&loss).backward(),
                    None => loss.backward(),
                }
            }
        }
        if let Some((name, value)) = values.iter().find(|(_, v)| !v.is_finite()) {
            skipped += 1;
            anyhow::ensure!(
                skipped <= config.skip_nonfinite,
                "loss term `{name}` is {value} at step {step}; stopping (the last checkpoint holds the state before this step; \
                 pretrain.skip_nonfinite allows {} skipped steps)",
                config.skip_nonfinite
            );
            tracing::warn!(step, term = %name, %value, skipped, "non-finite loss; step skipped");
        } else if let Some(s) = scaler.as_mut().filter(|s| {
            let finite = s.unscale(vs);
            if !finite {
                tracing::warn!(
                    step,
                    scale = s.scale,
                    "fp16 gradients overflowed; step skipped, loss scale halved"
                );
            }
            !finite
        }) {
            s.update(false);
        } else {
            if let Some(s) = scaler.as_mut() {
                s.update(true);
            }
            let lr_factor = scheduler.factor(step, config.steps)?;
            if let Some(max_norm) = config.clip_grad_norm {
                clip_grad_norm(vs, max_norm);
            }
            optimizer.step(lr_factor)?;
            method.end_step(step, config.steps)?;
            metrics.step(step, &values, lr_factor)?;
            if first.is_empty() {
                first = values.clone();
            }
            progress.step(step, &values);
            last = values;
        }
        let completed = step + 1;
        if let Some(knn) = knn.as_ref().filter(|k| k.due(completed, config.steps)) {
            let accuracy = knn.measure(backbone, device)?;
            tracing::info!(step = completed, "{} {accuracy:.2}", knn.name());
            metrics.measurement(step, &knn.name(), accuracy)?;
        }
        if completed == config.steps || (config.checkpoint_every > 0 && completed % config.checkpoint_every == 0) {
            let state = checkpoint::Progress {
                step: completed,
                first_losses: first.clone(),
                last_losses: last.clone(),
                loss_scaler: scaler.clone(),
            };
            checkpoints.save(vs, optimizer.as_ref(), &state)?;
        }
    }
    progress.finish();
    Ok(PretrainResult {
        steps: config.steps,
        final_losses: last,
        first_losses: first,
    })
}

/// Stream of the per-step libtorch seed, apart from data and augmentation.
const TORCH_STREAM: u64 = 0x7a6f;

/// A progress bar on a terminal, periodic log lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    log_every: u64,
    started: std::time::Instant,
}

impl Progress {
    fn new(total: u64, log_every: u64, done: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_position(done);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "pretrain {bar:30} {pos}/{len} [{elapsed} < {eta}] {per_sec} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            total,
            log_every: log_every.max(1),
            started: std::time::Instant::now(),
        }
    }

    fn step(&self, step: u64, losses: &BTreeMap<String, f64>) {
        let text: Vec<String> = losses.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
        match &self.bar {
            Some(bar) => {
                bar.set_message(text.join(" "));
                bar.inc(1);
            }
            None if (step + 1) % self.log_every == 0 || step + 1 == self.total => {
                let rate = (step + 1) as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                tracing::info!(
                    step = step + 1,
                    total = self.total,
                    steps_per_s = format!("{rate:.2}"),
                    "pretrain {}",
                    text.join(" ")
                );
            }
            None => {}
        }
        tracing::debug!(step, ?losses, "step");
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
