//! `example_byol`: BYOL (Grill et al., 2020) in a few lines, the example of
//! a method with a momentum encoder. The online backbone, projector and
//! predictor regress the momentum copies' projection of the other view;
//! the context's teachers own the momentum copies and move them by EMA
//! after every step, at the `momentum` schedule (logged as
//! `momentum/target` and `momentum/projector`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::{feature, POOLED};
use visage_core::method::{Losses, Method, MethodContext, StepContext, ViewGroup};
use visage_core::schedule::Schedule;
use visage_core::tch::{nn, nn::ModuleT, Tensor};
use visage_core::teacher::Teacher;
use visage_core::{Batch, Result};

/// Parameters of `example_byol`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ByolParams {
    /// Backbone output the projector reads.
    #[serde(default = "default_feature")]
    pub feature: String,
    /// Hidden width of the projector and predictor.
    #[serde(default = "default_hidden")]
    pub hidden: i64,
    /// Output width of the projector and predictor.
    #[serde(default = "default_dim")]
    pub dim: i64,
    /// EMA momentum of the target (BYOL: cosine from 0.996 to 1).
    #[serde(default = "default_momentum")]
    pub momentum: Schedule,
}

fn default_feature() -> String {
    POOLED.into()
}
fn default_hidden() -> i64 {
    64
}
fn default_dim() -> i64 {
    32
}
fn default_momentum() -> Schedule {
    Schedule::cosine(0.99, 1.0)
}

/// Linear, batch norm, ReLU, linear: BYOL's projector and predictor.
fn mlp(p: nn::Path, input: i64, hidden: i64, output: i64) -> nn::SequentialT {
    nn::seq_t()
        .add(nn::linear(&p / "0", input, hidden, Default::default()))
        .add(nn::batch_norm1d(&p / "1", hidden, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&p / "3", hidden, output, Default::default()))
}

/// The method.
pub struct Byol {
    projector: nn::SequentialT,
    predictor: nn::SequentialT,
    target: Teacher,
    momentum_projector: nn::SequentialT,
    feature: String,
}

impl Byol {
    /// Builds the heads and asks for the momentum copies.
    pub fn new(p: ByolParams, ctx: &MethodContext<'_>) -> Result<Self> {
        let dim = ctx.output_dim(&p.feature)?;
        let projector = mlp(&ctx.vs / "projector", dim, p.hidden, p.dim);
        let momentum_projector = mlp(&ctx.vs / "momentum_projector", dim, p.hidden, p.dim);
        ctx.teachers.follow(
            "projector",
            &(&ctx.vs / "projector"),
            &(&ctx.vs / "momentum_projector"),
            p.momentum.clone(),
        )?;
        Ok(Byol {
            projector,
            predictor: mlp(&ctx.vs / "predictor", p.dim, p.hidden, p.dim),
            target: ctx.teachers.momentum_backbone("target", p.momentum)?,
            momentum_projector,
            feature: p.feature,
        })
    }

    /// `2 - 2 cos(q, z)`, averaged over the batch.
    fn regression(q: &Tensor, z: &Tensor) -> Tensor {
        let cos = Tensor::cosine_similarity(q, z, 1, 1e-8);
        (cos * -2.0 + 2.0).mean(None)
    }
}

impl Method for Byol {
    fn views(&self) -> Vec<ViewGroup> {
        vec![ViewGroup::exactly("two augmented views", 2)]
    }

    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses> {
        let (a, b) = (&batch.views[0].images, &batch.views[1].images);
        let both = Tensor::cat(&[a, b], 0);
        let online = ctx.backbone.forward(&both, true)?;
        let q = self
            .predictor
            .forward_t(&self.projector.forward_t(feature(&online, &self.feature)?, true), true);
        let target = self.target.forward(&both, true)?;
        let z = visage_core::tch::no_grad(|| self.momentum_projector.forward_t(&target[&self.feature], true));
        // Each view's prediction regresses the other view's target.
        let n = a.size()[0];
        let (q1, q2) = (q.narrow(0, 0, n), q.narrow(0, n, n));
        let (z1, z2) = (z.narrow(0, 0, n), z.narrow(0, n, n));
        let mut losses = Losses::default();
        losses.push("byol", Self::regression(&q1, &z2) + Self::regression(&q2, &z1));
        Ok(losses)
    }
}
