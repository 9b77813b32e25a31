//! Visage plugin `{{name}}`: a self-supervised method. Registered as `{{name}}`.
//!
//! The pretext below regresses each image's per-channel mean and standard
//! deviation from the backbone's pooled features: real, trainable, and weak.
//! Replace it with your method's views, heads and losses.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::{feature, POOLED};
use visage_core::method::{Losses, Method, MethodContext, StepContext};
use visage_core::tch::{nn, nn::Module, Reduction, Tensor};
use visage_core::{declare_plugin, Batch, Registry, Result};

/// Parameters, checked before anything is built.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Weight of the loss.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// The method's head and settings.
pub struct Pretext {
    head: nn::Linear,
    weight: f64,
}

impl Pretext {
    fn new(params: Params, ctx: &MethodContext<'_>) -> Result<Self> {
        let head = nn::linear(&ctx.vs / "{{name}}_head", ctx.output_dim(POOLED)?, 6, Default::default());
        Ok(Pretext { head, weight: params.weight })
    }
}

impl Method for Pretext {
    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses> {
        let backbone = ctx.backbone;
        let images = &batch.images;
        let mean = images.mean_dim(&[2i64, 3][..], false, images.kind());
        let std = images.std_dim(&[2i64, 3][..], true, false);
        let target = Tensor::cat(&[mean, std], 1);
        let features = backbone.forward(images, true)?;
        let prediction = self.head.forward(feature(&features, POOLED)?);
        let mut losses = Losses::default();
        losses.push("{{name}}", prediction.mse_loss(&target, Reduction::Mean) * self.weight);
        Ok(losses)
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.method("{{name}}", Pretext::new)
}

declare_plugin!(name: "{{name}}", register: register);
