//! `example_rotation`: RotNet's pretext task. Every image of the batch is
//! shown at 0, 90, 180 and 270 degrees, and a linear head on the backbone's
//! features classifies the rotation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::{feature, POOLED};
use visage_core::method::{Losses, Method, MethodContext, StepContext};
use visage_core::tch::{nn, nn::Module, Tensor};
use visage_core::{Batch, Result};

/// Parameters of `example_rotation`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationParams {
    /// Backbone output the rotation head reads.
    #[serde(default = "default_feature")]
    pub feature: String,
}

fn default_feature() -> String {
    POOLED.into()
}

/// The method: a 4-way rotation classifier.
pub struct Rotation {
    head: nn::Linear,
    feature: String,
}

impl Rotation {
    /// Creates the rotation head under `ctx.vs`.
    pub fn new(params: RotationParams, ctx: &MethodContext<'_>) -> Result<Self> {
        let dim = ctx.output_dim(&params.feature)?;
        let head = nn::linear(&ctx.vs / "rotation_head", dim, 4, Default::default());
        Ok(Rotation {
            head,
            feature: params.feature,
        })
    }
}

impl Method for Rotation {
    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses> {
        let backbone = ctx.backbone;
        let n = batch.len();
        let views: Vec<Tensor> = (0..4).map(|k| batch.images.rot90(k, [2, 3])).collect();
        let images = Tensor::cat(&views, 0);
        let targets =
            Tensor::arange(4, (visage_core::tch::Kind::Int64, images.device())).repeat_interleave_self_int(n, 0, None);
        let features = backbone.forward(&images, true)?;
        let logits = self.head.forward(feature(&features, &self.feature)?);
        let mut losses = Losses::default();
        losses.push("rotation", logits.cross_entropy_for_logits(&targets));
        Ok(losses)
    }
}
