//! The training engine: one step loop for pre-training, fine-tuning and
//! head training, so that all of them accumulate gradients, autocast,
//! scale fp16 losses, clip, guard against non-finite losses, update EMA
//! copies, checkpoint atomically, resume exactly and log alike.
//!
//! What is trained is a [`Learner`]: it returns the losses of each phase
//! of a step; the [`Trainer`] owns the variables, the optimiser and the
//! schedule. A step is:
//!
//! 1. libtorch's generator is reseeded from `(seed, step)`, so dropout and
//!    masks are the same in a resumed run;
//! 2. `accumulate` micro-batches are read;
//! 3. for each phase: `zero_grad`, the losses of every micro-batch (under
//!    autocast), backward of their sum divided by `accumulate`, unscaling
//!    (fp16), clipping, one optimiser step; the gradients' global norm
//!    before clipping is logged as `grad_norm` (`grad_norm/<phase>` for a
//!    learner of several phases);
//! 4. the EMA copies move ([`crate::teacher`]), then `end_step`;
//! 5. one line of `metrics.jsonl` and TensorBoard; a checkpoint every
//!    `checkpoint_every` steps and at the end.
//!
//! ```no_run
//! # use visage_core::train::{Learner, Trainer, TrainConfig};
//! # fn f(mut vs: tch::nn::VarStore, optimizer: Box<dyn visage_core::optimizer::Optimizer>,
//! #      scheduler: Box<dyn visage_core::scheduler::Scheduler>, learner: &mut dyn Learner,
//! #      data: &mut dyn Iterator<Item = visage_core::Result<visage_core::Batch>>) -> visage_core::Result<()> {
//! let config = TrainConfig { steps: 100, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(config, &mut vs, optimizer, scheduler)
//!     .with_dir(std::path::Path::new("runs/x/evaluations/0-fer"), false)?;
//! let done = trainer.restore(learner)?; // steps a resumed run skips
//! let summary = trainer.fit(learner, data, &mut |_| Ok(vec![]))?;
//! # Ok(()) }
//! ```

mod checkpoint;
mod metrics;
mod pretext;
mod progress;
mod tensorboard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{nn, Device};

pub use checkpoint::{Checkpoints, Found, Progress as CheckpointProgress};
pub use metrics::MetricsLog;
pub use pretext::Pretext;
pub use progress::Progress;
pub use tensorboard::EventWriter;

use crate::method::Losses;
use crate::optim::{clip_grad_norm, grad_norm, Ema, GradScaler};
use crate::optimizer::{Optimizer, StepInfo};
use crate::rng::Rng;
use crate::scalars::Scalars;
use crate::scheduler::Scheduler;
use crate::{Batch, Error, Result};

/// Arithmetic of the forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Full precision.
    #[default]
    Fp32,
    /// CUDA autocast to float16 with dynamic loss scaling.
    Fp16,
    /// Autocast to bfloat16 on the CPU or CUDA; bfloat16 has float32's
    /// range, so no loss scaling.
    Bf16,
}

impl Precision {
    /// The dtype the forward pass autocasts to, if any.
    pub fn autocast_kind(self) -> Option<tch::Kind> {
        match self {
            Precision::Fp32 => None,
            Precision::Fp16 => Some(tch::Kind::Half),
            Precision::Bf16 => Some(tch::Kind::BFloat16),
        }
    }
}

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Training steps.
    pub steps: u64,
    /// Micro-batches whose gradients are summed per optimiser step.
    pub accumulate: usize,
    /// Arithmetic of the forward pass.
    pub precision: Precision,
    /// Clip the global gradient norm to this value before each step.
    pub clip_grad_norm: Option<f64>,
    /// Non-finite phases that may be skipped before training stops.
    pub skip_nonfinite: u64,
    /// Steps between checkpoints (0: only at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// Steps between log lines when the output is not a terminal.
    pub log_every: u64,
    /// Seed of libtorch's generator at each step.
    pub seed: u64,
    /// What the progress bar and errors call this training.
    pub label: String,
    /// Where to compute.
    pub device: Device,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 1,
            accumulate: 1,
            precision: Precision::Fp32,
            clip_grad_norm: None,
            skip_nonfinite: 0,
            checkpoint_every: 0,
            keep_checkpoints: 1,
            log_every: 50,
            seed: 0,
            label: "train".into(),
            device: Device::Cpu,
        }
    }
}

/// What a [`Trainer`] trains: a method's pretext, a task's head or a
/// fine-tuned backbone with its head.
pub trait Learner {
    /// Optimiser steps per training step, each on its own losses.
    fn phases(&self) -> usize {
        1
    }
    /// Before the step's first losses.
    fn begin_step(&mut self, step: u64, total: u64) -> Result<()> {
        let _ = (step, total);
        Ok(())
    }
    /// The losses of `phase` of `step` on one micro-batch.
    fn losses(&mut self, batch: &Batch, step: u64, phase: usize) -> Result<Losses>;
    /// After the step's optimiser steps and EMA updates.
    fn end_step(&mut self, step: u64, total: u64) -> Result<()> {
        let _ = (step, total);
        Ok(())
    }
    /// State outside the var store, saved in checkpoints.
    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    /// Restores [`Learner::state`].
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        let _ = state;
        Ok(())
    }
}

/// The outcome of [`Trainer::fit`].
#[derive(Debug, Clone, Default)]
pub struct TrainSummary {
    /// Steps of the run.
    pub steps: u64,
    /// Each loss term at the first step that had it.
    pub first_losses: BTreeMap<String, f64>,
    /// Each loss term at the last step.
    pub final_losses: BTreeMap<String, f64>,
}

/// A callback after each completed step (its number, 1-based): returns
/// named measurements (a kNN monitor's accuracy) to log at that step.
pub type Monitor<'m> = dyn FnMut(u64) -> Result<Vec<(String, f64)>> + 'm;

/// The engine.
pub struct Trainer<'a> {
    config: TrainConfig,
    vs: &'a mut nn::VarStore,
    optimizer: Box<dyn Optimizer>,
    scheduler: Box<dyn Scheduler>,
    emas: Vec<Ema>,
    log: Scalars,
    dir: Option<(PathBuf, Checkpoints, bool)>,
    state: CheckpointProgress,
}

/// Stream of the per-step libtorch seed, apart from data and augmentation.
const TORCH_STREAM: u64 = 0x7a6f;

impl<'a> Trainer<'a> {
    /// A trainer of the trainable variables of `vs` with `optimizer`, the
    /// learning rate following `scheduler`.
    pub fn new(
        config: TrainConfig,
        vs: &'a mut nn::VarStore,
        optimizer: Box<dyn Optimizer>,
        scheduler: Box<dyn Scheduler>,
    ) -> Self {
        Trainer {
            config,
            vs,
            optimizer,
            scheduler,
            emas: vec![],
            log: Scalars::default(),
            dir: None,
            state: CheckpointProgress::default(),
        }
    }

    /// Writes checkpoints, `metrics.jsonl` and TensorBoard files under
    /// `dir`; `resume` continues from its newest checkpoint.
    pub fn with_dir(mut self, dir: &Path, resume: bool) -> Result<Self> {
        let checkpoints = Checkpoints::new(dir, self.config.keep_checkpoints)?;
        self.dir = Some((dir.to_path_buf(), checkpoints, resume));
        Ok(self)
    }

    /// Updates these EMA copies after every step, logging their momentum.
    pub fn with_emas(mut self, emas: Vec<Ema>) -> Self {
        self.emas = emas;
        self
    }

    /// Writes the values recorded in `log` with each step.
    pub fn with_log(mut self, log: Scalars) -> Self {
        self.log = log;
        self
    }

    /// When resuming, restores the newest checkpoint (variables, optimiser,
    /// learner) and returns the steps it had completed; else 0.
    pub fn restore(&mut self, learner: &mut dyn Learner) -> Result<u64> {
        let Some((_, checkpoints, true)) = &self.dir else {
            return Ok(0);
        };
        let checkpoint = match checkpoints.find()? {
            Found::Latest(path) => path,
            Found::Newest(path) => {
                tracing::warn!(
                    checkpoint = %path.display(),
                    "{}: `checkpoints/latest` is missing; resuming from the newest complete checkpoint",
                    self.config.label
                );
                path
            }
            Found::None => {
                tracing::warn!(
                    "{}: no checkpoint to resume from; starting at step 0",
                    self.config.label
                );
                return Ok(0);
            }
        };
        self.state = checkpoints.load(&checkpoint, self.config.steps, self.vs, self.optimizer.as_mut())?;
        learner.load_state(std::mem::take(&mut self.state.learner))?;
        tracing::info!(checkpoint = %checkpoint.display(), step = self.state.step, "{}: resumed", self.config.label);
        Ok(self.state.step)
    }

    /// Trains from the restored step to `config.steps`, reading
    /// `accumulate` batches per step from `data` (positioned by the caller
    /// at the restored step); `monitor` runs after each step.
    pub fn fit(
        &mut self,
        learner: &mut dyn Learner,
        data: &mut dyn Iterator<Item = Result<Batch>>,
        monitor: &mut Monitor<'_>,
    ) -> Result<TrainSummary> {
        let config = self.config.clone();
        let mut metrics = match &self.dir {
            Some((dir, _, _)) => Some(MetricsLog::open(dir, self.state.step)?),
            None => None,
        };
        let mut scaler =
            (config.precision == Precision::Fp16).then(|| self.state.loss_scaler.clone().unwrap_or_default());
        let progress = Progress::new(&config.label, config.steps, config.log_every, self.state.step);
        for step in self.state.step..config.steps {
            tch::manual_seed(Rng::new(&[config.seed, step, TORCH_STREAM]).next_u64() as i64 >> 1);
            learner.begin_step(step, config.steps)?;
            let batches = (0..config.accumulate.max(1))
                .map(|_| {
                    let batch = data
                        .next()
                        .ok_or_else(|| Error::msg(format!("{}: the data stream ended", config.label)))??;
                    batch.f_to_device(config.device)
                })
                .collect::<Result<Vec<_>>>()?;
            let at = StepInfo {
                step,
                total: config.steps,
                lr_scale: self.scheduler.factor(step, config.steps)?,
            };
            let mut values = BTreeMap::new();
            let mut updated = false;
            for phase in 0..learner.phases().max(1) {
                let terms = self.phase(learner, &batches, at, phase, scaler.as_mut())?;
                if let Some(terms) = terms {
                    updated = true;
                    for (name, value) in terms {
                        if values.insert(name.clone(), value).is_some() {
                            return Err(Error::msg(format!(
                                "{}: loss term `{name}` is returned by two phases; name them apart",
                                config.label
                            )));
                        }
                    }
                }
            }
            if updated {
                self.finish_step(learner, &mut metrics, at, values)?;
                progress.step(step, &self.state.last_losses);
            }
            let completed = step + 1;
            for (name, value) in monitor(completed)? {
                tracing::info!(step = completed, "{name} {value:.2}");
                if let Some(m) = metrics.as_mut() {
                    m.measurement(step, &name, value)?;
                }
            }
            let due =
                completed == config.steps || (config.checkpoint_every > 0 && completed % config.checkpoint_every == 0);
            if due {
                self.checkpoint(learner, completed, scaler.as_ref())?;
            }
        }
        progress.finish();
        Ok(TrainSummary {
            steps: config.steps,
            first_losses: self.state.first_losses.clone(),
            final_losses: self.state.last_losses.clone(),
        })
    }

    /// After the optimiser steps: EMA copies, `end_step`, the metrics line.
    fn finish_step(
        &mut self,
        learner: &mut dyn Learner,
        metrics: &mut Option<MetricsLog>,
        at: StepInfo,
        losses: BTreeMap<String, f64>,
    ) -> Result<()> {
        for ema in &self.emas {
            let m = ema.update(at.step, at.total)?;
            self.log.record(format!("momentum/{}", ema.name()), m);
        }
        learner.end_step(at.step, at.total)?;
        let recorded = self.log.take();
        if let Some(m) = metrics.as_mut() {
            m.step(at.step, &losses, &recorded, at.lr_scale)?;
        }
        // A term's first value is that of the first step that had it (PCL's
        // contrastive terms start after its warm-up).
        for (name, value) in &losses {
            self.state.first_losses.entry(name.clone()).or_insert(*value);
        }
        self.state.last_losses = losses;
        Ok(())
    }

    /// One phase: losses of every micro-batch, backward, unscale, clip and
    /// an optimiser step. `None` when the phase was skipped: no loss terms
    /// (the method rests the phase this step), a non-finite loss within
    /// `skip_nonfinite`, or an fp16 overflow.
    fn phase(
        &mut self,
        learner: &mut dyn Learner,
        batches: &[Batch],
        at: StepInfo,
        phase: usize,
        scaler: Option<&mut GradScaler>,
    ) -> Result<Option<BTreeMap<String, f64>>> {
        let (config, step) = (&self.config, at.step);
        self.optimizer.zero_grad()?;
        let micro = batches.len() as f64;
        let mut values: BTreeMap<String, f64> = BTreeMap::new();
        let mut empty = 0;
        for batch in batches {
            let losses = match config.precision.autocast_kind() {
                Some(kind) => crate::amp::autocast(config.device, kind, || learner.losses(batch, step, phase))??,
                None => learner.losses(batch, step, phase)?,
            };
            if losses.0.is_empty() {
                empty += 1;
                continue;
            }
            for (name, term) in &losses.0 {
                *values.entry(name.clone()).or_default() += term.double_value(&[]) / micro;
            }
            if values.values().all(|v| v.is_finite()) {
                let loss = losses.total()? / micro;
                match &scaler {
                    Some(s) => s.scale_loss(&loss).backward(),
                    None => loss.backward(),
                }
            }
        }
        match empty {
            0 => {}
            n if n == batches.len() => return Ok(None),
            _ => {
                return Err(Error::msg(format!(
                    "{}: phase {phase} of step {step} returned loss terms for some micro-batches and none for others",
                    config.label
                )))
            }
        }
        if let Some((name, value)) = values.iter().find(|(_, v)| !v.is_finite()) {
            self.state.skipped += 1;
            if self.state.skipped > config.skip_nonfinite {
                let saved = match self.state.step {
                    0 => "no checkpoint was written yet".to_string(),
                    s => format!("the checkpoint of step {s} is intact"),
                };
                return Err(Error::msg(format!(
                    "{}: loss term `{name}` is {value} at step {step}; stopping before the update ({saved}; \
                     skip_nonfinite allows {} skipped steps)",
                    config.label, config.skip_nonfinite
                )));
            }
            tracing::warn!(step, phase, term = %name, %value, skipped = self.state.skipped, "non-finite loss; update skipped");
            return Ok(None);
        }
        if let Some(s) = scaler {
            let finite = s.unscale(self.vs);
            s.update(finite);
            if !finite {
                tracing::warn!(
                    step,
                    phase,
                    scale = s.scale,
                    "fp16 gradients overflowed; update skipped, loss scale halved"
                );
                return Ok(None);
            }
        }
        let norm = match config.clip_grad_norm {
            Some(max_norm) => clip_grad_norm(self.vs, max_norm),
            None => grad_norm(self.vs),
        };
        self.log.record(grad_norm_name(phase, learner.phases()), norm);
        self.optimizer.step(at)?;
        Ok(Some(values))
    }

    fn checkpoint(&mut self, learner: &dyn Learner, completed: u64, scaler: Option<&GradScaler>) -> Result<()> {
        let Some((_, checkpoints, _)) = &self.dir else {
            return Ok(());
        };
        let state = CheckpointProgress {
            step: completed,
            loss_scaler: scaler.cloned(),
            learner: learner.state()?,
            ..self.state.clone()
        };
        checkpoints.save(self.vs, self.optimizer.as_ref(), &state)?;
        self.state.step = completed;
        Ok(())
    }
}

/// The name under which phase `phase` of a learner of `phases` phases logs
/// its gradient norm.
fn grad_norm_name(phase: usize, phases: usize) -> String {
    match phases {
        0 | 1 => "grad_norm".to_string(),
        _ => format!("grad_norm/{phase}"),
    }
}

#[cfg(test)]
mod tests;
