//! The `au` task: a BatchNorm + linear head on the backbone's output
//! predicts the occurrence of each action unit (a sigmoid per AU), trained
//! with binary cross-entropy, scored by per-AU F1 and mean ROC AUC; with
//! subject-exclusive folds on datasets that have subjects.

use std::sync::Arc;

use visage_core::dataset::DatasetInfo;
use visage_core::labels::SUBJECT;
use visage_core::metric::{label, Labels, Metrics};
use visage_core::task::{EvalContext, EvalSplit, Task, TaskContext};
use visage_core::tch::{nn, Kind, Reduction, Tensor};
use visage_core::{Error, Result};
use visage_tasks::fit::{fit, Recipe, Selection};
use visage_tasks::heads::{flat_dim, BnLinearHead, Head};
use visage_tasks::metrics::au::{AuAuc, AuF1, AuParams as AuMetricParams};
use visage_tasks::split::Subset;
use visage_tasks::training::Training;

use crate::folds;
use crate::params::{defaults, AuParams, DEFAULT_FOLDS};
use visage_tasks::labels::read_label;

/// Probability from which an AU counts as present (the convention).
const THRESHOLD: f64 = 0.5;

/// The `au` task.
pub struct AuTask {
    params: AuParams,
    training: Training,
}

impl AuTask {
    /// The task under `ctx.protocol`'s default recipe, overridden by
    /// `params.training`.
    pub fn new(params: AuParams, ctx: &TaskContext) -> Result<Self> {
        if params.folds == Some(0) {
            return Err(Error::msg("au: folds: expected at least 1, got 0"));
        }
        let training = params.training.over(defaults(ctx.protocol))?;
        Ok(AuTask { params, training })
    }

    /// The folds to run on a dataset described by `info`.
    fn folds(&self, info: &DatasetInfo) -> Result<usize> {
        match (self.params.folds, info.subjects) {
            (None, true) => Ok(DEFAULT_FOLDS),
            (None, false) => Ok(1),
            (Some(k), true) => Ok(k),
            (Some(1), false) => Ok(1),
            (Some(k), false) => Err(Error::msg(format!(
                "au: folds: {k} needs samples with a `{SUBJECT}` label (subject-exclusive folds), \
                 but the dataset has no subjects; set folds: 1"
            ))),
        }
    }

    /// The dataset's AU names, after checking that it holds the AU label.
    fn action_units(&self, info: &DatasetInfo) -> Result<Vec<String>> {
        info.require("au", &[&self.params.label])?;
        info.action_units
            .clone()
            .filter(|names| !names.is_empty())
            .ok_or_else(|| Error::msg("au: the dataset does not name its action units (`action_units` of its info)"))
    }

    /// Trains the head on `ctx.train` and scores `ctx.test`.
    fn fit_split(&self, ctx: &EvalContext<'_>, names: &[String]) -> Result<Metrics> {
        let name = self.params.label.as_str();
        let k = names.len() as i64;
        let metric = AuMetricParams {
            label: name.to_string(),
            names: names.to_vec(),
            threshold: THRESHOLD,
        };
        let (f1, auc) = (AuF1(metric.clone()), AuAuc(metric));
        let head = |path: nn::Path<'_>, shapes: &[Vec<i64>]| -> Result<Box<dyn Head>> {
            Ok(Box::new(BnLinearHead::new(path, flat_dim(&shapes[0]), k)))
        };
        let loss = |logits: &Tensor, labels: &Labels| -> Result<Tensor> {
            let target = label(labels, name, "au loss")?.f_to_kind(Kind::Float)?;
            if target.size() != logits.size() {
                return Err(Error::msg(format!(
                    "au: label `{name}` has shape {:?}, but the dataset names {k} action units",
                    target.size()
                )));
            }
            Ok(logits.f_binary_cross_entropy_with_logits(&target, None::<Tensor>, None::<Tensor>, Reduction::Mean)?)
        };
        let score = |logits: &Tensor, labels: &Labels| ctx.score(&logits.sigmoid(), labels, &[&f1, &auc]);
        let recipe = Recipe {
            name: "au head",
            labels: &[name],
            training: &self.training,
            selection: Selection {
                metric: "f1_mean".into(),
                higher_is_better: true,
            },
        };
        Ok(fit(ctx, &recipe, &head, &loss, &score)?.metrics)
    }

    /// The best constant on `ctx.test` from `ctx.train`'s labels alone:
    /// every AU seen in training predicted present on every face (the
    /// all-ones F1 that AU papers quote as the floor; a constant's ROC AUC
    /// is 50). The backbone is not used.
    fn constant_split(&self, ctx: &EvalContext<'_>, names: &[String]) -> Result<Metrics> {
        let name = self.params.label.as_str();
        let metric = AuMetricParams {
            label: name.to_string(),
            names: names.to_vec(),
            threshold: THRESHOLD,
        };
        let seen = read_label(ctx, &ctx.train, name)?
            .f_to_kind(Kind::Float)?
            .f_amax(&[0i64][..], false)?
            .f_gt(0.5)?
            .f_to_kind(Kind::Float)?;
        let test = read_label(ctx, &ctx.test, name)?;
        let predicted = seen.f_unsqueeze(0)?.f_expand([test.size()[0], -1], false)?;
        let labels = Labels::from([(name.to_string(), test)]);
        ctx.score(&predicted, &labels, &[&AuF1(metric.clone()), &AuAuc(metric)])
    }

    /// `split` over `ctx.train`'s `k` subject-exclusive folds, averaged.
    fn cross_validate(
        &self,
        ctx: &EvalContext<'_>,
        k: usize,
        split: impl Fn(&EvalContext<'_>) -> Result<Metrics>,
    ) -> Result<Metrics> {
        let subjects = read_label(ctx, &ctx.train, SUBJECT)?
            .f_to_kind(Kind::Int64)?
            .f_flatten(0, -1)?;
        let subjects = Vec::<i64>::try_from(&subjects)?;
        let fold_of = folds::assign(&subjects, k, ctx.seed)?;
        let mut per_fold = Vec::with_capacity(k);
        for i in 0..k {
            let (train, test) = folds::rows(&fold_of, i);
            tracing::info!(
                fold = i,
                folds = k,
                train = train.len(),
                test = test.len(),
                "au: subject-exclusive fold"
            );
            let part = |rows: Vec<usize>, split: &EvalSplit| EvalSplit {
                dataset: Arc::new(Subset::new(ctx.train.dataset.clone(), rows)),
                augmentations: split.augmentations.clone(),
            };
            let fold = EvalContext {
                backbone: ctx.backbone,
                feature: ctx.feature,
                copy_backbone: ctx.copy_backbone,
                protocol: ctx.protocol,
                train: part(train, &ctx.train),
                test: part(test, &ctx.test),
                metrics: ctx.metrics,
                device: ctx.device,
                seed: ctx.seed,
                workers: ctx.workers,
                dir: ctx.dir.as_ref().map(|d| d.join(format!("fold_{i}"))),
                resume: ctx.resume,
            };
            per_fold.push(split(&fold)?);
        }
        Ok(folds::average(&per_fold))
    }
}

impl AuTask {
    /// The action units and the number of folds, after checking that the
    /// splits carry the AU label and, without cross-validation, that they
    /// name the same action units.
    fn plan(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<(Vec<String>, usize)> {
        let names = self.action_units(train)?;
        let folds = self.folds(train)?;
        if folds == 1 {
            let test_names = self.action_units(test)?;
            if test_names != names {
                return Err(Error::msg(format!(
                    "au: the train split's action units [{}] differ from the test split's [{}]",
                    names.join(", "),
                    test_names.join(", ")
                )));
            }
        }
        Ok((names, folds))
    }
}

impl Task for AuTask {
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        self.plan(train, test).map(|_| ())
    }

    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        match self.plan(&ctx.train.dataset.info(), &ctx.test.dataset.info())? {
            (names, 1) => self.fit_split(ctx, &names),
            (names, k) => self.cross_validate(ctx, k, |fold| self.fit_split(fold, &names)),
        }
    }

    fn constant(&self, ctx: &EvalContext<'_>) -> Result<Option<Metrics>> {
        let metrics = match self.plan(&ctx.train.dataset.info(), &ctx.test.dataset.info())? {
            (names, 1) => self.constant_split(ctx, &names)?,
            (names, k) => self.cross_validate(ctx, k, |fold| self.constant_split(fold, &names))?,
        };
        Ok(Some(metrics))
    }
}
