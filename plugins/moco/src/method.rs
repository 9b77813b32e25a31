//! `moco_v3`: the method of MoCo v3 (Chen, Xie and He, 2021; the paper's
//! Algorithm 1). Each of two augmented views is encoded by the backbone,
//! the projector and the predictor into queries `q1`, `q2`, and by the
//! momentum encoder (a copy of the backbone and projector, updated by EMA)
//! into keys `k1`, `k2`; the loss is `ctr(q1, k2) + ctr(q2, k1)`
//! ([`crate::loss::symmetric`]). The context's teachers own the momentum
//! copies and move them after every optimiser step at the `momentum`
//! schedule (logged as `momentum/momentum_encoder` and
//! `momentum/momentum_projector`). Each step also logs `spread`, the
//! collapse monitor of [`visage_core::nn::contrastive::spread`] on the
//! first view's queries (about 1 spread out, 0 collapsed).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::{feature, Backbone, POOLED};
use visage_core::method::{Losses, Method, MethodContext, StepContext, ViewGroup};
use visage_core::nn::contrastive::spread;
use visage_core::nn::vit::TOKENS;
use visage_core::scalars::Scalars;
use visage_core::schedule::Schedule;
use visage_core::tch::Tensor;
use visage_core::teacher::Teacher;
use visage_core::{Batch, Error, Result};

use crate::loss::symmetric;
use visage_core::nn::mlp::{LinearInit, Mlp, MlpShape};

/// Var-store path of a ViT's patch embedding, frozen by
/// [`MocoV3Params::frozen_patch_projection`].
pub const PATCH_PROJECTION: &str = "patch_embed.proj";

/// Parameters of `moco_v3`. The defaults are the paper's (ViT-B: hidden
/// 4096, output 256, tau 0.2, momentum 0.99 -> 1 by a cosine).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MocoV3Params {
    /// Backbone output the projector reads (ViT: the class token after the
    /// final norm; ResNet: the pooled trunk).
    #[serde(default = "default_feature")]
    pub feature: String,
    /// Hidden width of the projector and predictor MLPs.
    #[serde(default = "default_hidden")]
    pub hidden: i64,
    /// Output width of the projector and predictor.
    #[serde(default = "default_dim")]
    pub dim: i64,
    /// Linear layers of the projector (default: 3 for a transformer
    /// backbone, one that offers a `tokens` output, else 2; the official
    /// MoCo_ViT and MoCo_ResNet).
    #[serde(default)]
    pub projector_layers: Option<usize>,
    /// Linear layers of the predictor.
    #[serde(default = "default_predictor_layers")]
    pub predictor_layers: usize,
    /// An affine-free batch norm after the predictor's last layer
    /// (default: yes for a transformer backbone, no otherwise, as the
    /// official code).
    #[serde(default)]
    pub predictor_last_bn: Option<bool>,
    /// Softmax temperature tau of the contrastive loss.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// EMA momentum of the momentum encoder (backbone and projector).
    #[serde(default = "default_momentum")]
    pub momentum: Schedule,
    /// Freeze the ViT's patch embedding at its random initialisation (the
    /// paper's Sec. 4.2 "random patch projection", `stop_grad_conv1`);
    /// refused for backbones without `patch_embed.proj`.
    #[serde(default)]
    pub frozen_patch_projection: bool,
}

fn default_feature() -> String {
    POOLED.into()
}
fn default_hidden() -> i64 {
    4096
}
fn default_dim() -> i64 {
    256
}
fn default_predictor_layers() -> usize {
    2
}
fn default_temperature() -> f64 {
    0.2
}
fn default_momentum() -> Schedule {
    Schedule::cosine(0.99, 1.0)
}

impl Default for MocoV3Params {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("defaults deserialize")
    }
}

/// The method.
pub struct MocoV3 {
    projector: Mlp,
    predictor: Mlp,
    momentum_encoder: Teacher,
    momentum_projector: Mlp,
    feature: String,
    temperature: f64,
    log: Scalars,
}

impl MocoV3 {
    /// Builds the MLPs, asks for the momentum copies and, with
    /// `frozen_patch_projection`, freezes the backbone's patch embedding.
    pub fn new(p: MocoV3Params, ctx: &MethodContext<'_>) -> Result<Self> {
        let input = ctx.output_dim(&p.feature)?;
        if !(p.temperature > 0.0 && p.temperature.is_finite()) {
            return Err(Error::msg(format!(
                "moco_v3.temperature: must be positive, got {}",
                p.temperature
            )));
        }
        let transformer = ctx.backbone_outputs.iter().any(|o| o.name == TOKENS);
        let projector = MlpShape {
            layers: p.projector_layers.unwrap_or(if transformer { 3 } else { 2 }),
            input,
            hidden: p.hidden,
            output: p.dim,
            last_bn: true,
            init: LinearInit::Torch,
        };
        let predictor = MlpShape {
            layers: p.predictor_layers,
            input: p.dim,
            hidden: p.hidden,
            output: p.dim,
            last_bn: p.predictor_last_bn.unwrap_or(transformer),
            init: LinearInit::Torch,
        };
        if p.frozen_patch_projection {
            let frozen = ctx
                .teachers
                .freeze_online(PATCH_PROJECTION)
                .map_err(|e| Error::msg(format!("moco_v3.frozen_patch_projection needs a ViT: {e}")))?;
            tracing::info!(
                ?frozen,
                "moco_v3: the patch projection stays at its random initialisation"
            );
        }
        let (online, target) = (&ctx.vs / "projector", &ctx.vs / "momentum_projector");
        let method = MocoV3 {
            projector: Mlp::new(&online, projector)?,
            predictor: Mlp::new(&(&ctx.vs / "predictor"), predictor)?,
            momentum_projector: Mlp::new(&target, projector)?,
            momentum_encoder: ctx.teachers.momentum_backbone("momentum_encoder", p.momentum.clone())?,
            feature: p.feature,
            temperature: p.temperature,
            log: ctx.log.clone(),
        };
        ctx.teachers
            .follow("momentum_projector", &online, &target, p.momentum)?;
        Ok(method)
    }

    /// The query of one view: predictor(projector(backbone(x))), batch
    /// norms on this view's batch as in the official code.
    pub fn query(&self, backbone: &dyn Backbone, x: &Tensor) -> Result<Tensor> {
        let features = backbone.forward(x, true)?;
        let z = self.projector.forward(feature(&features, &self.feature)?, true);
        Ok(self.predictor.forward(&z, true))
    }

    /// The key of one view: the momentum projector on the momentum
    /// encoder's features, without gradient (batch statistics, as MoCo's
    /// momentum encoder in training mode).
    pub fn key(&self, x: &Tensor) -> Result<Tensor> {
        let features = self.momentum_encoder.forward(x, true)?;
        let f = feature(&features, &self.feature)?;
        Ok(visage_core::tch::no_grad(|| self.momentum_projector.forward(f, true)))
    }

    /// The loss of two views of the same images.
    pub fn loss(&self, backbone: &dyn Backbone, x1: &Tensor, x2: &Tensor) -> Result<Tensor> {
        let (q1, q2) = (self.query(backbone, x1)?, self.query(backbone, x2)?);
        self.log.record("spread", spread(&q1));
        let (k1, k2) = (self.key(x1)?, self.key(x2)?);
        symmetric([&q1, &q2], [&k1, &k2], self.temperature)
    }
}

impl Method for MocoV3 {
    fn views(&self) -> Vec<ViewGroup> {
        vec![ViewGroup::exactly("two augmented views", 2)]
    }

    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses> {
        let [a, b] = match batch.views.as_slice() {
            [a, b] => [a, b],
            other => {
                return Err(Error::msg(format!(
                    "moco_v3: expected two views per image (pretrain.views), got {}",
                    other.len()
                )))
            }
        };
        let mut losses = Losses::default();
        losses.push("contrastive", self.loss(ctx.backbone, &a.images, &b.images)?);
        Ok(losses)
    }
}
