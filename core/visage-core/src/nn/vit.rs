//! Vision Transformer (Dosovitskiy et al., 2021) with timm's and MAE's
//! parameter names (`patch_embed.proj.*`, `cls_token`, `pos_embed`,
//! `blocks.N.attn.qkv.*`, `blocks.N.mlp.fc1.*`, `norm.*`), and MAE-style
//! token masking: [`VisionTransformer::forward_masked`] keeps the given
//! patches only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::resnet::check_indices;
use crate::backbone::{
    Backbone, FeatureSpec, Features, Intermediate, Intermediates, ParameterLayers, TokenMasking, POOLED,
};
use crate::{Error, Result};

/// Name of the class token output `[N, D]` (after the final norm).
pub const CLS: &str = "cls";
/// Name of the patch token output `[N, L, D]` (after the final norm).
pub const TOKENS: &str = "tokens";

/// A named ViT size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VitSize {
    /// Width 192, depth 12, 3 heads.
    Tiny,
    /// Width 384, depth 12, 6 heads.
    Small,
    /// Width 768, depth 12, 12 heads.
    Base,
    /// Width 1024, depth 24, 16 heads.
    Large,
}

impl VitSize {
    /// (width, depth, heads).
    pub fn dims(self) -> (i64, i64, i64) {
        match self {
            VitSize::Tiny => (192, 12, 3),
            VitSize::Small => (384, 12, 6),
            VitSize::Base => (768, 12, 12),
            VitSize::Large => (1024, 24, 16),
        }
    }
}

/// Position embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PosEmbed {
    /// Fixed 2-D sine-cosine (MAE, MoCo v3); not trained.
    Sincos,
    /// Learned (timm, the original ViT).
    Learned,
}

/// How the `pooled` output is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// The class token.
    Cls,
    /// The mean of the patch tokens.
    Mean,
}

/// Parameters of the `vit` backbones. `width`, `depth` and `heads`
/// override the named `size`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VitParams {
    /// Named size.
    #[serde(default = "default_size")]
    pub size: VitSize,
    /// Token width (overrides `size`).
    #[serde(default)]
    pub width: Option<i64>,
    /// Number of blocks (overrides `size`).
    #[serde(default)]
    pub depth: Option<i64>,
    /// Attention heads (overrides `size`).
    #[serde(default)]
    pub heads: Option<i64>,
    /// Input image side in pixels.
    #[serde(default = "default_image_size")]
    pub image_size: i64,
    /// Patch side in pixels (8 or 16 usually).
    #[serde(default = "default_patch")]
    pub patch: i64,
    /// MLP hidden width as a multiple of the width.
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// Bias in the qkv projection.
    #[serde(default = "yes")]
    pub qkv_bias: bool,
    /// LayerNorm epsilon (timm and MAE: 1e-6).
    #[serde(default = "default_eps")]
    pub ln_eps: f64,
    /// Position embedding.
    #[serde(default = "default_pos")]
    pub pos_embed: PosEmbed,
    /// What `pooled` is.
    #[serde(default = "default_pool")]
    pub pool: Pool,
    /// Stochastic depth rate of the last block (linearly increasing).
    #[serde(default)]
    pub drop_path: f64,
}

fn default_size() -> VitSize {
    VitSize::Small
}
fn default_image_size() -> i64 {
    224
}
fn default_patch() -> i64 {
    16
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn yes() -> bool {
    true
}
fn default_eps() -> f64 {
    1e-6
}
fn default_pos() -> PosEmbed {
    PosEmbed::Sincos
}
fn default_pool() -> Pool {
    Pool::Cls
}

impl VitParams {
    /// Parameters of a named size with every other field at its default.
    pub fn sized(size: VitSize) -> Self {
        serde_json::from_value(serde_json::json!({ "size": size })).expect("defaults deserialize")
    }
}

/// MAE's initialisation of linear layers: Xavier uniform weights, zero bias.
fn linear(p: nn::Path, c_in: i64, c_out: i64, bias: bool) -> nn::Linear {
    let bound = (6.0 / (c_in + c_out) as f64).sqrt();
    let config = nn::LinearConfig {
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        bs_init: bias.then_some(nn::Init::Const(0.0)),
        bias,
    };
    nn::linear(p, c_in, c_out, config)
}

fn layer_norm(p: nn::Path, dim: i64, eps: f64) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![dim],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    )
}

/// One pre-norm transformer block.
#[derive(Debug)]
pub struct Block {
    norm1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    heads: i64,
    drop_path: f64,
}

impl Block {
    /// A block of width `dim` under `p` with timm's names.
    pub fn new(p: &nn::Path, dim: i64, heads: i64, mlp_ratio: f64, qkv_bias: bool, eps: f64, drop_path: f64) -> Self {
        let hidden = (dim as f64 * mlp_ratio).round() as i64;
        Block {
            norm1: layer_norm(p / "norm1", dim, eps),
            qkv: linear(p / "attn" / "qkv", dim, 3 * dim, qkv_bias),
            proj: linear(p / "attn" / "proj", dim, dim, true),
            norm2: layer_norm(p / "norm2", dim, eps),
            fc1: linear(p / "mlp" / "fc1", dim, hidden, true),
            fc2: linear(p / "mlp" / "fc2", hidden, dim, true),
            heads,
            drop_path,
        }
    }

    fn attention(&self, x: &Tensor) -> Tensor {
        let (n, l, d) = x.size3().expect("tokens are [N, L, D]");
        let qkv = x
            .apply(&self.qkv)
            .reshape([n, l, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let out = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false);
        out.transpose(1, 2).reshape([n, l, d]).apply(&self.proj)
    }

    /// Runs the block on tokens `[N, L, D]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let x = x + drop_path(&self.attention(&x.apply(&self.norm1)), self.drop_path, train);
        let mlp = x.apply(&self.norm2).apply(&self.fc1).gelu("none").apply(&self.fc2);
        &x + drop_path(&mlp, self.drop_path, train)
    }
}

/// Stochastic depth: drops whole samples of a residual branch (rate
/// `rate`, survivors scaled by `1 / (1 - rate)`); the identity when not
/// `train`. A general block, also used by plugins' transformers.
pub fn drop_path(x: &Tensor, rate: f64, train: bool) -> Tensor {
    if !train || rate == 0.0 {
        return x.shallow_clone();
    }
    let keep = 1.0 - rate;
    let mut shape = vec![x.size()[0]];
    shape.extend(std::iter::repeat_n(1, x.dim() - 1));
    let mask = Tensor::empty(shape.as_slice(), (x.kind(), x.device()))
        .bernoulli_float_(keep)
        .g_div_scalar(keep);
    x * mask
}

/// The 2-D sine-cosine position embedding of MAE for a `grid x grid` patch
/// grid, with a zero row for the class token first: `[1, 1 + grid^2, dim]`.
pub fn sincos_2d(dim: i64, grid: i64) -> Tensor {
    let quarter = dim / 4;
    let omega = (Tensor::arange(quarter, (Kind::Double, tch::Device::Cpu)) / quarter as f64)
        .multiply_scalar(-(10000f64.ln()))
        .exp();
    let coords = Tensor::arange(grid, (Kind::Double, tch::Device::Cpu));
    // MAE's meshgrid puts w first: emb_h uses grid[0] (the w coordinate).
    let w = coords.repeat([grid]); // x varies fastest
    let h = coords.repeat_interleave_self_int(grid, 0, None);
    let embed = |pos: &Tensor| {
        let out = pos.unsqueeze(1) * omega.unsqueeze(0);
        Tensor::cat(&[out.sin(), out.cos()], 1)
    };
    let grid_embed = Tensor::cat(&[embed(&w), embed(&h)], 1);
    let cls = Tensor::zeros([1, dim], (Kind::Double, tch::Device::Cpu));
    Tensor::cat(&[cls, grid_embed], 0).to_kind(Kind::Float).unsqueeze(0)
}

/// A ViT encoder (no classifier head).
#[derive(Debug)]
pub struct VisionTransformer {
    patch_embed: nn::Conv2D,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    width: i64,
    patch: i64,
    grid: i64,
    pool: Pool,
}

impl VisionTransformer {
    /// Builds the encoder under `vs`.
    pub fn new(vs: &nn::Path, in_channels: i64, params: &VitParams) -> Result<Self> {
        let (w, d, h) = params.size.dims();
        let (width, depth, heads) = (
            params.width.unwrap_or(w),
            params.depth.unwrap_or(d),
            params.heads.unwrap_or(h),
        );
        check(
            width > 0 && heads > 0 && width % heads == 0,
            "heads",
            format!("must divide width {width}, got {heads}"),
        )?;
        check(depth > 0, "depth", format!("must be positive, got {depth}"))?;
        check(
            params.patch > 0,
            "patch",
            format!("must be positive, got {}", params.patch),
        )?;
        check(
            params.image_size > 0 && params.image_size % params.patch == 0,
            "image_size",
            format!(
                "must be a multiple of patch {}, got {}",
                params.patch, params.image_size
            ),
        )?;
        check(
            params.pos_embed == PosEmbed::Learned || width % 4 == 0,
            "pos_embed",
            format!("sincos needs a width divisible by 4, got {width}"),
        )?;
        check(
            (0.0..1.0).contains(&params.drop_path),
            "drop_path",
            format!("must be in [0, 1), got {}", params.drop_path),
        )?;
        check(
            params.mlp_ratio > 0.0,
            "mlp_ratio",
            format!("must be positive, got {}", params.mlp_ratio),
        )?;
        let grid = params.image_size / params.patch;
        let bound = (6.0 / ((in_channels * params.patch * params.patch) + width) as f64).sqrt();
        let patch_embed = nn::conv2d(
            vs / "patch_embed" / "proj",
            in_channels,
            width,
            params.patch,
            nn::ConvConfig {
                stride: params.patch,
                ws_init: nn::Init::Uniform { lo: -bound, up: bound },
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            },
        );
        let cls_token = vs.var("cls_token", &[1, 1, width], nn::Init::Randn { mean: 0.0, stdev: 0.02 });
        let pos_embed = match params.pos_embed {
            PosEmbed::Sincos => {
                let fixed = vs.zeros_no_train("pos_embed", &[1, 1 + grid * grid, width]);
                tch::no_grad(|| fixed.shallow_clone().copy_(&sincos_2d(width, grid)));
                fixed
            }
            PosEmbed::Learned => vs.var(
                "pos_embed",
                &[1, 1 + grid * grid, width],
                nn::Init::Randn { mean: 0.0, stdev: 0.02 },
            ),
        };
        let blocks = (0..depth)
            .map(|i| {
                let rate = if depth > 1 {
                    params.drop_path * i as f64 / (depth - 1) as f64
                } else {
                    params.drop_path
                };
                Block::new(
                    &(vs / "blocks" / i),
                    width,
                    heads,
                    params.mlp_ratio,
                    params.qkv_bias,
                    params.ln_eps,
                    rate,
                )
            })
            .collect();
        Ok(VisionTransformer {
            patch_embed,
            cls_token,
            pos_embed,
            blocks,
            norm: layer_norm(vs / "norm", width, params.ln_eps),
            width,
            patch: params.patch,
            grid,
            pool: params.pool,
        })
    }

    /// Patch side in pixels.
    pub fn patch(&self) -> i64 {
        self.patch
    }

    /// Number of patches per image.
    pub fn num_patches(&self) -> i64 {
        self.grid * self.grid
    }

    /// Patch embeddings plus positions `[N, L, D]`, without the class token.
    fn embed(&self, images: &Tensor) -> Result<Tensor> {
        let size = images.size();
        let side = self.grid * self.patch;
        if size.len() != 4 || size[2] != side || size[3] != side {
            return Err(Error::msg(format!(
                "the ViT was built for {side}x{side} images (image_size), got a batch of shape {size:?}"
            )));
        }
        let x = self.patch_embed.forward(images).flatten(2, 3).transpose(1, 2);
        Ok(x + self.pos_embed.narrow(1, 1, self.num_patches()))
    }

    /// The class token with its position, then `tokens` `[N, K, D]`.
    fn with_class_token(&self, tokens: Tensor) -> Tensor {
        let n = tokens.size()[0];
        let cls = (&self.cls_token + self.pos_embed.narrow(1, 0, 1)).expand([n, 1, self.width], true);
        Tensor::cat(&[cls, tokens], 1)
    }

    /// Runs the class token and `tokens` `[N, K, D]` through the blocks.
    fn encode(&self, tokens: Tensor, train: bool) -> Features {
        let mut x = self.with_class_token(tokens);
        for block in &self.blocks {
            x = block.forward(&x, train);
        }
        let x = x.apply(&self.norm);
        let cls = x.select(1, 0);
        let patches = x.narrow(1, 1, x.size()[1] - 1);
        let pooled = match self.pool {
            Pool::Cls => cls.shallow_clone(),
            Pool::Mean => patches.mean_dim(1, false, None),
        };
        Features::from([
            (CLS.to_string(), cls),
            (TOKENS.to_string(), patches),
            (POOLED.to_string(), pooled),
        ])
    }

    /// Encodes only the patches `keep` (int64 `[N, K]`, indices in
    /// `0..num_patches`, row-major over the grid) plus the class token, as
    /// MAE's encoder does. `tokens` then holds the K kept patches.
    pub fn forward_masked(&self, images: &Tensor, keep: &Tensor, train: bool) -> Result<Features> {
        let x = self.embed(images)?;
        let (n, l, d) = (x.size()[0], x.size()[1], x.size()[2]);
        let k = keep.size();
        if k.len() != 2 || k[0] != n || keep.kind() != Kind::Int64 {
            return Err(Error::msg(format!(
                "keep must be int64 [N={n}, K], got {:?} {:?}",
                keep.kind(),
                k
            )));
        }
        let (lo, hi) = (keep.min().int64_value(&[]), keep.max().int64_value(&[]));
        if lo < 0 || hi >= l {
            return Err(Error::msg(format!("keep indices must be in 0..{l}, got {lo}..={hi}")));
        }
        let index = keep.unsqueeze(-1).expand([n, k[1], d], true);
        Ok(self.encode(x.gather(1, &index, false), train))
    }
}

fn check(ok: bool, field: &str, what: String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::msg(format!("{field}: {what}")))
    }
}

impl Backbone for VisionTransformer {
    fn outputs(&self) -> Vec<FeatureSpec> {
        [POOLED, CLS, TOKENS]
            .iter()
            .map(|name| FeatureSpec {
                name: name.to_string(),
                dim: self.width,
            })
            .collect()
    }

    fn forward(&self, images: &Tensor, train: bool) -> Result<Features> {
        let x = self.embed(images)?;
        Ok(self.encode(x, train))
    }

    fn layers(&self) -> Option<&dyn ParameterLayers> {
        Some(self)
    }

    fn intermediates(&self) -> Option<&dyn Intermediates> {
        Some(self)
    }

    fn token_masking(&self) -> Option<&dyn TokenMasking> {
        Some(self)
    }
}

/// timm's grouping: the embeddings are layer 0, `blocks.N` layer `N + 1`,
/// the final norm after them; no weight decay on the class token and
/// position embeddings (timm's `no_weight_decay()`).
impl ParameterLayers for VisionTransformer {
    fn num_layers(&self) -> usize {
        self.blocks.len()
    }
    fn layer_of(&self, name: &str) -> usize {
        let block = name
            .strip_prefix("blocks.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|n| n.parse::<usize>().ok());
        match block {
            Some(n) => n + 1,
            None if ["cls_token", "pos_embed", "patch_embed."]
                .iter()
                .any(|p| name.starts_with(p)) =>
            {
                0
            }
            None => self.blocks.len() + 1,
        }
    }
    fn no_weight_decay(&self, name: &str) -> bool {
        name == "cls_token" || name == "pos_embed"
    }
}

/// Block outputs before the final norm: the patch tokens on their grid,
/// the class token as the prefix.
impl Intermediates for VisionTransformer {
    fn count(&self) -> usize {
        self.blocks.len()
    }
    fn channels(&self) -> Vec<i64> {
        vec![self.width; self.blocks.len()]
    }
    fn forward_intermediates(&self, images: &Tensor, indices: &[usize], train: bool) -> Result<Vec<Intermediate>> {
        check_indices(indices, self.blocks.len(), "ViT blocks")?;
        let deepest = indices.iter().copied().max().unwrap_or(0);
        let mut x = self.with_class_token(self.embed(images)?);
        let n = x.size()[0];
        let mut outputs = Vec::with_capacity(deepest + 1);
        for block in &self.blocks[..=deepest] {
            x = block.forward(&x, train);
            outputs.push(x.shallow_clone());
        }
        Ok(indices
            .iter()
            .map(|&i| {
                let x = &outputs[i];
                let map = x
                    .narrow(1, 1, self.num_patches())
                    .view([n, self.grid, self.grid, self.width])
                    .permute([0, 3, 1, 2]);
                Intermediate {
                    map,
                    prefix: Some(x.narrow(1, 0, 1)),
                }
            })
            .collect())
    }
}

impl TokenMasking for VisionTransformer {
    fn patch_size(&self) -> i64 {
        self.patch
    }
    fn num_patches(&self) -> i64 {
        self.grid * self.grid
    }
    fn forward_masked(&self, images: &Tensor, keep: &Tensor, train: bool) -> Result<Features> {
        VisionTransformer::forward_masked(self, images, keep, train)
    }
}

/// MAE's random masking: for each image, the indices of `keep` patches out
/// of `num_patches` drawn by `argsort` of uniform noise, sorted ascending.
pub fn random_keep(batch: i64, num_patches: i64, keep: i64, device: tch::Device) -> Tensor {
    let noise = Tensor::rand([batch, num_patches], (Kind::Float, device));
    noise.argsort(1, false).narrow(1, 0, keep).sort(1, false).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn tiny(image_size: i64, patch: i64) -> Result<(nn::VarStore, VisionTransformer)> {
        let vs = nn::VarStore::new(Device::Cpu);
        let params = VitParams {
            depth: Some(1),
            image_size,
            patch,
            ..VitParams::sized(VitSize::Tiny)
        };
        let model = VisionTransformer::new(&vs.root(), 3, &params)?;
        Ok((vs, model))
    }

    #[test]
    fn masking_keeps_the_chosen_patches() {
        let (vs, model) = tiny(32, 8).unwrap();
        assert_eq!(model.num_patches(), 16);
        let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let keep = random_keep(2, 16, 4, Device::Cpu);
        assert_eq!(keep.size(), vec![2, 4]);
        let out = model.forward_masked(&x, &keep, false).unwrap();
        assert_eq!(out[TOKENS].size(), vec![2, 4, 192]);
        // Keeping every patch is the unmasked forward.
        let all = Tensor::arange(16, (Kind::Int64, Device::Cpu))
            .unsqueeze(0)
            .repeat([2, 1]);
        let a = model.forward_masked(&x, &all, false).unwrap();
        let b = model.forward(&x, false).unwrap();
        assert!((&a[CLS] - &b[CLS]).abs().max().double_value(&[]) < 1e-5);
        // The sin-cos positions are fixed: not among the trainable variables.
        assert!(!vs.trainable_variables().iter().any(|t| t.size() == vec![1, 17, 192]));
    }

    #[test]
    fn wrong_sizes_are_errors() {
        assert!(tiny(30, 8).unwrap_err().to_string().starts_with("image_size:"));
        let (_vs, model) = tiny(32, 8).unwrap();
        let x = Tensor::rand([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let err = model.forward(&x, false).unwrap_err().to_string();
        assert!(err.contains("built for 32x32"), "{err}");
        let bad = Tensor::from_slice(&[0i64, 16]).unsqueeze(0);
        let err = model
            .forward_masked(&x.narrow(2, 0, 32).narrow(3, 0, 32), &bad, false)
            .unwrap_err();
        assert!(err.to_string().contains("0..16"), "{err}");
    }
}
