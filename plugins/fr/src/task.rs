//! The `fr` task: both protocols end in LAFS's verification of the test
//! split's flip-summed embeddings.

use std::sync::Arc;

use visage_core::dataset::{Dataset, DatasetInfo};
use visage_core::metric::{label, Labels, Metrics};
use visage_core::task::{EvalContext, EvalSplit, Protocol, Task, TaskContext};
use visage_core::tch::Tensor;
use visage_core::{Error, Result};
use visage_tasks::fit::{fit_with, Recipe, Selection};
use visage_tasks::metrics::verification::{Verification, VerificationParams, FOLDS};
use visage_tasks::split::Subset;

use crate::few_shot::few_shot;
use crate::head::{ClassifierSlot, HeadSpec};
use crate::hooks::FineTuneHooks;
use crate::mirror::{first_half, flip_sum, with_mirrors};
use crate::mixup::{MIX_LAMBDA, MIX_PARTNER};
use crate::pairs::balanced_pairs;
use crate::params::{fine_tune_defaults, FrParams};
use crate::tar::{TarAtFar, TarParams};
use crate::templates::{read_pairs, template_metrics, LABELS as TEMPLATE_LABELS};
use visage_formats::fr::ijb::{TemplatePair, TEMPLATE};

/// The face-recognition task (see the crate docs).
pub struct FaceRecognition {
    params: FrParams,
    protocol: Protocol,
    /// The template pairs of `params.templates`, read when evaluating.
    template_pairs: Vec<TemplatePair>,
}

impl FaceRecognition {
    /// Checks the parameters for `ctx.protocol`.
    pub fn new(params: FrParams, ctx: &TaskContext) -> Result<Self> {
        params.check(ctx.protocol)?;
        if ctx.protocol == Protocol::FineTune {
            let training = params.training.over(fine_tune_defaults())?;
            if training.validation > 0.0 {
                return Err(Error::msg(
                    "fr: training.validation is not supported: the validation images would be \
                     training identities, scored without their mirrors (use best_on_test)",
                ));
            }
        }
        Ok(FaceRecognition {
            params,
            protocol: ctx.protocol,
            template_pairs: vec![],
        })
    }
}

impl Task for FaceRecognition {
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        self.test_labels(test)?;
        if self.protocol == Protocol::FineTune {
            train.require("fr fine-tuning", &[self.params.identity.as_str()])?;
        }
        Ok(())
    }

    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        let test_labels = self.test_labels(&ctx.test.dataset.info())?;
        if let Some(templates) = &self.params.templates {
            if !ctx.metrics.is_empty() {
                return Err(Error::msg(
                    "fr: with `templates` the metrics are TAR at FAR on template scores; \
                     the experiment's `metrics:` (read on image pairs) cannot apply",
                ));
            }
            self.template_pairs = read_pairs(templates)?;
        }
        let labels: Vec<&str> = test_labels.iter().map(String::as_str).collect();
        let mirrored = with_mirrors(&ctx.test);
        match ctx.protocol {
            Protocol::LinearProbe => self.frozen(ctx, &mirrored, &labels),
            Protocol::FineTune => self.fine_tune(ctx, mirrored, &labels),
        }
    }
}

impl FaceRecognition {
    /// The test split's labels that verification reads, checked present:
    /// `template`, `media`, `faceness` with `templates`; `same` and `fold`
    /// on a pairs dataset, else `identity`. A template set without
    /// `templates` is refused (its pair list is needed).
    fn test_labels(&self, info: &DatasetInfo) -> Result<Vec<String>> {
        let p = &self.params;
        let needed = if p.templates.is_some() {
            TEMPLATE_LABELS.iter().map(|l| l.to_string()).collect()
        } else if info.labels.iter().any(|l| l == TEMPLATE) {
            return Err(Error::msg(
                "fr: the test split holds IJB templates (label `template`); set the task's \
                 `templates: {pairs: <meta/..._template_pair_label.txt>}` to score them",
            ));
        } else if info.pairs.is_some() {
            vec![p.same.clone(), p.fold.clone()]
        } else {
            vec![p.identity.clone()]
        };
        info.require("fr", &needed.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(needed)
    }

    /// `linear_probe`: the frozen backbone's own output is the embedding,
    /// scored by verification directly (PCL's pairs evaluation of frozen
    /// features); nothing is trained.
    fn frozen(&self, ctx: &EvalContext<'_>, mirrored: &EvalSplit, labels: &[&str]) -> Result<Metrics> {
        let extracted = ctx.extract_inputs(mirrored, self.params.batch_size, labels)?;
        let [output] = extracted.inputs.as_slice() else {
            return Err(Error::msg(format!(
                "fr: the embedding is one backbone output, but `feature` ({}) gives {} tensors",
                ctx.feature,
                extracted.inputs.len()
            )));
        };
        tracing::info!(
            images = output.size()[0] / 2,
            dim = output.size()[1..].iter().product::<i64>(),
            "fr: verification of the frozen, flip-summed embedding"
        );
        self.verify(ctx, &flip_sum(output)?, &first_half(&extracted.labels))
    }

    /// `fine_tune`: the backbone's copy and an embedding layer trained with
    /// a margin classifier over the train split's identities, through
    /// [`fit`]; the head's outputs on the (mirrored) test split are the
    /// embeddings verification scores.
    fn fine_tune(&self, ctx: &EvalContext<'_>, mirrored: EvalSplit, labels: &[&str]) -> Result<Metrics> {
        let p = &self.params;
        let training = p.training.over(fine_tune_defaults())?;
        let (train, classes) = self.train_split(ctx)?;
        let inner = EvalContext {
            backbone: ctx.backbone,
            feature: ctx.feature,
            copy_backbone: ctx.copy_backbone,
            protocol: ctx.protocol,
            train,
            test: mirrored,
            metrics: ctx.metrics,
            device: ctx.device,
            seed: ctx.seed,
            workers: ctx.workers,
            dir: ctx.dir.clone(),
            resume: ctx.resume,
        };
        let spec = HeadSpec {
            dim: p.embedding_dim,
            classes,
            kind: p.margin_loss,
            scale: p.scale,
            margin: p.margin(),
        };
        tracing::info!(classes, images = inner.train.dataset.len(), margin = ?spec.kind, "fr: fine-tuning");
        let slot = ClassifierSlot::default();
        let head = |path: visage_core::tch::nn::Path<'_>, shapes: &[Vec<i64>]| slot.build(path, shapes, &spec);
        let loss = |embeddings: &Tensor, labels: &Labels| {
            let ids = label(labels, &p.identity, "fr")?;
            match (labels.get(MIX_PARTNER), labels.get(MIX_LAMBDA)) {
                (Some(partners), Some(lam)) => slot.mixed_loss(embeddings, ids, partners, lam),
                _ => slot.loss(embeddings, ids),
            }
        };
        let score = |outputs: &Tensor, labels: &Labels| self.verify(ctx, &flip_sum(outputs)?, &first_half(labels));
        let headline = if p.templates.is_some() {
            "tar_at_far_1e-4"
        } else {
            "accuracy"
        };
        let recipe = Recipe {
            name: "fr embedding",
            labels,
            training: &training,
            selection: Selection {
                metric: headline.into(),
                higher_is_better: true,
            },
        };
        let hooks = FineTuneHooks {
            mixup: p.mixup.as_ref(),
            landmarks: p.landmark_regularisation.as_ref(),
            reference: ctx.backbone,
            identity: &p.identity,
            seed: ctx.seed,
        };
        Ok(fit_with(&inner, &recipe, &head, &loss, &score, &hooks)?.metrics)
    }

    /// The train split (the few-shot subset when asked for) and the
    /// classifier's classes (the largest identity kept, plus one).
    fn train_split(&self, ctx: &EvalContext<'_>) -> Result<(EvalSplit, i64)> {
        let p = &self.params;
        let dataset = &ctx.train.dataset;
        dataset.info().require("fr fine-tuning", &[p.identity.as_str()])?;
        let identities = identities(dataset.as_ref(), &p.identity)?;
        let kept = few_shot(&identities, p.shots, p.identities);
        let classes = kept.iter().map(|&i| identities[i]).max().map_or(0, |m| m + 1);
        if kept.is_empty() {
            return Err(Error::msg("fr: the training split is empty"));
        }
        let dataset: Arc<dyn Dataset> = if kept.len() == identities.len() {
            dataset.clone()
        } else {
            tracing::info!(kept = kept.len(), of = identities.len(), "fr: few-shot training subset");
            Arc::new(Subset::new(dataset.clone(), kept))
        };
        let split = EvalSplit {
            dataset,
            augmentations: ctx.train.augmentations.clone(),
        };
        Ok((split, classes))
    }

    /// LAFS's verification of `embeddings` `[N, D]` (the test images,
    /// flip-summed) with `labels` of the same images: the dataset's pairs
    /// (images `2i`, `2i+1`) when it has them, else balanced pairs built
    /// from the identities (seeded by the evaluation's seed); the
    /// experiment's metrics, or `verification` and `tar_at_far`. With
    /// `templates`, LAFS's template verification instead.
    fn verify(&self, ctx: &EvalContext<'_>, embeddings: &Tensor, labels: &Labels) -> Result<Metrics> {
        let p = &self.params;
        if let Some(templates) = &p.templates {
            return template_metrics(embeddings, labels, &self.template_pairs, &templates.pairs);
        }
        let (rows, pair_labels) = if ctx.test.dataset.info().pairs.is_some() {
            (
                embeddings.shallow_clone(),
                labels.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect(),
            )
        } else {
            let ids = Vec::<i64>::try_from(&label(labels, &p.identity, "fr")?.flatten(0, -1))?;
            balanced_pairs(&ids, p.pairs, FOLDS, ctx.seed)?.arrange(embeddings, &p.same, &p.fold)
        };
        let verification = Verification(VerificationParams {
            same: p.same.clone(),
            fold: p.fold.clone(),
            folds: FOLDS,
            cosine_threshold: p.threshold,
        });
        let tar = TarAtFar(TarParams {
            same: p.same.clone(),
            ..TarParams::default()
        });
        ctx.score(&rows, &pair_labels, &[&verification, &tar])
    }
}

/// The identity of every sample of `dataset`, in index order.
fn identities(dataset: &dyn Dataset, name: &str) -> Result<Vec<i64>> {
    (0..dataset.len())
        .map(|i| {
            let sample = dataset.get(i)?;
            let id = sample
                .labels
                .get(name)
                .ok_or_else(|| Error::msg(format!("fr: training sample {i} has no `{name}` label")))?;
            Ok(id.f_int64_value(&[])?)
        })
        .collect()
}
