//! Backbones: images in, named feature outputs out.

use std::collections::BTreeMap;

use tch::{nn, Tensor};

use crate::guard::Guarded;
use crate::Result;

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
    /// Patch side in pixels, for token-based backbones that support masking.
    fn patch_size(&self) -> Option<i64> {
        None
    }
    /// Runs the images keeping only the patches `keep` (int64 `[N, K]`,
    /// row-major patch indices), as masked image modelling needs. Backbones
    /// without tokens refuse.
    fn forward_masked(&self, images: &Tensor, keep: &Tensor, train: bool) -> Result<Features> {
        let _ = (images, keep, train);
        Err(crate::Error::msg(
            "this backbone does not support token masking (use a ViT)",
        ))
    }
    /// The points `[N, L, 2]` (`(x, y)` in pixels, see
    /// [`crate::labels`]) at which a landmark-token backbone samples its
    /// tokens, as its own landmark network predicts them. Others refuse.
    fn landmarks(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        let _ = (images, train);
        Err(crate::Error::msg(
            "this backbone predicts no landmarks (use fvit, or mobilenet_v3 with `landmarks`)",
        ))
    }
    /// Runs the images with one token per point of `points` `[N, K, 2]`
    /// (pixels), as LAFS's views with jittered or subsampled landmarks need.
    /// Backbones whose tokens are not sampled at points refuse.
    fn forward_at(&self, images: &Tensor, points: &Tensor, train: bool) -> Result<Features> {
        let _ = (images, points, train);
        Err(crate::Error::msg(
            "this backbone does not sample tokens at given points (use fvit)",
        ))
    }
}

/// What a backbone constructor receives.
pub struct BackboneContext<'a> {
    /// Where to create the parameters.
    pub vs: nn::Path<'a>,
    /// Channels of the input images.
    pub in_channels: i64,
}

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
    fn patch_size(&self) -> Option<i64> {
        self.run(|b| Ok(b.patch_size())).unwrap_or(None)
    }
    fn forward_masked(&self, images: &Tensor, keep: &Tensor, train: bool) -> Result<Features> {
        self.run(|b| b.forward_masked(images, keep, train))
    }
    fn landmarks(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        self.run(|b| b.landmarks(images, train))
    }
    fn forward_at(&self, images: &Tensor, points: &Tensor, train: bool) -> Result<Features> {
        self.run(|b| b.forward_at(images, points, train))
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
