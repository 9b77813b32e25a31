//! Visage plugin `{{name}}`: an augmentation. Registered as `{{name}}`.
//!
//! Brightness jitter: multiplies the image by a factor drawn uniformly from
//! [1 - strength, 1 + strength]. Take all randomness from `seed`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::augmentation::Augmentation;
use visage_core::rng::Rng;
use visage_core::{declare_plugin, Error, Registry, Result, Sample};

/// Parameters, checked before anything is built.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Largest relative change of brightness.
    #[serde(default = "default_strength")]
    pub strength: f64,
}

fn default_strength() -> f64 {
    0.2
}

/// The augmentation.
pub struct Brightness(f64);

impl Brightness {
    fn new(params: Params, _: &()) -> Result<Self> {
        if !(0.0..1.0).contains(&params.strength) {
            return Err(Error::msg(format!("strength must be in [0, 1), got {}", params.strength)));
        }
        Ok(Brightness(params.strength))
    }
}

impl Augmentation for Brightness {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        let factor = Rng::new(&[seed]).range(1.0 - self.0, 1.0 + self.0);
        sample.image = (sample.image * factor).clamp(0.0, 1.0);
        Ok(sample)
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.augmentation("{{name}}", Brightness::new)
}

declare_plugin!(name: "{{name}}", register: register);
