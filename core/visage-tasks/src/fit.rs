//! The two protocols, one function: [`fit`] trains a task's head on what
//! it reads from the backbone, through the training engine
//! ([`visage_core::train::Trainer`]), and scores the last epoch on the
//! test split.
//!
//! - `linear_probe`: the backbone is frozen (evaluation mode, no
//!   gradient). Without train augmentations its features are extracted
//!   once and the head trains on the cache; with them (or with
//!   `cache_features: false`) the frozen backbone runs on every batch, as
//!   the papers' code does.
//! - `fine_tune`: the task trains its own copy of the backbone
//!   ([`EvalContext::copy_backbone`]) with the head, at `backbone_lr` with
//!   layer-wise decay; the copy is dropped with the evaluation.
//!
//! The result is the last epoch's metrics. `validation` holds out a seeded
//! part of train and adds `selected_by_val/...`, the test metrics of the
//! epoch that scored best on it; `best_on_test` adds `best_on_test/...`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use visage_core::backbone::Backbone;
use visage_core::data::order::permutation;
use visage_core::features::ExtractedInputs;
use visage_core::method::Losses;
use visage_core::metric::{Labels, Metrics};
use visage_core::task::{EvalContext, EvalSplit, Protocol};
use visage_core::tch::{self, nn, Device, Tensor};
use visage_core::train::{Learner, TrainConfig, Trainer};
use visage_core::{Batch, Error, Result};

use crate::heads::Head;
use crate::split::{carve, Subset};
use crate::training::Training;

/// Builds the head under a path, given the shapes (without the batch
/// dimension) of the tensors it reads.
pub type BuildHead<'a> = dyn Fn(nn::Path<'_>, &[Vec<i64>]) -> Result<Box<dyn Head>> + 'a;
/// The training loss of the head's outputs against the batch's labels.
pub type Loss<'a> = dyn Fn(&Tensor, &Labels) -> Result<Tensor> + 'a;
/// The task's metrics of the head's outputs on a whole split.
pub type Score<'a> = dyn Fn(&Tensor, &Labels) -> Result<Metrics> + 'a;

/// The metric that selects epochs, and its direction.
#[derive(Debug, Clone)]
pub struct Selection {
    /// A key of the task's metrics.
    pub metric: String,
    /// Whether a higher value is better (accuracy) or lower (NME, MAE).
    pub higher_is_better: bool,
}

/// What a task asks of [`fit`].
pub struct Recipe<'a> {
    /// Name in logs and the progress bar (`fer head`).
    pub name: &'a str,
    /// The labels the loss and the metrics read.
    pub labels: &'a [&'a str],
    /// The training recipe.
    pub training: &'a Training,
    /// The metric that picks epochs for `validation` and `best_on_test`.
    pub selection: Selection,
}

/// What [`fit`] returns.
pub struct Fitted {
    /// The last epoch's test metrics, with `selected_by_val/...` and
    /// `best_on_test/...` when asked for.
    pub metrics: Metrics,
    /// The head's outputs on the test split at the last epoch (CPU).
    pub outputs: Tensor,
    /// The test split's labels (CPU).
    pub labels: Labels,
}

/// What a task adds to the training steps of `fine_tune` (the backbone's
/// copy is trained), through [`fit_with`]: a change of the batch before
/// the backbone reads it (mixup), and loss terms of the tuned backbone
/// itself (a regulariser such as LAFS's landmark-position MSE). Both are
/// called on every training step of `fine_tune` only; `linear_probe`
/// trains on frozen features and calls neither.
pub trait FitHooks {
    /// A new batch for the backbone to read at `step` (0-based) instead
    /// of `batch`, or `None` (the default) to keep it. New labels it adds
    /// reach the task's loss.
    fn batch(&self, _batch: &Batch, _step: u64) -> Result<Option<Batch>> {
        Ok(None)
    }

    /// Extra loss terms of the `tuned` backbone on `batch` (as returned by
    /// [`FitHooks::batch`]) in `epoch` (0-based), added to the task's loss;
    /// by default none.
    fn losses(&self, _tuned: &dyn Backbone, _batch: &Batch, _epoch: u64) -> Result<Losses> {
        Ok(Losses::default())
    }
}

/// No hooks: [`fit`]'s training steps.
pub struct NoHooks;

impl FitHooks for NoHooks {}

/// The label that carries a cached batch's row indices.
const ROWS: &str = "__rows";

/// Trains the head (and under `fine_tune` the backbone's copy) and scores
/// it; see the module docs.
pub fn fit(
    ctx: &EvalContext<'_>,
    recipe: &Recipe<'_>,
    head: &BuildHead<'_>,
    loss: &Loss<'_>,
    score: &Score<'_>,
) -> Result<Fitted> {
    fit_with(ctx, recipe, head, loss, score, &NoHooks)
}

/// [`fit`] with `hooks` in the training steps of `fine_tune`.
pub fn fit_with(
    ctx: &EvalContext<'_>,
    recipe: &Recipe<'_>,
    head: &BuildHead<'_>,
    loss: &Loss<'_>,
    score: &Score<'_>,
    hooks: &dyn FitHooks,
) -> Result<Fitted> {
    let t = recipe.training;
    let (train_rows, val_rows) = carve(ctx.train.dataset.len(), t.validation, ctx.seed);
    if train_rows.is_empty() {
        return Err(Error::msg(format!("{}: the training split is empty", recipe.name)));
    }
    let batch_size = t.batch_size.min(train_rows.len());
    let steps_per_epoch = (train_rows.len() / batch_size) as u64;
    let mut vs = nn::VarStore::new(ctx.device);
    let reader = Reader::new(ctx, recipe, &mut vs, &train_rows, &val_rows)?;
    let shapes = reader.shapes(ctx)?;
    // Seeded here, so that the head starts the same whatever was read before.
    tch::manual_seed(ctx.seed as i64);
    let head = head(vs.root() / "head", &shapes)?;
    let tuned = match &reader.mode {
        Mode::Tuned(backbone) => Some(("backbone", backbone.as_ref())),
        _ => None,
    };
    let optimizer = t.optimizer(&vs, tuned)?;
    tracing::info!(
        task = recipe.name,
        mode = reader.mode.describe(),
        train = train_rows.len(),
        validation = val_rows.len(),
        test = ctx.test.dataset.len(),
        epochs = t.epochs,
        "training"
    );
    let config = TrainConfig {
        steps: t.epochs as u64 * steps_per_epoch,
        seed: ctx.seed,
        label: recipe.name.to_string(),
        device: ctx.device,
        checkpoint_every: steps_per_epoch,
        log_every: steps_per_epoch.max(1),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &mut vs, optimizer, t.scheduler(steps_per_epoch));
    if let Some(dir) = &ctx.dir {
        trainer = trainer.with_dir(dir, ctx.resume)?;
    }
    let tracking = RefCell::new(Tracking::default());
    let mut learner = HeadLearner {
        reader: &reader,
        head: head.as_ref(),
        loss,
        tracking: &tracking,
        hooks,
        steps_per_epoch,
    };
    let start = trainer.restore(&mut learner)?;
    let mut data = reader.batches(ctx, batch_size, steps_per_epoch, start);
    let tracked = t.best_on_test || !val_rows.is_empty();
    let mut monitor = |completed: u64| -> Result<Vec<(String, f64)>> {
        if !tracked || completed % steps_per_epoch != 0 {
            return Ok(vec![]);
        }
        let epoch = completed / steps_per_epoch;
        let (outputs, labels) = reader.predict(ctx, head.as_ref(), Part::Test, batch_size)?;
        let test = score(&outputs, &labels)?;
        let val = if val_rows.is_empty() {
            None
        } else {
            let (outputs, labels) = reader.predict(ctx, head.as_ref(), Part::Validation, batch_size)?;
            Some(score(&outputs, &labels)?)
        };
        tracking
            .borrow_mut()
            .epoch(epoch, &test, val.as_ref(), &recipe.selection)
    };
    trainer.fit(&mut learner, &mut data, &mut monitor)?;
    let (outputs, labels) = reader.predict(ctx, head.as_ref(), Part::Test, batch_size)?;
    let mut metrics = score(&outputs, &labels)?;
    tracking.into_inner().report(t, &mut metrics);
    Ok(Fitted {
        metrics,
        outputs,
        labels,
    })
}

/// How the head's inputs are read.
enum Mode<'a> {
    /// Frozen features extracted once: train (all of it), test.
    Cached { train: Cache, test: Cache },
    /// The frozen backbone runs on every batch.
    Frozen(&'a dyn Backbone),
    /// The task's own copy of the backbone, trained.
    Tuned(Box<dyn Backbone>),
}

impl Mode<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Mode::Cached { .. } => "linear probe on cached features",
            Mode::Frozen(_) => "linear probe, frozen backbone every batch",
            Mode::Tuned(_) => "fine-tuning a copy of the backbone",
        }
    }
}

/// Extracted inputs and labels, on the evaluation's device.
struct Cache {
    inputs: Vec<Tensor>,
    labels: Labels,
}

impl Cache {
    fn new(extracted: ExtractedInputs, device: Device) -> Self {
        Cache {
            inputs: extracted.inputs.iter().map(|t| t.to_device(device)).collect(),
            labels: extracted
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.to_device(device)))
                .collect(),
        }
    }

    fn rows(&self, rows: &Tensor) -> (Vec<Tensor>, Labels) {
        let inputs = self.inputs.iter().map(|t| t.index_select(0, rows)).collect();
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.index_select(0, rows)))
            .collect();
        (inputs, labels)
    }
}

/// Which split a prediction is for.
#[derive(Clone, Copy)]
enum Part {
    Validation,
    Test,
}

/// The inputs of the head, for training batches and for predictions.
struct Reader<'a> {
    mode: Mode<'a>,
    feature: &'a visage_core::features::Feature,
    train: EvalSplit,
    validation: EvalSplit,
    train_rows: Tensor,
    val_rows: Tensor,
    labels: Vec<String>,
}

impl<'a> Reader<'a> {
    fn new(
        ctx: &EvalContext<'a>,
        recipe: &Recipe<'_>,
        vs: &mut nn::VarStore,
        train_rows: &[usize],
        val_rows: &[usize],
    ) -> Result<Self> {
        let t = recipe.training;
        let subset = |rows: &[usize], augmentations| EvalSplit {
            dataset: Arc::new(Subset::new(ctx.train.dataset.clone(), rows.to_vec())),
            augmentations,
        };
        let mode = match ctx.protocol {
            Protocol::FineTune => Mode::Tuned((ctx.copy_backbone)(vs, "backbone")?),
            Protocol::LinearProbe if t.cache_features && ctx.train.augmentations.is_empty() => {
                let extract = |split: &EvalSplit| ctx.extract_inputs(split, t.batch_size, recipe.labels);
                Mode::Cached {
                    train: Cache::new(extract(&ctx.train)?, ctx.device),
                    test: Cache::new(extract(&ctx.test)?, ctx.device),
                }
            }
            Protocol::LinearProbe => Mode::Frozen(ctx.backbone),
        };
        let index = |rows: &[usize]| {
            let rows: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
            Tensor::from_slice(&rows).to_device(ctx.device)
        };
        Ok(Reader {
            mode,
            feature: ctx.feature,
            train: subset(train_rows, ctx.train.augmentations.clone()),
            validation: subset(val_rows, ctx.test.augmentations.clone()),
            train_rows: index(train_rows),
            val_rows: index(val_rows),
            labels: recipe.labels.iter().map(|l| l.to_string()).collect(),
        })
    }

    fn backbone(&self) -> Option<&dyn Backbone> {
        match &self.mode {
            Mode::Cached { .. } => None,
            Mode::Frozen(b) => Some(*b),
            Mode::Tuned(b) => Some(b.as_ref()),
        }
    }

    /// Shapes of the head's inputs, without the batch dimension.
    fn shapes(&self, ctx: &EvalContext<'_>) -> Result<Vec<Vec<i64>>> {
        let inputs = match (&self.mode, self.backbone()) {
            (Mode::Cached { test, .. }, _) => test.inputs.iter().map(|t| t.narrow(0, 0, 1)).collect(),
            (_, Some(backbone)) => {
                let batch = ctx
                    .batches(&ctx.test, 1, None)?
                    .next()
                    .ok_or_else(|| Error::msg("the test split is empty"))??;
                let _no_grad = tch::no_grad_guard();
                self.feature
                    .read(backbone, &batch.images.to_device(ctx.device), false)?
            }
            _ => unreachable!("only the cached mode has no backbone"),
        };
        Ok(inputs.iter().map(|t| t.size()[1..].to_vec()).collect())
    }

    /// The head's inputs and labels of a training batch.
    fn read(&self, batch: &Batch) -> Result<(Vec<Tensor>, Labels)> {
        let labels = || {
            batch
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.shallow_clone()))
                .collect()
        };
        match &self.mode {
            Mode::Cached { train, .. } => Ok(train.rows(batch.label(ROWS)?)),
            Mode::Frozen(backbone) => {
                let _no_grad = tch::no_grad_guard();
                Ok((self.feature.read(*backbone, &batch.images, false)?, labels()))
            }
            Mode::Tuned(backbone) => Ok((self.feature.read(backbone.as_ref(), &batch.images, true)?, labels())),
        }
    }

    /// Training batches from the restored step `start` on: shuffled
    /// epochs, the last partial batch dropped.
    fn batches<'s>(
        &'s self,
        ctx: &'s EvalContext<'_>,
        batch_size: usize,
        steps_per_epoch: u64,
        start: u64,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + 's> {
        let first = start / steps_per_epoch;
        let skip = (start % steps_per_epoch) as usize;
        let epochs = first..;
        match &self.mode {
            Mode::Cached { .. } => {
                let n = self.train_rows.size()[0] as usize;
                let rows = &self.train_rows;
                Box::new(epochs.flat_map(move |epoch| {
                    // The loader's order: the same batches as re-running the backbone.
                    let order = permutation(ctx.seed, epoch, n);
                    let chunks: Vec<Vec<i64>> = order
                        .chunks_exact(batch_size)
                        .map(|c| c.iter().map(|&i| i as i64).collect())
                        .collect();
                    let skip = if epoch == first { skip } else { 0 };
                    chunks.into_iter().skip(skip).map(move |chunk| {
                        let picked = rows.index_select(0, &Tensor::from_slice(&chunk).to_device(rows.device()));
                        Ok(Batch {
                            images: Tensor::zeros([0], (tch::Kind::Float, Device::Cpu)),
                            labels: BTreeMap::from([(ROWS.to_string(), picked)]),
                            views: vec![],
                        })
                    })
                }))
            }
            _ => Box::new(epochs.flat_map(move |epoch| {
                let skip = if epoch == first { skip } else { 0 };
                let loader: Box<dyn Iterator<Item = Result<Batch>>> =
                    match ctx.batches(&self.train, batch_size, Some(epoch)) {
                        Ok(loader) => Box::new(loader.skip(skip)),
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    };
                loader
            })),
        }
    }

    /// The head's outputs on a whole split, in order, and its labels (CPU).
    fn predict(
        &self,
        ctx: &EvalContext<'_>,
        head: &dyn Head,
        part: Part,
        batch_size: usize,
    ) -> Result<(Tensor, Labels)> {
        let _no_grad = tch::no_grad_guard();
        let to_cpu = |labels: Labels| labels.into_iter().map(|(k, v)| (k, v.to_device(Device::Cpu))).collect();
        if let Mode::Cached { train, test } = &self.mode {
            let (inputs, labels) = match part {
                Part::Test => (
                    test.inputs.iter().map(|t| t.shallow_clone()).collect(),
                    test.labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.shallow_clone()))
                        .collect(),
                ),
                Part::Validation => train.rows(&self.val_rows),
            };
            let n = inputs[0].size()[0];
            let mut outputs = vec![];
            for start in (0..n).step_by(batch_size) {
                let len = (n - start).min(batch_size as i64);
                let chunk: Vec<Tensor> = inputs.iter().map(|t| t.narrow(0, start, len)).collect();
                outputs.push(head.forward(&chunk, false).to_device(Device::Cpu));
            }
            return Ok((Tensor::cat(&outputs, 0), to_cpu(labels)));
        }
        let backbone = self
            .backbone()
            .ok_or_else(|| Error::msg("no backbone to predict with"))?;
        let split = match part {
            Part::Test => &ctx.test,
            Part::Validation => &self.validation,
        };
        let mut outputs = vec![];
        let mut kept: BTreeMap<String, Vec<Tensor>> = self.labels.iter().map(|l| (l.clone(), vec![])).collect();
        for batch in ctx.batches(split, batch_size, None)? {
            let batch = batch?.to_device(ctx.device);
            let inputs = self.feature.read(backbone, &batch.images, false)?;
            outputs.push(head.forward(&inputs, false).to_device(Device::Cpu));
            for (name, parts) in kept.iter_mut() {
                parts.push(batch.label(name)?.to_device(Device::Cpu));
            }
        }
        if outputs.is_empty() {
            return Err(Error::msg("no samples to score (the split is empty)"));
        }
        let labels = kept.into_iter().map(|(k, v)| (k, Tensor::cat(&v, 0))).collect();
        Ok((Tensor::cat(&outputs, 0), labels))
    }
}

/// What the engine trains: the head on the reader's inputs.
struct HeadLearner<'r, 'a> {
    reader: &'r Reader<'a>,
    head: &'r dyn Head,
    loss: &'r Loss<'r>,
    tracking: &'r RefCell<Tracking>,
    hooks: &'r dyn FitHooks,
    steps_per_epoch: u64,
}

impl HeadLearner<'_, '_> {
    /// The task's loss of the head on `batch`.
    fn head_losses(&self, batch: &Batch) -> Result<Losses> {
        let (inputs, labels) = self.reader.read(batch)?;
        let outputs = self.head.forward(&inputs, true);
        let mut losses = Losses::default();
        losses.push("loss", (self.loss)(&outputs, &labels)?);
        Ok(losses)
    }
}

impl Learner for HeadLearner<'_, '_> {
    fn losses(&mut self, batch: &Batch, step: u64, _phase: usize) -> Result<Losses> {
        let Mode::Tuned(tuned) = &self.reader.mode else {
            return self.head_losses(batch);
        };
        let changed = self.hooks.batch(batch, step)?;
        let batch = changed.as_ref().unwrap_or(batch);
        let mut losses = self.head_losses(batch)?;
        let epoch = step / self.steps_per_epoch.max(1);
        for (name, value) in self.hooks.losses(tuned.as_ref(), batch, epoch)?.0 {
            losses.push(name, value);
        }
        Ok(losses)
    }

    fn state(&self) -> Result<serde_json::Value> {
        serde_json::to_value(&*self.tracking.borrow()).map_err(|e| Error::msg(format!("epoch selection state: {e}")))
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        if !state.is_null() {
            *self.tracking.borrow_mut() = serde_json::from_value(state)
                .map_err(|e| Error::msg(format!("checkpoint: epoch selection state: {e}")))?;
        }
        Ok(())
    }
}

/// An epoch's test metrics, kept because it scored best.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    epoch: u64,
    value: f64,
    test: Metrics,
}

/// The best epochs so far, on the test split and on the validation split;
/// saved in checkpoints so that a resumed run selects over every epoch.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Tracking {
    best_on_test: Option<Kept>,
    selected_by_val: Option<Kept>,
}

impl Tracking {
    /// Records an epoch; returns the values to log.
    fn epoch(
        &mut self,
        epoch: u64,
        test: &Metrics,
        val: Option<&Metrics>,
        by: &Selection,
    ) -> Result<Vec<(String, f64)>> {
        let pick = |metrics: &Metrics| {
            metrics.get(&by.metric).copied().ok_or_else(|| {
                let have: Vec<&str> = metrics.keys().map(String::as_str).collect();
                Error::msg(format!(
                    "selection metric `{}` is not among [{}]",
                    by.metric,
                    have.join(", ")
                ))
            })
        };
        let better = |new: f64, old: &Option<Kept>| match old {
            None => true,
            Some(k) if by.higher_is_better => new > k.value,
            Some(k) => new < k.value,
        };
        let mut logged: Vec<(String, f64)> = test.iter().map(|(k, v)| (format!("test/{k}"), *v)).collect();
        let value = pick(test)?;
        if better(value, &self.best_on_test) {
            self.best_on_test = Some(Kept {
                epoch,
                value,
                test: test.clone(),
            });
        }
        if let Some(val) = val {
            logged.extend(val.iter().map(|(k, v)| (format!("val/{k}"), *v)));
            let value = pick(val)?;
            if better(value, &self.selected_by_val) {
                self.selected_by_val = Some(Kept {
                    epoch,
                    value,
                    test: test.clone(),
                });
            }
        }
        Ok(logged)
    }

    /// Adds the asked-for selections to the last epoch's `metrics`.
    fn report(self, t: &Training, metrics: &mut Metrics) {
        let mut add = |prefix: &str, kept: Option<Kept>| {
            if let Some(kept) = kept {
                metrics.insert(format!("{prefix}/epoch"), kept.epoch as f64);
                for (k, v) in kept.test {
                    metrics.insert(format!("{prefix}/{k}"), v);
                }
            }
        };
        if t.best_on_test {
            add("best_on_test", self.best_on_test);
        }
        add("selected_by_val", self.selected_by_val);
    }
}
