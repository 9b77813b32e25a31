//! `mcf`: Mask Contrastive Face (Wang et al., ACM MM 2023). The online ViT
//! encodes a random 25% of each image's patches (mask A) with its class
//! token; MAE's decoder turns them into a full pseudo image, which a
//! frozen pretrained teacher (MoCo v3) embeds beside the original: the MIM
//! loss compares their L2-normalised tokens at four depths
//! ([`crate::mim::feature_mim`]). The online class token, through a
//! projector and a predictor, is contrasted with the class token of an EMA
//! target encoder on an independent mask B of the same image, through the
//! target projector ([`visage_core::nn::contrastive::ctr`]). The loss is
//! `mim_weight * L_MIM + L_con`; the modes `mim_only`, `contrastive_only`
//! and `pixel_mim` (MAE) are the ablations. With the contrastive loss,
//! each step also logs `spread`, the collapse monitor of
//! [`visage_core::nn::contrastive::spread`] on the predictor's queries
//! (about 1 spread out, 0 collapsed).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::backbone::{feature, Backbone, TokenMasking};
use visage_core::method::{Losses, Method, MethodContext, StepContext, ViewGroup};
use visage_core::nn::vit::{random_keep, CLS, TOKENS};
use visage_core::schedule::Schedule;
use visage_core::tch::{self, Tensor};
use visage_core::teacher::{Teacher, TeacherSource};
use visage_core::{Batch, Error, Result};

use crate::decoder::{unpatchify, DecoderShape, MaeDecoder};
use crate::mim::{default_blocks, feature_mim, pixel_mim, Normalise};
use visage_core::nn::contrastive::{ctr, spread};
use visage_core::nn::mlp::{LinearInit, Mlp, MlpShape};
use visage_core::scalars::Scalars;

/// Which losses are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `mim_weight * L_MIM + L_con` (the paper).
    Mcf,
    /// The teacher-feature MIM alone.
    MimOnly,
    /// The mask-contrastive loss alone (no decoder, no teacher).
    ContrastiveOnly,
    /// MAE: the decoder's normalised-pixel MSE on the masked patches (no
    /// teacher, no contrastive loss).
    PixelMim,
}

impl Mode {
    fn mim(self) -> bool {
        matches!(self, Mode::Mcf | Mode::MimOnly)
    }
    fn decoder(self) -> bool {
        self != Mode::ContrastiveOnly
    }
    fn contrastive(self) -> bool {
        matches!(self, Mode::Mcf | Mode::ContrastiveOnly)
    }
}

/// Parameters of `mcf`. Defaults are the paper's for ViT-B/16.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McfParams {
    /// The losses trained (`mcf`, or an ablation).
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// The frozen MIM teacher: `{from_run: runs/moco_v3/<run>}` or
    /// `{weights: ..., backbone: ...}`; needed by `mcf` and `mim_only`.
    #[serde(default)]
    pub teacher: Option<TeacherSource>,
    /// The teacher's blocks compared by the MIM, 1-based (default: a
    /// quarter, half, three quarters and all of its depth: 3, 6, 9, 12 of
    /// 12).
    #[serde(default)]
    pub mim_blocks: Option<Vec<usize>>,
    /// Axis of the L2 normalisation of the teacher's tokens.
    #[serde(default = "default_normalise")]
    pub normalise: Normalise,
    /// Weight of the MIM loss.
    #[serde(default = "default_mim_weight")]
    pub mim_weight: f64,
    /// Fraction of the patches masked (hidden from the online and the
    /// target encoder).
    #[serde(default = "default_mask_ratio")]
    pub mask_ratio: f64,
    /// Width of the decoder.
    #[serde(default = "default_decoder_width")]
    pub decoder_width: i64,
    /// Transformer blocks of the decoder.
    #[serde(default = "default_decoder_depth")]
    pub decoder_depth: i64,
    /// Attention heads of the decoder.
    #[serde(default = "default_decoder_heads")]
    pub decoder_heads: i64,
    /// MLP ratio of the decoder's blocks.
    #[serde(default = "default_mlp_ratio")]
    pub decoder_mlp_ratio: f64,
    /// Layer-norm epsilon of the decoder.
    #[serde(default = "default_ln_eps")]
    pub decoder_ln_eps: f64,
    /// Hidden width of the projector and predictor.
    #[serde(default = "default_hidden")]
    pub hidden: i64,
    /// Output width of the projector and predictor.
    #[serde(default = "default_dim")]
    pub dim: i64,
    /// Softmax temperature of the contrastive loss.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// EMA momentum of the target encoder and projector (official: 0.99
    /// throughout).
    #[serde(default = "default_momentum")]
    pub momentum: Schedule,
    /// `pixel_mim`: standardise each target patch (MAE's `norm_pix_loss`).
    #[serde(default = "yes")]
    pub norm_pix: bool,
    /// Image channels the decoder predicts.
    #[serde(default = "default_channels")]
    pub channels: i64,
    /// The online ViT's input side in pixels; needed only without a target
    /// encoder (`mim_only`, `pixel_mim`), which otherwise gives it.
    #[serde(default)]
    pub image_size: Option<i64>,
    /// The online ViT's patch side; as `image_size`.
    #[serde(default)]
    pub patch: Option<i64>,
}

fn default_mode() -> Mode {
    Mode::Mcf
}
fn default_normalise() -> Normalise {
    Normalise::Channels
}
fn default_mim_weight() -> f64 {
    1000.0
}
fn default_mask_ratio() -> f64 {
    0.75
}
fn default_decoder_width() -> i64 {
    512
}
fn default_decoder_depth() -> i64 {
    8
}
fn default_decoder_heads() -> i64 {
    16
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_ln_eps() -> f64 {
    1e-6
}
fn default_hidden() -> i64 {
    4096
}
fn default_dim() -> i64 {
    256
}
fn default_temperature() -> f64 {
    0.2
}
fn default_momentum() -> Schedule {
    0.99.into()
}
fn yes() -> bool {
    true
}
fn default_channels() -> i64 {
    3
}

impl Default for McfParams {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("defaults deserialize")
    }
}

/// The contrastive branch: online projector and predictor, the EMA target
/// encoder and projector.
struct Contrast {
    projector: Mlp,
    predictor: Mlp,
    target: Teacher,
    target_projector: Mlp,
    temperature: f64,
    /// Where the collapse monitor `spread` goes.
    log: Scalars,
}

/// The frozen MIM teacher and the blocks it is compared at (0-based).
struct MimTeacher {
    teacher: Teacher,
    blocks: Vec<usize>,
    normalise: Normalise,
    weight: f64,
}

/// The method.
pub struct Mcf {
    mode: Mode,
    mask_ratio: f64,
    patch: i64,
    num_patches: i64,
    channels: i64,
    norm_pix: bool,
    decoder: Option<MaeDecoder>,
    mim: Option<MimTeacher>,
    contrast: Option<Contrast>,
}

/// The masks of one step: the patches kept for the online encoder (A) and
/// for the target encoder (B), int64 `[N, K]`.
pub struct Masks {
    /// Mask A (online encoder, decoder).
    pub online: Tensor,
    /// Mask B (target encoder).
    pub target: Tensor,
}

impl Mcf {
    /// Builds the decoder, the MLPs and the teachers the mode needs.
    pub fn new(p: McfParams, ctx: &MethodContext<'_>) -> Result<Self> {
        check_params(&p)?;
        let width = ctx.output_dim(CLS)?;
        let contrast = if p.mode.contrastive() {
            Some(contrast(&p, ctx, width)?)
        } else {
            None
        };
        let (patch, num_patches) = geometry(&p, contrast.as_ref())?;
        let grid = (num_patches as f64).sqrt().round() as i64;
        let decoder = if p.mode.decoder() {
            let shape = DecoderShape {
                input: width,
                width: p.decoder_width,
                depth: p.decoder_depth,
                heads: p.decoder_heads,
                mlp_ratio: p.decoder_mlp_ratio,
                ln_eps: p.decoder_ln_eps,
                patch,
                grid,
                channels: p.channels,
            };
            Some(MaeDecoder::new(&ctx.vs, shape)?)
        } else {
            None
        };
        let mim = if p.mode.mim() {
            Some(mim_teacher(&p, ctx)?)
        } else {
            None
        };
        Ok(Mcf {
            mode: p.mode,
            mask_ratio: p.mask_ratio,
            patch,
            num_patches,
            channels: p.channels,
            norm_pix: p.norm_pix,
            decoder,
            mim,
            contrast,
        })
    }

    /// Two independent random masks for `n` images.
    pub fn random_masks(&self, n: i64, device: tch::Device) -> Masks {
        let keep = self.kept();
        Masks {
            online: random_keep(n, self.num_patches, keep, device),
            target: random_keep(n, self.num_patches, keep, device),
        }
    }

    /// Patches kept per image: `num_patches * (1 - mask_ratio)`, rounded
    /// down as MAE's `int(L * (1 - mask_ratio))`, at least one.
    pub fn kept(&self) -> i64 {
        ((self.num_patches as f64 * (1.0 - self.mask_ratio)) as i64).max(1)
    }

    /// The loss terms of one step on `images` with the given masks:
    /// `mim` (already times `mim_weight`), `contrastive`, or `pixel_mim`.
    pub fn losses(&self, backbone: &dyn Backbone, images: &Tensor, masks: &Masks) -> Result<Losses> {
        let online = masking(backbone, "the online backbone")?;
        if online.patch_size() != self.patch || online.num_patches() != self.num_patches {
            return Err(Error::msg(format!(
                "mcf: the decoder was built for patch {} and {} patches, the backbone has patch {} and {}",
                self.patch,
                self.num_patches,
                online.patch_size(),
                online.num_patches()
            )));
        }
        let features = online.forward_masked(images, &masks.online, true)?;
        let cls = feature(&features, CLS)?;
        let mut losses = Losses::default();
        if let Some(decoder) = &self.decoder {
            let latent = Tensor::cat(&[cls.unsqueeze(1), feature(&features, TOKENS)?.shallow_clone()], 1);
            let pred = decoder.forward(&latent, &masks.online, true)?;
            match &self.mim {
                Some(mim) => {
                    let pseudo = unpatchify(&pred, self.patch, self.channels)?;
                    losses.push("mim", mim.loss(&pseudo, images)? * mim.weight);
                }
                None => losses.push(
                    "pixel_mim",
                    pixel_mim(&pred, images, &masks.online, self.patch, self.norm_pix)?,
                ),
            }
        }
        if let Some(c) = &self.contrast {
            losses.push("contrastive", c.loss(cls, images, &masks.target)?);
        }
        Ok(losses)
    }
}

impl Contrast {
    /// `ctr(predictor(projector(cls_A)), target_projector(target(x, B)))`.
    fn loss(&self, cls: &Tensor, images: &Tensor, keep: &Tensor) -> Result<Tensor> {
        let q = self.predictor.forward(&self.projector.forward(cls, true), true);
        self.log.record("spread", spread(&q));
        let target = masking(self.target.backbone(), "the target encoder")?;
        let k = tch::no_grad(|| -> Result<Tensor> {
            let features = target.forward_masked(images, keep, true)?;
            Ok(self.target_projector.forward(feature(&features, CLS)?, true))
        })?;
        ctr(&q, &k, self.temperature)
    }
}

impl MimTeacher {
    /// `L_MIM` of the pseudo image against the original (unweighted).
    fn loss(&self, pseudo: &Tensor, images: &Tensor) -> Result<Tensor> {
        let backbone = self.teacher.backbone();
        let layers = backbone
            .intermediates()
            .ok_or_else(|| Error::msg("mcf.teacher: the teacher backbone gives no block outputs"))?;
        let side = backbone.token_masking().map(|t| {
            let grid = (t.num_patches() as f64).sqrt().round() as i64;
            grid * t.patch_size()
        });
        let fit = |x: &Tensor| match side {
            Some(s) if x.size()[2] != s || x.size()[3] != s => x.upsample_nearest2d([s, s], None, None),
            _ => x.shallow_clone(),
        };
        let tokens = |x: &Tensor| -> Result<Vec<Tensor>> {
            let out = layers.forward_intermediates(&fit(x), &self.blocks, false)?;
            Ok(out.iter().map(|i| i.tokens()).collect())
        };
        let original = tch::no_grad(|| tokens(images))?;
        feature_mim(&tokens(pseudo)?, &original, self.normalise)
    }
}

fn check_params(p: &McfParams) -> Result<()> {
    let bad = |what: &str| Err(Error::msg(format!("mcf.{what}")));
    if !(p.mask_ratio >= 0.0 && p.mask_ratio < 1.0) {
        return bad(&format!("mask_ratio: must be in [0, 1), got {}", p.mask_ratio));
    }
    if !(p.temperature > 0.0 && p.temperature.is_finite()) {
        return bad(&format!("temperature: must be positive, got {}", p.temperature));
    }
    if !(p.mim_weight >= 0.0 && p.mim_weight.is_finite()) {
        return bad(&format!("mim_weight: must be non-negative, got {}", p.mim_weight));
    }
    if p.mode.mim() && p.teacher.is_none() {
        return bad(&format!(
            "teacher: mode {:?} needs a frozen teacher, e.g. `teacher: {{from_run: runs/moco_v3/<run>}}`",
            p.mode
        ));
    }
    p.momentum.check("mcf.momentum")
}

/// The online projector and predictor, the EMA target encoder and
/// projector.
fn contrast(p: &McfParams, ctx: &MethodContext<'_>, width: i64) -> Result<Contrast> {
    let projector = MlpShape {
        layers: 2,
        input: width,
        hidden: p.hidden,
        output: p.dim,
        last_bn: true,
        init: LinearInit::Xavier,
    };
    let predictor = MlpShape {
        layers: 2,
        input: p.dim,
        hidden: p.hidden,
        output: p.dim,
        last_bn: false,
        init: LinearInit::Xavier,
    };
    let (online, target) = (&ctx.vs / "projector", &ctx.vs / "target_projector");
    let c = Contrast {
        projector: Mlp::new(&online, projector)?,
        predictor: Mlp::new(&(&ctx.vs / "predictor"), predictor)?,
        target_projector: Mlp::new(&target, projector)?,
        target: ctx.teachers.momentum_backbone("target_encoder", p.momentum.clone())?,
        temperature: p.temperature,
        log: ctx.log.clone(),
    };
    ctx.teachers
        .follow("target_projector", &online, &target, p.momentum.clone())?;
    Ok(c)
}

/// Patch side and patches per image of the online ViT: from the target
/// encoder (its copy) when there is one, else from `image_size` and
/// `patch`.
fn geometry(p: &McfParams, contrast: Option<&Contrast>) -> Result<(i64, i64)> {
    if let Some(c) = contrast {
        let t = masking(c.target.backbone(), "the backbone")?;
        return Ok((t.patch_size(), t.num_patches()));
    }
    match (p.image_size, p.patch) {
        (Some(side), Some(patch)) if patch > 0 && side > 0 && side % patch == 0 => {
            Ok((patch, (side / patch) * (side / patch)))
        }
        (Some(side), Some(patch)) => Err(Error::msg(format!(
            "mcf.image_size: must be a positive multiple of mcf.patch {patch}, got {side}"
        ))),
        _ => Err(Error::msg(format!(
            "mcf.image_size and mcf.patch: mode {:?} has no target encoder to read the ViT's geometry from; give the backbone's image_size and patch",
            p.mode
        ))),
    }
}

/// The frozen teacher and its blocks.
fn mim_teacher(p: &McfParams, ctx: &MethodContext<'_>) -> Result<MimTeacher> {
    let source = p.teacher.as_ref().ok_or_else(|| Error::msg("mcf.teacher: missing"))?;
    let teacher = ctx
        .teachers
        .frozen_backbone("mim_teacher", source)
        .map_err(|e| Error::msg(format!("mcf.teacher: {e}")))?;
    let depth = teacher
        .backbone()
        .intermediates()
        .ok_or_else(|| Error::msg("mcf.teacher: the teacher backbone gives no block outputs (a ViT does)"))?
        .count();
    let blocks = p.mim_blocks.clone().unwrap_or_else(|| default_blocks(depth));
    if blocks.is_empty() || blocks.iter().any(|&b| b == 0 || b > depth) {
        return Err(Error::msg(format!(
            "mcf.mim_blocks: 1-based blocks of the teacher's {depth}, got {blocks:?}"
        )));
    }
    tracing::info!(?blocks, depth, "mcf: the MIM compares the teacher's blocks");
    Ok(MimTeacher {
        teacher,
        blocks: blocks.iter().map(|b| b - 1).collect(),
        normalise: p.normalise,
        weight: p.mim_weight,
    })
}

fn masking<'a>(backbone: &'a dyn Backbone, what: &str) -> Result<&'a dyn TokenMasking> {
    backbone
        .token_masking()
        .ok_or_else(|| Error::msg(format!("mcf: {what} cannot mask tokens; MCF needs a ViT")))
}

impl Method for Mcf {
    fn views(&self) -> Vec<ViewGroup> {
        vec![ViewGroup::exactly("one view (the masks make the pairs)", 1)]
    }

    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses> {
        let view = match batch.views.as_slice() {
            [v] => v,
            other => {
                return Err(Error::msg(format!(
                    "mcf: expected one view per image (pretrain.views), got {}",
                    other.len()
                )))
            }
        };
        let masks = self.random_masks(view.images.size()[0], view.images.device());
        tracing::trace!(mode = ?self.mode, "mcf step");
        self.losses(ctx.backbone, &view.images, &masks)
    }
}
