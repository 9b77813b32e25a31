//! `gaussian_noise` and `random_erasing` (photometric: labels untouched).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::geometry::image_dims;
use super::{bad, check_p, check_range, fires, one, randint, round_half_even};
use crate::augmentation::Augmentation;
use crate::rng::Rng;
use crate::{Error, Result, Sample};

/// `n` standard normal values from `rng` (Box-Muller, both outputs used).
fn normals(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u = rng.uniform().max(1e-12);
        let v = rng.uniform();
        let r = (-2.0 * u.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * v).sin_cos();
        out.push((r * c) as f32);
        out.push((r * s) as f32);
    }
    out.truncate(n);
    out
}

/// Parameters of `gaussian_noise` (torchvision v2's `GaussianNoise`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GaussianNoiseParams {
    /// Standard deviation of the noise, non-negative.
    #[serde(default = "default_std")]
    pub std: f64,
    /// Mean of the noise.
    #[serde(default)]
    pub mean: f64,
    /// Clamp the result to [0, 1].
    #[serde(default = "super::yes")]
    pub clip: bool,
    /// Probability of adding noise.
    #[serde(default = "one")]
    pub p: f64,
}

fn default_std() -> f64 {
    0.1
}

/// Adds independent Gaussian noise to every value. The noise is drawn from
/// the seed (not libtorch's global generator), so it is reproducible per
/// sample and independent of threads.
#[derive(Debug, Clone)]
pub struct GaussianNoise {
    std: f64,
    mean: f64,
    clip: bool,
    p: f64,
}

impl GaussianNoise {
    /// Checks the parameters.
    pub fn new(params: GaussianNoiseParams) -> Result<Self> {
        if !(params.std.is_finite() && params.std >= 0.0) {
            return Err(bad("std", format!("must be non-negative, got {}", params.std)));
        }
        if !params.mean.is_finite() {
            return Err(bad("mean", format!("must be finite, got {}", params.mean)));
        }
        Ok(GaussianNoise {
            std: params.std,
            mean: params.mean,
            clip: params.clip,
            p: check_p(params.p)?,
        })
    }
}

impl Augmentation for GaussianNoise {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        let mut rng = Rng::new(&[seed]);
        if !fires(&mut rng, self.p) {
            return Ok(sample);
        }
        image_dims(&sample.image)?;
        let n = sample.image.numel();
        let noise = Tensor::from_slice(&normals(&mut rng, n))
            .f_to_kind(sample.image.kind())?
            .f_view_as(&sample.image)?;
        let noisy = sample.image.f_add(&(noise * self.std + self.mean))?;
        sample.image = if self.clip { noisy.f_clamp(0.0, 1.0)? } else { noisy };
        Ok(sample)
    }
}

/// What `random_erasing` writes into the box: one value, one value per
/// channel, or `"random"` (standard normal noise, torchvision's option).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EraseValue {
    /// The same value everywhere.
    Single(f64),
    /// One value per channel.
    PerChannel(Vec<f64>),
    /// `"random"`.
    Named(String),
}

impl Default for EraseValue {
    fn default() -> Self {
        EraseValue::Single(0.0)
    }
}

/// Parameters of `random_erasing` (torchvision's `RandomErasing`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomErasingParams {
    /// Probability of erasing (torchvision's default 0.5).
    #[serde(default = "super::half")]
    pub p: f64,
    /// Range of the erased area as a fraction of the image's.
    #[serde(default = "default_erase_scale")]
    pub scale: [f64; 2],
    /// Range of the box's aspect ratio (drawn log-uniformly).
    #[serde(default = "default_erase_ratio")]
    pub ratio: [f64; 2],
    /// Fill value.
    #[serde(default)]
    pub value: EraseValue,
}

fn default_erase_scale() -> [f64; 2] {
    [0.02, 0.33]
}
fn default_erase_ratio() -> [f64; 2] {
    [0.3, 3.3]
}

/// torchvision's `RandomErasing`: up to 10 draws of a box; the first that
/// fits is filled; none fitting leaves the image as is. Labels are kept
/// (an erased landmark keeps its visibility: it is occluded, not moved).
#[derive(Debug, Clone)]
pub struct RandomErasing {
    p: f64,
    scale: [f64; 2],
    ratio: [f64; 2],
    value: Fill,
}

#[derive(Debug, Clone)]
enum Fill {
    Values(Vec<f64>),
    Random,
}

impl RandomErasing {
    /// Checks the parameters.
    pub fn new(params: RandomErasingParams) -> Result<Self> {
        let scale = check_range("scale", params.scale, 0.0, false)?;
        if scale[1] > 1.0 {
            return Err(bad("scale", format!("must lie within [0, 1], got {scale:?}")));
        }
        let value = match params.value {
            EraseValue::Single(v) if v.is_finite() => Fill::Values(vec![v]),
            EraseValue::PerChannel(v) if !v.is_empty() && v.iter().all(|x| x.is_finite()) => Fill::Values(v),
            EraseValue::Named(s) if s == "random" => Fill::Random,
            other => {
                return Err(bad(
                    "value",
                    format!("must be a number, one number per channel or \"random\", got {other:?}"),
                ))
            }
        };
        Ok(RandomErasing {
            p: check_p(params.p)?,
            scale,
            ratio: check_range("ratio", params.ratio, 0.0, true)?,
            value,
        })
    }
}

impl Augmentation for RandomErasing {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        let mut rng = Rng::new(&[seed]);
        if !fires(&mut rng, self.p) {
            return Ok(sample);
        }
        let (c, h, w) = image_dims(&sample.image)?;
        if let Fill::Values(v) = &self.value {
            if v.len() != 1 && v.len() as i64 != c {
                return Err(Error::msg(format!(
                    "random_erasing has {} fill values for an image with {c} channels",
                    v.len()
                )));
            }
        }
        let area = (h * w) as f64;
        let (log_lo, log_hi) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let target = area * rng.range(self.scale[0], self.scale[1]);
            let aspect = rng.range(log_lo, log_hi).exp();
            let eh = round_half_even((target * aspect).sqrt());
            let ew = round_half_even((target / aspect).sqrt());
            if !(eh < h && ew < w) {
                continue;
            }
            let top = randint(&mut rng, 0, h - eh);
            let left = randint(&mut rng, 0, w - ew);
            let kind = sample.image.kind();
            let fill = match &self.value {
                Fill::Values(v) => Tensor::from_slice(v)
                    .f_to_kind(kind)?
                    .f_view([v.len() as i64, 1, 1])?
                    .f_expand([c, eh, ew], false)?,
                Fill::Random => Tensor::from_slice(&normals(&mut rng, (c * eh * ew) as usize))
                    .f_to_kind(kind)?
                    .f_view([c, eh, ew])?,
            };
            let image = sample.image.copy();
            let mut window = image.f_narrow(1, top, eh)?.f_narrow(2, left, ew)?;
            window.f_copy_(&fill)?;
            sample.image = image;
            return Ok(sample);
        }
        Ok(sample)
    }
}
