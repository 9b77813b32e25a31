//! Visage plugin `{{name}}`: a backbone. Registered as `{{name}}`.
//!
//! Replace the model below with yours; keep the `pooled` output so that
//! every task can read it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::{Backbone, BackboneContext, FeatureSpec, Features, POOLED};
use visage_core::tch::{nn, nn::Module, Tensor};
use visage_core::{declare_plugin, Registry, Result};

/// Parameters, checked before anything is built.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Feature dimension.
    #[serde(default = "default_dim")]
    pub dim: i64,
}

fn default_dim() -> i64 {
    32
}

/// Global average pool of the image, then a learned projection.
pub struct Model {
    projection: nn::Linear,
    dim: i64,
}

impl Model {
    fn new(params: Params, ctx: &BackboneContext<'_>) -> Result<Self> {
        let projection = nn::linear(&ctx.vs / "projection", ctx.in_channels, params.dim, Default::default());
        Ok(Model { projection, dim: params.dim })
    }
}

impl Backbone for Model {
    fn outputs(&self) -> Vec<FeatureSpec> {
        vec![FeatureSpec { name: POOLED.into(), dim: self.dim }]
    }

    fn forward(&self, images: &Tensor, _train: bool) -> Result<Features> {
        let pooled = images.mean_dim(&[2i64, 3][..], false, images.kind());
        Ok(Features::from([(POOLED.to_string(), self.projection.forward(&pooled))]))
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.backbone("{{name}}", Model::new)
}

declare_plugin!(name: "{{name}}", register: register);
