//! `example_flip` and `example_noise`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::augmentation::Augmentation;
use visage_core::{Error, Result, Sample};

use visage_core::rng::Rng;

/// Parameters of `example_flip`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlipParams {
    /// Probability of flipping.
    #[serde(default = "half")]
    pub p: f64,
}

fn half() -> f64 {
    0.5
}

/// Horizontal flip with probability `p`.
pub struct Flip(f64);

impl Flip {
    /// Checks `p`.
    pub fn new(params: FlipParams, _: &()) -> Result<Self> {
        if !(0.0..=1.0).contains(&params.p) {
            return Err(Error::msg(format!("p must be in [0, 1], got {}", params.p)));
        }
        Ok(Flip(params.p))
    }
}

impl Augmentation for Flip {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        if Rng::new(&[seed]).uniform() < self.0 {
            sample.image = sample.image.flip([2]);
        }
        Ok(sample)
    }
}

/// Parameters of `example_noise`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoiseParams {
    /// Standard deviation of the added Gaussian noise.
    pub std: f64,
}

/// Additive Gaussian noise, clamped to [0, 1].
pub struct Noise(f64);

impl Noise {
    /// Checks `std`.
    pub fn new(params: NoiseParams, _: &()) -> Result<Self> {
        if params.std.is_nan() || params.std < 0.0 {
            return Err(Error::msg(format!("std must be non-negative, got {}", params.std)));
        }
        Ok(Noise(params.std))
    }
}

impl Augmentation for Noise {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        let mut rng = Rng::new(&[seed]);
        let values: Vec<f32> = (0..sample.image.numel())
            .map(|_| (self.0 * rng.normal()) as f32)
            .collect();
        let noise = visage_core::tch::Tensor::from_slice(&values).view_as(&sample.image);
        sample.image = (sample.image + noise).clamp(0.0, 1.0);
        Ok(sample)
    }
}
