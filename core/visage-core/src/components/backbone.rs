//! Backbones: images in, named feature outputs out.
//!
//! Every backbone implements [`Backbone::outputs`] and
//! [`Backbone::forward`]. What only some backbones can do is an optional
//! capability, reported by a method that returns `None` by default:
//!
//! | capability | for | built-in backbones |
//! |---|---|---|
//! | [`ParameterLayers`] | layer-wise lr decay, no-decay parameters (timm's `group_matcher`, `no_weight_decay`) | `vit`, `resnet` |
//! | [`Intermediates`] | dense heads, feature MIM (timm's `forward_intermediates`) | `vit`, `resnet` |
//! | [`TokenMasking`] | MAE/MCF-style masked encoders | `vit` |
//! | [`LandmarkPredictor`], [`PointTokens`] | LAFS's landmark tokens | `fvit` (plugins/lafs) |
//!
//! A caller asks for a capability through the `dyn Backbone` helpers
//! ([`masking`](trait.Backbone.html#method.masking), ...), which turn its
//! absence into an error naming it.

use std::collections::BTreeMap;

use tch::{nn, Tensor};

use crate::guard::Guarded;
use crate::{Error, Result};

/// Name of the pooled feature vector every backbone should offer.
pub const POOLED: &str = "pooled";

/// One output a backbone offers, e.g. `pooled` with 512 channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Output name (`pooled`, `cls`, `tokens`, `trunk`, ...).
    pub name: String,
    /// Channel dimension of the output.
    pub dim: i64,
}

/// Named outputs of one forward pass.
pub type Features = BTreeMap<String, Tensor>;

/// A feature extractor.
pub trait Backbone {
    /// The outputs [`Backbone::forward`] returns.
    fn outputs(&self) -> Vec<FeatureSpec>;
    /// Runs the images `[N, C, H, W]`; `train` selects training behaviour
    /// (dropout, batch-norm statistics).
    fn forward(&self, images: &Tensor, train: bool) -> Result<Features>;
    /// Which layer each parameter belongs to, and which take no weight
    /// decay. `None`: the backbone reports nothing, and layer-wise decay on
    /// it is an error.
    fn layers(&self) -> Option<&dyn ParameterLayers> {
        None
    }
    /// Outputs of chosen blocks or stages.
    fn intermediates(&self) -> Option<&dyn Intermediates> {
        None
    }
    /// Encoding only some patches.
    fn token_masking(&self) -> Option<&dyn TokenMasking> {
        None
    }
    /// Predicting facial landmarks from the image.
    fn landmark_predictor(&self) -> Option<&dyn LandmarkPredictor> {
        None
    }
    /// One token per given point.
    fn point_tokens(&self) -> Option<&dyn PointTokens> {
        None
    }
}

/// The layer structure of a backbone's parameters, for layer-wise
/// learning-rate decay (BEiT, MAE fine-tuning) and weight-decay exclusions,
/// as timm's `group_matcher()` and `no_weight_decay()` report them.
///
/// Names are relative to the backbone's root (`blocks.3.attn.qkv.weight`).
/// Layer 0 is the embedding or stem, `1..=num_layers()` the blocks or
/// stages, and `num_layers() + 1` what comes after them (a final norm),
/// which keeps the full learning rate.
pub trait ParameterLayers {
    /// The number of blocks or stages.
    fn num_layers(&self) -> usize;
    /// The layer of parameter `name`.
    fn layer_of(&self, name: &str) -> usize;
    /// Whether `name` takes no weight decay although it has two or more
    /// dimensions (class token, position embeddings); biases and norms are
    /// excluded by their dimension anyway.
    fn no_weight_decay(&self, name: &str) -> bool {
        let _ = name;
        false
    }
}

/// The output of one block or stage.
#[derive(Debug)]
pub struct Intermediate {
    /// A feature map `[N, C, H, W]` (ViT patch tokens on their grid).
    pub map: Tensor,
    /// Prefix tokens `[N, P, C]` of token backbones (the class token), when
    /// there are any.
    pub prefix: Option<Tensor>,
}

impl Intermediate {
    /// The whole token sequence `[N, P + H * W, C]`, prefix first, as a
    /// ViT's block emits it.
    pub fn tokens(&self) -> Tensor {
        let tokens = self.map.flatten(2, 3).transpose(1, 2);
        match &self.prefix {
            Some(prefix) => Tensor::cat(&[prefix.shallow_clone(), tokens], 1),
            None => tokens,
        }
    }
}

/// Outputs of chosen blocks or stages (timm's `forward_intermediates`),
/// for dense heads (FaRL's FPN on ViT blocks 4, 6, 8, 12) and feature
/// targets (MCF's MIM on blocks 3, 6, 9, 12).
pub trait Intermediates {
    /// How many blocks or stages can be taken (`0..count`).
    fn count(&self) -> usize;
    /// Channels of each block's or stage's output.
    fn channels(&self) -> Vec<i64>;
    /// The raw outputs (before any final norm) of the blocks or stages
    /// `indices` (0-based), in the order asked.
    fn forward_intermediates(&self, images: &Tensor, indices: &[usize], train: bool) -> Result<Vec<Intermediate>>;
}

/// MAE-style token masking.
pub trait TokenMasking {
    /// Patch side in pixels.
    fn patch_size(&self) -> i64;
    /// Patches per image.
    fn num_patches(&self) -> i64;
    /// Runs the images keeping only the patches `keep` (int64 `[N, K]`,
    /// row-major patch indices) and the prefix tokens.
    fn forward_masked(&self, images: &Tensor, keep: &Tensor, train: bool) -> Result<Features>;
}

/// A backbone that predicts facial landmarks from the image.
pub trait LandmarkPredictor {
    /// Landmarks per image.
    fn num_landmarks(&self) -> i64;
    /// The points `[N, L, 2]` (`(x, y)` in pixels, see [`crate::labels`]).
    fn landmarks(&self, images: &Tensor, train: bool) -> Result<Tensor>;
}

/// A backbone whose tokens are sampled at points (LAFS's fViT).
pub trait PointTokens {
    /// Runs the images with one token per point of `points` `[N, K, 2]`
    /// (pixels), as LAFS's views with jittered or subsampled landmarks need.
    fn forward_at(&self, images: &Tensor, points: &Tensor, train: bool) -> Result<Features>;
}

fn missing(what: &str, example: &str) -> Error {
    Error::msg(format!("this backbone does not support {what} ({example} does)"))
}

impl dyn Backbone + '_ {
    /// [`Backbone::layers`], or an error saying the backbone reports none.
    pub fn parameter_layers(&self) -> Result<&dyn ParameterLayers> {
        self.layers().ok_or_else(|| {
            missing(
                "layer-wise grouping of its parameters (Backbone::layers)",
                "vit, resnet",
            )
        })
    }
    /// [`Backbone::intermediates`], or an error.
    pub fn intermediate_outputs(&self) -> Result<&dyn Intermediates> {
        self.intermediates()
            .ok_or_else(|| missing("intermediate outputs", "vit, resnet"))
    }
    /// [`Backbone::token_masking`], or an error.
    pub fn masking(&self) -> Result<&dyn TokenMasking> {
        self.token_masking().ok_or_else(|| missing("token masking", "vit"))
    }
    /// [`Backbone::landmark_predictor`], or an error.
    pub fn landmark_network(&self) -> Result<&dyn LandmarkPredictor> {
        self.landmark_predictor()
            .ok_or_else(|| missing("landmark prediction", "fvit, mobilenet_v3 with `landmarks`"))
    }
    /// [`Backbone::point_tokens`], or an error.
    pub fn tokens_at_points(&self) -> Result<&dyn PointTokens> {
        self.point_tokens()
            .ok_or_else(|| missing("tokens sampled at given points", "fvit"))
    }
}

/// What a backbone constructor receives.
pub struct BackboneContext<'a> {
    /// Where to create the parameters.
    pub vs: nn::Path<'a>,
    /// Channels of the input images.
    pub in_channels: i64,
}

// The guarded backbone hands out itself as each capability, so that the
// capability's methods also run under the plugin's panic guard.
impl<B: Backbone> Backbone for Guarded<B> {
    fn outputs(&self) -> Vec<FeatureSpec> {
        self.run(|b| Ok(b.outputs())).unwrap_or_else(|e| {
            tracing::error!("{e}");
            vec![]
        })
    }
    fn forward(&self, images: &Tensor, train: bool) -> Result<Features> {
        self.run(|b| b.forward(images, train))
    }
    fn layers(&self) -> Option<&dyn ParameterLayers> {
        self.has(|b| b.layers().is_some())
            .then_some(self as &dyn ParameterLayers)
    }
    fn intermediates(&self) -> Option<&dyn Intermediates> {
        self.has(|b| b.intermediates().is_some())
            .then_some(self as &dyn Intermediates)
    }
    fn token_masking(&self) -> Option<&dyn TokenMasking> {
        self.has(|b| b.token_masking().is_some())
            .then_some(self as &dyn TokenMasking)
    }
    fn landmark_predictor(&self) -> Option<&dyn LandmarkPredictor> {
        self.has(|b| b.landmark_predictor().is_some())
            .then_some(self as &dyn LandmarkPredictor)
    }
    fn point_tokens(&self) -> Option<&dyn PointTokens> {
        self.has(|b| b.point_tokens().is_some())
            .then_some(self as &dyn PointTokens)
    }
}

impl<B: Backbone> Guarded<B> {
    /// Whether the backbone has a capability, asked under the guard (a
    /// panic counts as no).
    fn has(&self, capability: impl FnOnce(&B) -> bool) -> bool {
        self.run(|b| Ok(capability(b))).unwrap_or(false)
    }
}

/// Runs `f` on capability `C` of the guarded backbone, under its guard.
macro_rules! capability {
    ($self:ident, $get:ident, |$c:ident| $body:expr) => {
        $self.run(|b| {
            let $c = b
                .$get()
                .ok_or_else(|| Error::msg(concat!("capability ", stringify!($get), " vanished")))?;
            $body
        })
    };
}

impl<B: Backbone> ParameterLayers for Guarded<B> {
    fn num_layers(&self) -> usize {
        capability!(self, layers, |c| Ok(c.num_layers())).unwrap_or(0)
    }
    fn layer_of(&self, name: &str) -> usize {
        capability!(self, layers, |c| Ok(c.layer_of(name))).unwrap_or(usize::MAX)
    }
    fn no_weight_decay(&self, name: &str) -> bool {
        capability!(self, layers, |c| Ok(c.no_weight_decay(name))).unwrap_or(false)
    }
}

impl<B: Backbone> Intermediates for Guarded<B> {
    fn count(&self) -> usize {
        capability!(self, intermediates, |c| Ok(c.count())).unwrap_or(0)
    }
    fn channels(&self) -> Vec<i64> {
        capability!(self, intermediates, |c| Ok(c.channels())).unwrap_or_default()
    }
    fn forward_intermediates(&self, images: &Tensor, indices: &[usize], train: bool) -> Result<Vec<Intermediate>> {
        capability!(self, intermediates, |c| c.forward_intermediates(images, indices, train))
    }
}

impl<B: Backbone> TokenMasking for Guarded<B> {
    fn patch_size(&self) -> i64 {
        capability!(self, token_masking, |c| Ok(c.patch_size())).unwrap_or(0)
    }
    fn num_patches(&self) -> i64 {
        capability!(self, token_masking, |c| Ok(c.num_patches())).unwrap_or(0)
    }
    fn forward_masked(&self, images: &Tensor, keep: &Tensor, train: bool) -> Result<Features> {
        capability!(self, token_masking, |c| c.forward_masked(images, keep, train))
    }
}

impl<B: Backbone> LandmarkPredictor for Guarded<B> {
    fn num_landmarks(&self) -> i64 {
        capability!(self, landmark_predictor, |c| Ok(c.num_landmarks())).unwrap_or(0)
    }
    fn landmarks(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        capability!(self, landmark_predictor, |c| c.landmarks(images, train))
    }
}

impl<B: Backbone> PointTokens for Guarded<B> {
    fn forward_at(&self, images: &Tensor, points: &Tensor, train: bool) -> Result<Features> {
        capability!(self, point_tokens, |c| c.forward_at(images, points, train))
    }
}

/// Looks up output `name` in `features`, with an error listing what exists.
pub fn feature<'f>(features: &'f Features, name: &str) -> Result<&'f Tensor> {
    features.get(name).ok_or_else(|| {
        let have: Vec<&str> = features.keys().map(String::as_str).collect();
        crate::Error::msg(format!(
            "backbone has no output `{name}` (it offers: {})",
            have.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use tch::{Device, Kind};

    fn build(registry: &Registry, vs: &nn::VarStore, name: &str, params: &str) -> Box<dyn Backbone> {
        let ctx = BackboneContext {
            vs: vs.root() / "backbone",
            in_channels: 3,
        };
        registry.build_backbone(name, params, &ctx).unwrap()
    }

    /// Capabilities reach the caller through the plugin-side guard; the
    /// last intermediate output is what `forward` builds on.
    #[test]
    fn guarded_backbones_report_their_capabilities() {
        let mut registry = Registry::new();
        crate::builtin::register(&mut registry).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = build(
            &registry,
            &vs,
            "vit",
            r#"{"size": "tiny", "depth": 2, "image_size": 32, "patch": 8}"#,
        );
        let resnet = build(&registry, &vs, "resnet", r#"{"width": 4, "small_stem": true}"#);
        let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));

        let masking = vit.masking().unwrap();
        assert_eq!((masking.patch_size(), masking.num_patches()), (8, 16));
        assert_eq!(vit.parameter_layers().unwrap().num_layers(), 2);
        let blocks = vit.intermediate_outputs().unwrap();
        assert_eq!(blocks.channels(), vec![192, 192]);
        let out = blocks.forward_intermediates(&x, &[1, 0], false).unwrap();
        assert_eq!(out[0].map.size(), [2, 192, 4, 4]);
        assert_eq!(out[0].tokens().size(), [2, 17, 192]);
        // The final norm of the last block's tokens is the `tokens` output.
        let tokens = vit.forward(&x, false).unwrap().remove("tokens").unwrap();
        let normed = out[0]
            .tokens()
            .narrow(1, 1, 16)
            .layer_norm([192], None::<Tensor>, None::<Tensor>, 1e-6, false);
        assert!((normed - tokens).abs().max().double_value(&[]) < 1e-4);
        let err = blocks.forward_intermediates(&x, &[2], false).unwrap_err().to_string();
        assert_eq!(
            err,
            "intermediate output 2 asked for, but there are 2 ViT blocks (0..2)"
        );

        let stages = resnet.intermediate_outputs().unwrap();
        assert_eq!(stages.channels(), vec![4, 8, 16, 32]);
        let last = stages.forward_intermediates(&x, &[3], false).unwrap().remove(0);
        let trunk = resnet.forward(&x, false).unwrap().remove("trunk").unwrap();
        assert!(last.map.equal(&trunk) && last.prefix.is_none());
        let err = resnet.masking().err().unwrap().to_string();
        assert_eq!(err, "this backbone does not support token masking (vit does)");
        assert!(resnet.tokens_at_points().is_err() && resnet.landmark_network().is_err());
    }
}
