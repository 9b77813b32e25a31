//! Built-in augmentations, registered under the plugin name `builtin`.
//!
//! Geometric (move pixels and labels together):
//! `resize`, `center_crop`, `random_resized_crop`, `distance_crop`, `hflip`,
//! `rotate`, `affine`. Photometric (labels untouched): `color_jitter`,
//! `grayscale`, `gaussian_blur`, `solarize`, `sobel`, `gaussian_noise`,
//! `random_erasing`, `normalize`.
//!
//! Geometric ops follow the conventions of [`crate::labels`]: each builds
//! one [`Affine`] map (pixel-corner coordinates) and applies it to the
//! image, to `landmarks` (points leaving the image, i.e. outside
//! `0 <= x < W`, `0 <= y < H`, get `landmarks_visible = 0`, and stay 0), to `parsing` (nearest neighbour,
//! class 0 where the output leaves the input) and to `pose` (a mirror
//! negates yaw and roll, an in-plane rotation adds to roll). A mirror also
//! swaps landmark indices with [`crate::labels::IBUG68_FLIP`] and mask
//! classes with [`crate::labels::LAPA_FLIP`]. Labels a sample lacks stay
//! absent; other labels pass through unchanged.
//!
//! Images are `[C, H, W]` float in 0..1 on the CPU. All randomness comes from
//! the `seed` of [`Augmentation::apply`] through [`Rng`]; an op with
//! probability `p` first draws whether it fires, so its other draws do not
//! depend on `p`. Parameters follow torchvision's names and defaults where
//! there is one; invalid ones are [`crate::Error::Params`] errors naming the
//! field.

mod color;
mod crop;
mod filter;
mod geometry;
mod noise;
mod planar;
mod resample;
mod spatial;
#[cfg(test)]
mod tests;

use std::fmt::Display;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use color::{
    ColorJitter, ColorJitterParams, Grayscale, GrayscaleParams, Jitter, Normalize, NormalizeParams, Solarize,
    SolarizeParams,
};
pub use crop::{
    CenterCrop, CenterCropParams, CropBox, DistanceCrop, DistanceCropParams, RandomResizedCrop,
    RandomResizedCropParams, Resize, ResizeParams,
};
pub use filter::{GaussianBlur, GaussianBlurParams, Sigma, Sobel, SobelParams};
pub use geometry::Affine;
pub use noise::{EraseValue, GaussianNoise, GaussianNoiseParams, RandomErasing, RandomErasingParams};
pub use spatial::{AffineParams, Hflip, HflipParams, RandomAffine, Rotate, RotateParams, Shear};

#[cfg(doc)]
use crate::augmentation::Augmentation;
use crate::error::ParamsError;
use crate::rng::Rng;
use crate::{Error, Registry, Result};

/// Registers every built-in augmentation.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.augmentation("resize", |p: ResizeParams, _| Resize::new(p))?;
    registry.augmentation("center_crop", |p: CenterCropParams, _| CenterCrop::new(p))?;
    registry.augmentation("random_resized_crop", |p: RandomResizedCropParams, _| {
        RandomResizedCrop::new(p)
    })?;
    registry.augmentation("distance_crop", |p: DistanceCropParams, _| DistanceCrop::new(p))?;
    registry.augmentation("hflip", |p: HflipParams, _| Hflip::new(p))?;
    registry.augmentation("rotate", |p: RotateParams, _| Rotate::new(p))?;
    registry.augmentation("affine", |p: AffineParams, _| RandomAffine::new(p))?;
    registry.augmentation("color_jitter", |p: ColorJitterParams, _| ColorJitter::new(p))?;
    registry.augmentation("grayscale", |p: GrayscaleParams, _| Grayscale::new(p))?;
    registry.augmentation("gaussian_blur", |p: GaussianBlurParams, _| GaussianBlur::new(p))?;
    registry.augmentation("solarize", |p: SolarizeParams, _| Solarize::new(p))?;
    registry.augmentation("sobel", |p: SobelParams, _| Sobel::new(p))?;
    registry.augmentation("gaussian_noise", |p: GaussianNoiseParams, _| GaussianNoise::new(p))?;
    registry.augmentation("random_erasing", |p: RandomErasingParams, _| RandomErasing::new(p))?;
    registry.augmentation("normalize", |p: NormalizeParams, _| Normalize::new(p))?;
    Ok(())
}

/// An output size: one number or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Size {
    /// One number (its meaning depends on the op: a square, or `resize`'s
    /// shorter edge).
    Single(i64),
    /// `[height, width]`.
    HeightWidth([i64; 2]),
}

impl Size {
    fn check(self, field: &str) -> Result<Size> {
        let ok = match self {
            Size::Single(s) => s > 0,
            Size::HeightWidth([h, w]) => h > 0 && w > 0,
        };
        if ok {
            Ok(self)
        } else {
            Err(bad(field, format!("must be positive, got {self:?}")))
        }
    }

    /// `(height, width)`, a single number meaning a square.
    fn square(self) -> (i64, i64) {
        match self {
            Size::Single(s) => (s, s),
            Size::HeightWidth([h, w]) => (h, w),
        }
    }
}

/// A parameter error at `field` (dotted for nested fields).
pub(crate) fn bad(field: &str, message: impl Display) -> Error {
    Error::Params(ParamsError {
        path: field.split('.').map(str::to_string).collect(),
        message: message.to_string(),
    })
}

/// Checks a probability.
pub(crate) fn check_p(p: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(bad("p", format!("must be a probability in [0, 1], got {p}")))
    }
}

/// Checks `[lo, hi]` with `min <= lo <= hi` (both finite).
pub(crate) fn check_range(field: &str, r: [f64; 2], min: f64, strict: bool) -> Result<[f64; 2]> {
    let [lo, hi] = r;
    let above = if strict { lo > min } else { lo >= min };
    if lo.is_finite() && hi.is_finite() && above && lo <= hi {
        Ok(r)
    } else {
        let op = if strict { ">" } else { ">=" };
        Err(bad(
            field,
            format!("must be [lo, hi] with hi >= lo {op} {min}, got [{lo}, {hi}]"),
        ))
    }
}

/// Whether an op with probability `p` fires (always one draw).
pub(crate) fn fires(rng: &mut Rng, p: f64) -> bool {
    rng.uniform() < p
}

/// Uniform integer in `lo..=hi` (`lo` when `hi < lo`).
pub(crate) fn randint(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    if hi <= lo {
        return lo;
    }
    lo + (rng.next_u64() % (hi - lo + 1) as u64) as i64
}

/// Python's `round` (half to even), used where torchvision rounds.
pub(crate) fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        (2.0 * (x / 2.0).round()) as i64
    } else {
        r as i64
    }
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn yes() -> bool {
    true
}
