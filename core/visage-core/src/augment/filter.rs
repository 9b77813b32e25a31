//! `gaussian_blur` and `sobel`: convolutions (photometric: labels untouched).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::geometry::image_dims;
use super::{bad, check_p, check_range, fires, one};
use crate::augmentation::Augmentation;
use crate::rng::Rng;
use crate::{Error, Result, Sample};

/// A blur's standard deviation: fixed, or `[lo, hi]` drawn uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Sigma {
    /// Fixed.
    Fixed(f64),
    /// Uniform in `[lo, hi]`.
    Range([f64; 2]),
}

/// Parameters of `gaussian_blur` (torchvision's `GaussianBlur` wrapped in
/// `RandomApply`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GaussianBlurParams {
    /// Kernel side in pixels, positive and odd (PCL's `int(0.1 · 64) = 6`
    /// becomes 7 in its code).
    pub kernel_size: i64,
    /// Standard deviation in pixels (torchvision's default `[0.1, 2.0]`).
    #[serde(default = "default_sigma")]
    pub sigma: Sigma,
    /// Probability of blurring.
    #[serde(default = "one")]
    pub p: f64,
}

fn default_sigma() -> Sigma {
    Sigma::Range([0.1, 2.0])
}

/// Separable Gaussian blur with reflect padding (torchvision's and PCL's).
/// When the image is too small to reflect (side not above the radius), the
/// border is replicated instead.
#[derive(Debug, Clone)]
pub struct GaussianBlur {
    kernel_size: i64,
    sigma: [f64; 2],
    p: f64,
}

impl GaussianBlur {
    /// Checks the parameters.
    pub fn new(params: GaussianBlurParams) -> Result<Self> {
        if params.kernel_size < 1 || params.kernel_size % 2 == 0 {
            return Err(bad(
                "kernel_size",
                format!("must be a positive odd number, got {}", params.kernel_size),
            ));
        }
        let sigma = match params.sigma {
            Sigma::Fixed(s) => [s, s],
            Sigma::Range(r) => r,
        };
        Ok(GaussianBlur {
            kernel_size: params.kernel_size,
            sigma: check_range("sigma", sigma, 0.0, true)?,
            p: check_p(params.p)?,
        })
    }
}

impl Augmentation for GaussianBlur {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        let mut rng = Rng::new(&[seed]);
        if !fires(&mut rng, self.p) {
            return Ok(sample);
        }
        let sigma = rng.range(self.sigma[0], self.sigma[1]);
        let (c, h, w) = image_dims(&sample.image)?;
        let r = self.kernel_size / 2;
        let weights: Vec<f64> = (-r..=r).map(|x| (-0.5 * (x as f64 / sigma).powi(2)).exp()).collect();
        let total: f64 = weights.iter().sum();
        let kernel = Tensor::from_slice(&weights).f_to_kind(sample.image.kind())? / total;
        let x = sample.image.f_unsqueeze(0)?;
        let padded = if r < h && r < w {
            x.f_reflection_pad2d([r, r, r, r])?
        } else {
            x.f_replication_pad2d([r, r, r, r])?
        };
        let k = self.kernel_size;
        let horizontal = kernel.f_view([1, 1, 1, k])?.f_expand([c, 1, 1, k], false)?;
        let vertical = kernel.f_view([1, 1, k, 1])?.f_expand([c, 1, k, 1], false)?;
        let blurred = padded
            .f_conv2d(&horizontal, None::<&Tensor>, [1, 1], [0, 0], [1, 1], c)?
            .f_conv2d(&vertical, None::<&Tensor>, [1, 1], [0, 0], [1, 1], c)?;
        sample.image = blurred.f_squeeze_dim(0)?;
        Ok(sample)
    }
}

/// Parameters of `sobel`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SobelParams {
    /// Probability of replacing the image by its gradient magnitude (PCL: 0.6).
    #[serde(default = "one")]
    pub p: f64,
    /// Pad with zeros as PCL's code does, which makes a bright frame where
    /// the image meets the padding; the default replicates the border, so a
    /// constant image gives zero everywhere.
    #[serde(default)]
    pub zero_padding: bool,
}

/// PCL's "Sobel" gradient-magnitude image: an RGB image is first reduced to
/// grey with PCL's weights `(65.738, 129.057, 25.064) / 256`, then central
/// differences `[-1, 0, 1]` horizontally and vertically give
/// `sqrt(gx² + gy²)`, replicated to every input channel and clamped to
/// [0, 1]. A 1-channel image is used as is; other channel counts are
/// errors. Deviations from the official code (DreamMr/PCL,
/// `data_process/Sobel.py`): no `+1e-6` inside the square root (it only
/// served gradients; PCL's 8-bit conversion drops it), clamping instead of
/// PCL's 8-bit wrap-around of magnitudes above 1, and replicate padding
/// unless `zero_padding`.
#[derive(Debug, Clone)]
pub struct Sobel {
    p: f64,
    zero_padding: bool,
}

impl Sobel {
    /// Checks the parameters.
    pub fn new(params: SobelParams) -> Result<Self> {
        Ok(Sobel {
            p: check_p(params.p)?,
            zero_padding: params.zero_padding,
        })
    }
}

impl Augmentation for Sobel {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        if !fires(&mut Rng::new(&[seed]), self.p) {
            return Ok(sample);
        }
        let (c, h, w) = image_dims(&sample.image)?;
        let kind = sample.image.kind();
        let grey = match c {
            1 => sample.image.shallow_clone(),
            3 => {
                let weights = Tensor::from_slice(&[65.738f64 / 256.0, 129.057 / 256.0, 25.064 / 256.0])
                    .f_to_kind(kind)?
                    .f_view([3, 1, 1])?;
                sample.image.f_mul(&weights)?.f_sum_dim_intlist(0, true, kind)?
            }
            _ => return Err(Error::msg(format!("sobel needs 1 or 3 channels, got {c}"))),
        };
        let x = grey.f_unsqueeze(0)?;
        let padded = if self.zero_padding {
            x.f_constant_pad_nd([1, 1, 1, 1])?
        } else {
            x.f_replication_pad2d([1, 1, 1, 1])?
        };
        let dx = Tensor::from_slice(&[-1.0f64, 0.0, 1.0]).f_to_kind(kind)?;
        let gx = padded.f_conv2d(&dx.f_view([1, 1, 1, 3])?, None::<&Tensor>, [1, 1], [0, 0], [1, 1], 1)?;
        let gy = padded.f_conv2d(&dx.f_view([1, 1, 3, 1])?, None::<&Tensor>, [1, 1], [0, 0], [1, 1], 1)?;
        // gx is [1, 1, H+2, W], gy [1, 1, H, W+2]: take the interior.
        let gx = gx.f_narrow(2, 1, h)?;
        let gy = gy.f_narrow(3, 1, w)?;
        let magnitude = (&gx * &gx + &gy * &gy).f_sqrt()?.f_clamp(0.0, 1.0)?;
        sample.image = magnitude.f_squeeze_dim(0)?.f_expand([c, h, w], false)?.f_contiguous()?;
        Ok(sample)
    }
}
