//! LAFS's fViT (Sun et al., CVPR 2024): a ViT whose tokens are not a grid
//! of patches but `P x P` patches sampled bilinearly around facial
//! landmarks, which LAFS's landmark network ([`MobileNetV3`] with a
//! landmark head) predicts from the image itself.
//!
//! Parameter names are those of LAFS's `ViT_face_landmark_patch8`
//! (`patch_to_embedding`, `cls_token`, `pos_embedding`,
//! `transformer.layers.I.{0,1}.fn...`, `mlp_head.0`, and the landmark
//! network's `stn.features...`, `output_layer.1`), so LAFS checkpoints load
//! by name. As there, token `k` takes position embedding `k + 1` whatever
//! landmark it came from, and a patch is flattened with its x offset
//! outermost, then its y offset, then the channel.
//!
//! Deliberate deviation, an option: LAFS's attention scales the logits by
//! `dim^-1/2` (the model width) instead of the usual `head_dim^-1/2`. The
//! default is the usual scale; `attention_scale: dim` reproduces LAFS, and
//! is what LAFS's published weights need.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Kind, Tensor};

use visage_core::backbone::{Backbone, FeatureSpec, Features, LandmarkPredictor, ParameterLayers, PointTokens, POOLED};
use visage_core::nn::vit::drop_path;
use visage_core::{Error, Result};

use crate::mobilenet_v3::{MobileNetV3, MobileNetV3Params};

/// Output name of the class token after the final LayerNorm (the
/// embedding; also [`POOLED`]).
pub const CLS: &str = "cls";
/// Output name of the landmark tokens after the last block `[N, K, D]`.
pub const TOKENS: &str = "tokens";

/// How attention logits are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttentionScale {
    /// `head_dim^-1/2`, as in the transformer literature.
    #[default]
    HeadDim,
    /// `dim^-1/2`, as LAFS's code does.
    Dim,
}

/// Parameters of the `fvit` backbone. The defaults are CPU-sized; LAFS's
/// fViT is `dim: 768, depth: 12, heads: 11, head_dim: 64, mlp: 2048,
/// landmarks: 196, dropout: 0.1, emb_dropout: 0.1, drop_path: 0.1,
/// landmark_width: 1.0` at 112 x 112.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FvitParams {
    /// Side of the (square) input images.
    #[serde(default = "default_image_size")]
    pub image_size: i64,
    /// Side of a sampled patch in pixels (LAFS: 8).
    #[serde(default = "default_patch")]
    pub patch: i64,
    /// Landmarks, hence tokens, per image.
    #[serde(default = "default_landmarks")]
    pub landmarks: i64,
    /// Token width.
    #[serde(default = "default_dim")]
    pub dim: i64,
    /// Transformer blocks.
    #[serde(default = "default_depth")]
    pub depth: i64,
    /// Attention heads.
    #[serde(default = "default_heads")]
    pub heads: i64,
    /// Width of one head (heads x head_dim need not equal dim).
    #[serde(default = "default_head_dim")]
    pub head_dim: i64,
    /// Hidden width of the MLPs.
    #[serde(default = "default_mlp")]
    pub mlp: i64,
    /// Dropout in attention output and MLPs.
    #[serde(default)]
    pub dropout: f64,
    /// Dropout on the embedded tokens.
    #[serde(default)]
    pub emb_dropout: f64,
    /// Stochastic depth rate of every residual branch.
    #[serde(default)]
    pub drop_path: f64,
    /// Attention logit scale.
    #[serde(default)]
    pub attention_scale: AttentionScale,
    /// Channel multiplier of the MobileNetV3 landmark network.
    #[serde(default = "default_landmark_width")]
    pub landmark_width: f64,
    /// Let gradients reach the landmark network (LAFS freezes it).
    #[serde(default)]
    pub train_landmarks: bool,
    /// Standard deviation of the class token's and the position
    /// embeddings' normal initialisation: LAFS's `torch.randn` (1.0) by
    /// default; DINO's and timm's ViTs use 0.02, which lets a small fViT's
    /// features differ between images from the start (see the README).
    #[serde(default = "default_token_init_std")]
    pub token_init_std: f64,
}

fn default_image_size() -> i64 {
    112
}
fn default_patch() -> i64 {
    8
}
fn default_landmarks() -> i64 {
    49
}
fn default_dim() -> i64 {
    192
}
fn default_depth() -> i64 {
    4
}
fn default_heads() -> i64 {
    3
}
fn default_head_dim() -> i64 {
    64
}
fn default_mlp() -> i64 {
    768
}
fn default_token_init_std() -> f64 {
    1.0
}
fn default_landmark_width() -> f64 {
    0.5
}

impl Default for FvitParams {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

/// One pre-norm block with LAFS's names.
#[derive(Debug)]
struct Block {
    attn_norm: nn::LayerNorm,
    to_qkv: nn::Linear,
    to_out: nn::Linear,
    mlp_norm: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    heads: i64,
    scale: f64,
    dropout: f64,
    drop_path: f64,
}

impl Block {
    fn new(p: nn::Path, p_: &FvitParams) -> Self {
        let inner = p_.heads * p_.head_dim;
        let (attn, mlp) = (&p / "0" / "fn", &p / "1" / "fn");
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let scale = match p_.attention_scale {
            AttentionScale::HeadDim => (p_.head_dim as f64).powf(-0.5),
            AttentionScale::Dim => (p_.dim as f64).powf(-0.5),
        };
        Block {
            attn_norm: nn::layer_norm(&attn / "norm", vec![p_.dim], Default::default()),
            to_qkv: nn::linear(&attn / "fn" / "to_qkv", p_.dim, 3 * inner, no_bias),
            to_out: nn::linear(&attn / "fn" / "to_out" / "0", inner, p_.dim, Default::default()),
            mlp_norm: nn::layer_norm(&mlp / "norm", vec![p_.dim], Default::default()),
            fc1: nn::linear(&mlp / "fn" / "net" / "0", p_.dim, p_.mlp, Default::default()),
            fc2: nn::linear(&mlp / "fn" / "net" / "3", p_.mlp, p_.dim, Default::default()),
            heads: p_.heads,
            scale,
            dropout: p_.dropout,
            drop_path: p_.drop_path,
        }
    }

    fn attention(&self, x: &Tensor, train: bool) -> Tensor {
        let (n, l, _) = x.size3().expect("tokens are [N, L, D]");
        let qkv = x
            .apply(&self.to_qkv)
            .view([n, l, 3, self.heads, -1])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let out = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, self.scale, false);
        out.transpose(1, 2)
            .reshape([n, l, -1])
            .apply(&self.to_out)
            .dropout(self.dropout, train)
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let x = x + drop_path(&self.attention(&x.apply(&self.attn_norm), train), self.drop_path, train);
        let mlp = x
            .apply(&self.mlp_norm)
            .apply(&self.fc1)
            .gelu("none")
            .dropout(self.dropout, train)
            .apply(&self.fc2)
            .dropout(self.dropout, train);
        &x + drop_path(&mlp, self.drop_path, train)
    }
}

/// LAFS's fViT with its landmark network.
#[derive(Debug)]
pub struct Fvit {
    landmark_net: MobileNetV3,
    patch_to_embedding: nn::Linear,
    cls_token: Tensor,
    pos_embedding: Tensor,
    blocks: Vec<Block>,
    head_norm: nn::LayerNorm,
    params: FvitParams,
}

impl Fvit {
    /// Builds the model under `vs` for images of `in_channels` channels.
    pub fn new(vs: &nn::Path, in_channels: i64, p: &FvitParams) -> Result<Self> {
        let positive = [
            p.image_size,
            p.patch,
            p.landmarks,
            p.dim,
            p.depth,
            p.heads,
            p.head_dim,
            p.mlp,
        ];
        if positive.iter().any(|&v| v < 1) {
            return Err(Error::msg(format!("fvit: sizes must be positive, got {p:?}")));
        }
        if !(p.token_init_std.is_finite() && p.token_init_std >= 0.0) {
            return Err(Error::msg(format!(
                "fvit: token_init_std must be a non-negative number, got {}",
                p.token_init_std
            )));
        }
        for (name, rate) in [
            ("dropout", p.dropout),
            ("emb_dropout", p.emb_dropout),
            ("drop_path", p.drop_path),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(Error::msg(format!("fvit: {name} must be in [0, 1), got {rate}")));
            }
        }
        let landmark_params = MobileNetV3Params {
            width: p.landmark_width,
            landmarks: p.landmarks,
            image_size: p.image_size,
        };
        let patch_dim = in_channels * p.patch * p.patch;
        let transformer = vs / "transformer" / "layers";
        Ok(Fvit {
            landmark_net: MobileNetV3::new(vs, in_channels, &landmark_params)?,
            patch_to_embedding: nn::linear(vs / "patch_to_embedding", patch_dim, p.dim, Default::default()),
            cls_token: vs.randn("cls_token", &[1, 1, p.dim], 0.0, p.token_init_std),
            pos_embedding: vs.randn("pos_embedding", &[1, p.landmarks + 1, p.dim], 0.0, p.token_init_std),
            blocks: (0..p.depth)
                .map(|i| Block::new(&transformer / i.to_string(), p))
                .collect(),
            head_norm: nn::layer_norm(vs / "mlp_head" / "0", vec![p.dim], Default::default()),
            params: p.clone(),
        })
    }

    /// The landmark network's points `[N, L, 2]` (pixels); without
    /// gradient unless `train_landmarks`.
    pub fn predict_landmarks(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        if self.params.train_landmarks {
            self.landmark_net.predict_landmarks(images, train)
        } else {
            tch::no_grad(|| self.landmark_net.predict_landmarks(images, false))
        }
    }

    /// Runs the transformer on tokens sampled at `points` `[N, K, 2]`,
    /// `K <= landmarks`.
    pub fn forward_at(&self, images: &Tensor, points: &Tensor, train: bool) -> Result<Features> {
        let tokens = sample_patches(images, points, self.params.patch, self.params.landmarks)?;
        let (n, k) = (tokens.size()[0], tokens.size()[1]);
        let x = tokens.apply(&self.patch_to_embedding);
        let cls = self.cls_token.expand([n, 1, self.params.dim], true);
        let mut x = (Tensor::cat(&[cls, x], 1) + self.pos_embedding.narrow(1, 0, k + 1))
            .dropout(self.params.emb_dropout, train);
        for block in &self.blocks {
            x = block.forward(&x, train);
        }
        let cls = x.select(1, 0).apply(&self.head_norm);
        Ok(Features::from([
            (POOLED.to_string(), cls.shallow_clone()),
            (CLS.to_string(), cls),
            (TOKENS.to_string(), x.narrow(1, 1, k)),
        ]))
    }
}

/// Patches `[N, K, P * P * C]` of side `patch` around each point of
/// `points` `[N, K, 2]` (pixels), sampled bilinearly (zeros outside the
/// image) at integer offsets `-P/2 .. P/2 - 1` from the point, flattened
/// x offset first, then y offset, then channel, as LAFS does.
pub fn sample_patches(images: &Tensor, points: &Tensor, patch: i64, max_points: i64) -> Result<Tensor> {
    let size = images.size();
    let p = points.size();
    if size.len() != 4 || p.len() != 3 || p[0] != size[0] || p[2] != 2 || p[1] < 1 || p[1] > max_points {
        return Err(Error::msg(format!(
            "points must be [N={}, K <= {max_points}, 2] for images [N, C, H, W], got points {p:?} and images {size:?}",
            size.first().copied().unwrap_or(-1)
        )));
    }
    let (n, c, h, w, k) = (size[0], size[1], size[2], size[3], p[1]);
    let options = (Kind::Float, images.device());
    let offsets = Tensor::arange(patch, options) - (patch / 2) as f64;
    // grid[n, k, i, j] = (x + offset_i, y + offset_j), then normalised as
    // grid_sample wants with align_corners = false: -1 and 1 are the edges.
    let points = points.to_kind(Kind::Float);
    let x = points.select(2, 0).view([n, k, 1, 1]) + offsets.view([1, 1, patch, 1]);
    let y = points.select(2, 1).view([n, k, 1, 1]) + offsets.view([1, 1, 1, patch]);
    let (x, y) = (
        x.expand([n, k, patch, patch], true),
        y.expand([n, k, patch, patch], true),
    );
    let grid =
        Tensor::stack(&[x / (w as f64 / 2.0) - 1.0, y / (h as f64 / 2.0) - 1.0], -1).view([n, k * patch, patch, 2]);
    let sampled = images.to_kind(Kind::Float).grid_sampler(&grid, 0, 0, false);
    // [N, C, K*P, P] -> [N, K, P(x), P(y), C].
    Ok(sampled
        .view([n, c, k, patch, patch])
        .permute([0, 2, 3, 4, 1])
        .reshape([n, k, patch * patch * c]))
}

impl Backbone for Fvit {
    fn outputs(&self) -> Vec<FeatureSpec> {
        [POOLED, CLS, TOKENS]
            .iter()
            .map(|name| FeatureSpec {
                name: name.to_string(),
                dim: self.params.dim,
            })
            .collect()
    }

    fn forward(&self, images: &Tensor, train: bool) -> Result<Features> {
        let points = self.predict_landmarks(images, train)?;
        self.forward_at(images, &points, train)
    }

    fn layers(&self) -> Option<&dyn ParameterLayers> {
        Some(self)
    }

    fn landmark_predictor(&self) -> Option<&dyn LandmarkPredictor> {
        Some(self)
    }

    fn point_tokens(&self) -> Option<&dyn PointTokens> {
        Some(self)
    }
}

/// The landmark network and the token embedding are layer 0,
/// `transformer.layers.I` layer `I + 1`, the head norm after them; no
/// weight decay on the class token and position embeddings.
impl ParameterLayers for Fvit {
    fn num_layers(&self) -> usize {
        self.blocks.len()
    }
    fn layer_of(&self, name: &str) -> usize {
        let block = name
            .strip_prefix("transformer.layers.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|n| n.parse::<usize>().ok());
        match block {
            Some(i) => i + 1,
            None if name.starts_with("mlp_head.") => self.blocks.len() + 1,
            None => 0,
        }
    }
    fn no_weight_decay(&self, name: &str) -> bool {
        name == "cls_token" || name == "pos_embedding"
    }
}

impl LandmarkPredictor for Fvit {
    fn num_landmarks(&self) -> i64 {
        self.params.landmarks
    }
    fn landmarks(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        self.predict_landmarks(images, train)
    }
}

impl PointTokens for Fvit {
    fn forward_at(&self, images: &Tensor, points: &Tensor, train: bool) -> Result<Features> {
        Fvit::forward_at(self, images, points, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;
    use visage_core::optim::{build_groups, BackboneLayers, GroupSpec, ParamGroup};

    #[test]
    fn a_patch_at_a_point_holds_the_pixels_around_it_x_outermost() {
        // One channel, pixel (row i, col j) = 10 i + j.
        let image = (Tensor::arange(8, (Kind::Float, Device::Cpu)).view([8, 1]) * 10.0
            + Tensor::arange(8, (Kind::Float, Device::Cpu)).view([1, 8]))
        .view([1, 1, 8, 8]);
        // At the corner-coordinate point (4, 3), offsets -1, 0 sample the
        // pixel corners (3..4, 2..3): each the mean of four pixels.
        let points = Tensor::from_slice(&[4.0f32, 3.0]).view([1, 1, 2]);
        let patch = sample_patches(&image, &points, 2, 1).unwrap().view([4]);
        let corner = |x: f64, y: f64| 10.0 * (y - 0.5) + (x - 0.5);
        let expected = [corner(3.0, 2.0), corner(3.0, 3.0), corner(4.0, 2.0), corner(4.0, 3.0)];
        for (i, e) in expected.iter().enumerate() {
            assert!(
                (patch.double_value(&[i as i64]) - e).abs() < 1e-5,
                "{patch} vs {expected:?}"
            );
        }
    }

    #[test]
    fn bad_points_are_an_error_naming_the_shapes() {
        let image = Tensor::zeros([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let points = Tensor::zeros([2, 5, 3], (Kind::Float, Device::Cpu));
        let e = sample_patches(&image, &points, 4, 10).unwrap_err().to_string();
        assert!(e.contains("[2, 5, 3]") && e.contains("K <= 10"), "{e}");
        let too_many = Tensor::zeros([2, 11, 2], (Kind::Float, Device::Cpu));
        assert!(sample_patches(&image, &too_many, 4, 10).is_err());
    }

    #[test]
    fn subsets_of_points_give_fewer_tokens() {
        let vs = nn::VarStore::new(Device::Cpu);
        let params = FvitParams {
            image_size: 32,
            landmarks: 9,
            dim: 32,
            depth: 1,
            heads: 2,
            head_dim: 8,
            mlp: 64,
            landmark_width: 0.25,
            ..Default::default()
        };
        let model = Fvit::new(&vs.root(), 3, &params).unwrap();
        let images = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let points = model.predict_landmarks(&images, false).unwrap();
        assert_eq!(points.size(), [2, 9, 2]);
        let (lo, hi) = (points.min().double_value(&[]), points.max().double_value(&[]));
        assert!(
            lo.abs() < 1e-4 && (hi - 31.0).abs() < 1e-3,
            "min-max scaled to [0, 31]: {lo} {hi}"
        );
        let some = model.forward_at(&images, &points.narrow(1, 0, 4), false).unwrap();
        assert_eq!(some[TOKENS].size(), [2, 4, 32]);
        assert_eq!(some[CLS].size(), [2, 32]);
    }

    fn scales(groups: &[ParamGroup]) -> std::collections::BTreeMap<String, (f64, f64)> {
        groups
            .iter()
            .flat_map(|g| {
                g.params
                    .iter()
                    .map(move |(n, _)| (n.clone(), (g.lr_scale, g.weight_decay)))
            })
            .collect()
    }

    #[test]
    fn fvit_reports_its_transformer_layers() {
        let vs = nn::VarStore::new(Device::Cpu);
        let params: FvitParams = serde_json::from_str(r#"{"image_size": 32, "landmarks": 4, "dim": 16, "depth": 3, "heads": 2, "head_dim": 8, "mlp": 32, "landmark_width": 0.25}"#).unwrap();
        let fvit = Fvit::new(&(vs.root() / "backbone"), 3, &params).unwrap();
        let spec = GroupSpec {
            weight_decay: 0.1,
            layer_decay: Some(0.5),
            ..Default::default()
        };
        let backbone = BackboneLayers {
            prefix: "backbone",
            layers: fvit.layers(),
        };
        let s = scales(&build_groups(&vs, &spec, Some(backbone)).unwrap());
        // Three blocks: embedding and landmark network 0.5^4, block I 0.5^(3 - I), head 1.
        assert_eq!(s["backbone.patch_to_embedding.weight"], (0.0625, 0.1));
        assert_eq!(s["backbone.cls_token"], (0.0625, 0.0));
        assert_eq!(s["backbone.stn.features.0.0.weight"].0, 0.0625);
        assert_eq!(s["backbone.transformer.layers.0.0.fn.fn.to_qkv.weight"].0, 0.125);
        assert_eq!(s["backbone.transformer.layers.2.1.fn.fn.net.0.weight"].0, 0.5);
        assert_eq!(s["backbone.mlp_head.0.weight"], (1.0, 0.0));
    }
}
