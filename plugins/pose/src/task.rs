//! The `pose` task: a BatchNorm + linear head on the backbone's flattened
//! output regresses yaw, pitch and roll in degrees with an L1 loss, scored
//! by the mean absolute error of each angle.

use visage_core::dataset::DatasetInfo;
use visage_core::metric::{label, Labels, Metrics};
use visage_core::task::{EvalContext, Task, TaskContext};
use visage_core::tch::{nn, Kind, Tensor};
use visage_core::{Error, Result};
use visage_tasks::fit::{fit, Recipe, Selection};
use visage_tasks::heads::{flat_dim, BnLinearHead, Head};
use visage_tasks::metrics::pose::{PoseMaeMetric, PoseMaeParams};
use visage_tasks::training::Training;

use crate::filter::keep_within;
use crate::params::{defaults, PoseParams};
use visage_tasks::labels::read_label;

/// The `pose` task.
pub struct PoseTask {
    params: PoseParams,
    training: Training,
}

impl PoseTask {
    /// The task under `ctx.protocol`'s default recipe, overridden by
    /// `params.training`.
    pub fn new(params: PoseParams, ctx: &TaskContext) -> Result<Self> {
        if let Some(limit) = params.max_angle {
            if !(limit.is_finite() && limit > 0.0) {
                return Err(Error::msg(format!(
                    "pose: max_angle: expected a positive number of degrees, got {limit}"
                )));
            }
        }
        let training = params.training.over(defaults(ctx.protocol))?;
        Ok(PoseTask { params, training })
    }
}

/// The L1 loss of predicted against true angles, degrees (PyTorch's
/// `L1Loss`: the mean over samples and angles).
fn l1(predicted: &Tensor, labels: &Labels, name: &str) -> Result<Tensor> {
    let target = label(labels, name, "pose loss")?.f_to_kind(Kind::Float)?;
    if target.size() != predicted.size() {
        return Err(Error::msg(format!(
            "pose: label `{name}` has shape {:?}, expected [N, 3] (yaw, pitch, roll)",
            target.size()
        )));
    }
    Ok((predicted - target).f_abs()?.f_mean(Kind::Float)?)
}

impl PoseTask {
    /// `ctx` with both splits cut to the faces within `max_angle`, when the
    /// task has a limit.
    fn within_limit<'a>(&self, ctx: &EvalContext<'a>) -> Result<Option<EvalContext<'a>>> {
        let Some(limit) = self.params.max_angle else {
            return Ok(None);
        };
        let name = self.params.label.as_str();
        Ok(Some(EvalContext {
            train: keep_within(ctx, &ctx.train, name, limit, "train")?,
            test: keep_within(ctx, &ctx.test, name, limit, "test")?,
            backbone: ctx.backbone,
            feature: ctx.feature,
            copy_backbone: ctx.copy_backbone,
            protocol: ctx.protocol,
            metrics: ctx.metrics,
            device: ctx.device,
            seed: ctx.seed,
            workers: ctx.workers,
            dir: ctx.dir.clone(),
            resume: ctx.resume,
        }))
    }

    /// The experiment's metrics (or the per-angle MAE) of `predicted`.
    fn score(&self, ctx: &EvalContext<'_>, predicted: &Tensor, labels: &Labels) -> Result<Metrics> {
        let mae = PoseMaeMetric(PoseMaeParams {
            label: self.params.label.clone(),
        });
        ctx.score(predicted, labels, &[&mae])
    }
}

impl Task for PoseTask {
    fn check(&self, train: &DatasetInfo, test: &DatasetInfo) -> Result<()> {
        let name = self.params.label.as_str();
        train.require("pose", &[name])?;
        test.require("pose", &[name])
    }

    fn evaluate(&mut self, ctx: &EvalContext<'_>) -> Result<Metrics> {
        self.check(&ctx.train.dataset.info(), &ctx.test.dataset.info())?;
        let name = self.params.label.as_str();
        let filtered = self.within_limit(ctx)?;
        let ctx = filtered.as_ref().unwrap_or(ctx);
        let head = |path: nn::Path<'_>, shapes: &[Vec<i64>]| -> Result<Box<dyn Head>> {
            Ok(Box::new(BnLinearHead::new(path, flat_dim(&shapes[0]), 3)))
        };
        let loss = |predicted: &Tensor, labels: &Labels| l1(predicted, labels, name);
        let score = |predicted: &Tensor, labels: &Labels| self.score(ctx, predicted, labels);
        let recipe = Recipe {
            name: "pose head",
            labels: &[name],
            training: &self.training,
            selection: Selection {
                metric: "mae_mean".into(),
                higher_is_better: false,
            },
        };
        Ok(fit(ctx, &recipe, &head, &loss, &score)?.metrics)
    }

    /// The train split's median yaw, pitch and roll, predicted for every
    /// test face.
    fn constant(&self, ctx: &EvalContext<'_>) -> Result<Option<Metrics>> {
        self.check(&ctx.train.dataset.info(), &ctx.test.dataset.info())?;
        let filtered = self.within_limit(ctx)?;
        let ctx = filtered.as_ref().unwrap_or(ctx);
        let name = self.params.label.as_str();
        let train = read_label(ctx, &ctx.train, name)?.f_to_kind(Kind::Float)?;
        let test = read_label(ctx, &ctx.test, name)?;
        let (median, _) = train.f_median_dim(0, false)?;
        let predicted = median.f_unsqueeze(0)?.f_expand([test.size()[0], -1], false)?;
        let labels = Labels::from([(name.to_string(), test)]);
        self.score(ctx, &predicted, &labels).map(Some)
    }
}
