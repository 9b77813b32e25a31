//! The `alignment` task: the dense head trained on heatmaps through
//! [`visage_tasks::fit::fit`], scored with the NMEs of its soft-argmax
//! points in pixels.

use visage_core::dataset::{DatasetInfo, LandmarkLayout};
use visage_core::metric::{Labels, Metric, Metrics};
use visage_core::task::{EvalContext, Task, TaskContext};
use visage_core::tch::{nn, Kind, Tensor};
use visage_core::{Error, Result};
use visage_tasks::fit::{fit, Fitted, Recipe, Selection};
use visage_tasks::heads::{heatmap_points, AlignmentLoss, Head};
use visage_tasks::training::Training;

use crate::head::HeatmapHead;
use crate::params::AlignmentParams;
use crate::points::{to_pixels, to_units};
use crate::units::{default_metrics, headline, with_box};
use visage_tasks::image_size::image_size;
use visage_tasks::labels::read_label;

/// The face-alignment task.
pub struct Alignment {
    params: AlignmentParams,
    training: Training,
}

impl Alignment {
    /// Checks the parameters and sets the training recipe of the protocol.
    pub fn new(params: AlignmentParams, ctx: &TaskContext) -> Result<Self> {
        params.check()?;
        let training = params.training(ctx.protocol)?;
        Ok(Alignment { params, training })
    }

    /// The recipe this task trains with.
    pub fn recipe(&self) -> &Training {
        &self.training
    }

    /// Trains and scores; also returns the head's test outputs (heatmap
    /// logits `[N, K, h, w]`) and labels, for inspection.
    pub fn fit(&self, ctx: &EvalContext<'_>) -> Result<Fitted> {
        let layout = self.layout(&ctx.train.dataset.info(), &ctx.test.dataset.info())?;
        let p = &self.params;
        let (height, width) = image_size(ctx, &ctx.train, "train")?;
        let test_size = image_size(ctx, &ctx.test, "test")?;
        if test_size != (height, width) {
            return Err(Error::msg(format!(
                "alignment: train images are {height}x{width} but test images {}x{} \
                 (give both splits one size with the evaluation's augmentations)",
                test_size.0, test_size.1
            )));
        }
        let mut labels = vec![p.label.as_str()];
        if layout.has_box {
            labels.push(p.box_label.as_str());
        }
        if let Some(visible) = &p.visible {
            labels.push(visible.as_str());
        }
        let metrics = default_metrics(&layout, p)?;
        let defaults: Vec<&dyn Metric> = metrics.iter().map(|m| m as &dyn Metric).collect();
        let count = layout.count as i64;
        let build = |path: nn::Path<'_>, shapes: &[Vec<i64>]| -> Result<Box<dyn Head>> {
            Ok(Box::new(HeatmapHead::new(path, shapes, count, p.head())?))
        };
        let objective = AlignmentLoss {
            heatmap_size: p.heatmap_size,
            radius: p.heatmap_radius,
        };
        let loss = |outputs: &Tensor, labels: &Labels| -> Result<Tensor> {
            let truth = landmarks(labels, &p.label)?;
            Ok(objective.compute(outputs, &to_units(truth, height, width))?.total)
        };
        let score = |outputs: &Tensor, labels: &Labels| -> Result<Metrics> {
            let predicted = to_pixels(&heatmap_points(outputs)?, height, width);
            let (labels, derived) = with_box(labels, &p.label, &p.box_label)?;
            if derived {
                tracing::debug!(
                    "alignment: no `{}` label; box units use the box the true landmarks span",
                    p.box_label
                );
            }
            ctx.score(&predicted, &labels, &defaults)
        };
        let recipe = Recipe {
            name: "alignment head",
            labels: &labels,
            training: &self.training,
            selection: Selection {
                metric: headline(&layout).into(),
                higher_is_better: false,
            },
        };
        if !layout.has_box {
            tracing::info!(
                "alignment: the dataset has no face box; nme_box and nme_diag use the box the true landmarks span"
            );
        }
        fit(ctx, &recipe, &build, &loss, &score)
    }

    /// The landmark layout of the train and test splits, or an error naming
    /// what is missing.
    fn layout(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<LandmarkLayout> {
        let label = self.params.label.as_str();
        let read = |info: &DatasetInfo, what: &str| -> Result<LandmarkLayout> {
            info.require("alignment", &[label])
                .map_err(|e| Error::msg(format!("{e} (its {what} split)")))?;
            info.landmarks.clone().ok_or_else(|| {
                Error::msg(format!(
                    "alignment needs a landmark layout (`landmarks` in the dataset's info), \
                     but the {what} split's dataset gives none"
                ))
            })
        };
        let (train, test) = (read(train, "train")?, read(test, "test")?);
        if train != test {
            return Err(Error::msg(format!(
                "alignment: the train split's landmark layout `{}` ({} points) differs from the test split's `{}` ({})",
                train.name, train.count, test.name, test.count
            )));
        }
        Ok(train)
    }
}

/// The true landmarks `[N, K, 2]` of a batch.
fn landmarks<'a>(labels: &'a Labels, name: &str) -> Result<&'a Tensor> {
    labels
        .get(name)
        .ok_or_else(|| Error::msg(format!("alignment: the batch lacks label `{name}`")))
}

impl Task for Alignment {
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        self.layout(train, test).map(|_| ())
    }

    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        Ok(self.fit(ctx)?.metrics)
    }

    /// The mean shape: the train split's mean landmarks in pixels,
    /// predicted for every test face and scored like the head's points.
    fn constant(&self, ctx: &EvalContext<'_>) -> Result<Option<Metrics>> {
        let layout = self.layout(&ctx.train.dataset.info(), &ctx.test.dataset.info())?;
        let p = &self.params;
        let train = read_label(ctx, &ctx.train, &p.label)?.f_to_kind(Kind::Float)?;
        let mut labels = Labels::from([(p.label.clone(), read_label(ctx, &ctx.test, &p.label)?)]);
        if layout.has_box {
            labels.insert(p.box_label.clone(), read_label(ctx, &ctx.test, &p.box_label)?);
        }
        if let Some(visible) = &p.visible {
            labels.insert(visible.clone(), read_label(ctx, &ctx.test, visible)?);
        }
        let count = labels[&p.label].size()[0];
        let predicted = train
            .f_mean_dim(0, false, None)?
            .f_unsqueeze(0)?
            .f_expand([count, -1, -1], false)?;
        let (labels, _) = with_box(&labels, &p.label, &p.box_label)?;
        let metrics = default_metrics(&layout, p)?;
        let defaults: Vec<&dyn Metric> = metrics.iter().map(|m| m as &dyn Metric).collect();
        ctx.score(&predicted, &labels, &defaults).map(Some)
    }
}
