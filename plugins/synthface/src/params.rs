//! The typed parameters of the `synthface` dataset, their defaults and their
//! validation. Every field is optional in YAML; unknown keys are errors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::params::check;
use visage_core::{Error, Result};

/// Parameters of the `synthface` dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SynthFaceParams {
    /// Number of distinct identities, train and test together.
    #[serde(default = "default_identities")]
    pub identities: usize,
    /// How many of `identities` are held out for the test split (the last
    /// ones); the train split uses the others, so the two are disjoint.
    #[serde(default = "default_test_identities")]
    pub test_identities: usize,
    /// Samples rendered per identity (different expression, pose and
    /// nuisance each).
    #[serde(default = "default_samples_per_identity", deserialize_with = "check::positive")]
    #[schemars(range(min = 1))]
    pub samples_per_identity: usize,
    /// Image side in pixels (square images), 32..=1024.
    #[serde(default = "default_resolution", deserialize_with = "check::int_in::<_, _, 32, 1024>")]
    #[schemars(range(min = 32, max = 1024))]
    pub resolution: usize,
    /// Head pose ranges.
    #[serde(default)]
    pub pose: PoseParams,
    /// Expression and action-unit sampling.
    #[serde(default)]
    pub expression: ExpressionParams,
    /// Nuisance factors, each with a switch.
    #[serde(default)]
    pub nuisance: NuisanceParams,
}

/// Head pose ranges: each angle is drawn uniformly in `[-max, max]` degrees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoseParams {
    /// Largest |yaw| in degrees, 0..=90.
    #[serde(default = "default_max_yaw")]
    pub max_yaw: f64,
    /// Largest |pitch| in degrees, 0..=60.
    #[serde(default = "default_max_pitch")]
    pub max_pitch: f64,
    /// Largest |roll| in degrees, 0..=90.
    #[serde(default = "default_max_roll")]
    pub max_roll: f64,
}

/// How expressions and action units are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpressionParams {
    /// Probability that one action unit outside the expression's prototype
    /// is added at a visible intensity, 0..=1.
    #[serde(default = "default_extra_au_probability")]
    pub extra_au_probability: f64,
    /// Probability that each prototype action unit is left out, 0..=1.
    #[serde(default = "default_dropped_au_probability")]
    pub dropped_au_probability: f64,
}

/// Nuisance factors. Each switch turns one factor off entirely; with all
/// off a face is drawn frontally lit, centred, unblurred and noise-free on
/// a flat grey background.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NuisanceParams {
    /// Textured random background (else flat grey).
    #[serde(default = "yes")]
    pub background: bool,
    /// Random light direction, ambient level and colour gain (else a fixed
    /// light from the front and slightly above).
    #[serde(default = "yes")]
    pub lighting: bool,
    /// Gaussian blur with a random sigma in `[0, max_blur]`.
    #[serde(default = "yes")]
    pub blur: bool,
    /// Largest blur sigma, as a fraction of the image side, 0..=0.05.
    #[serde(default = "default_max_blur")]
    pub max_blur: f64,
    /// Additive Gaussian pixel noise with a random std in `[0, noise_std]`.
    #[serde(default = "yes")]
    pub noise: bool,
    /// Largest noise std (image values are in 0..1), 0..=0.5.
    #[serde(default = "default_noise_std")]
    pub noise_std: f64,
    /// Random scale and translation of the face in the image.
    #[serde(default = "yes")]
    pub jitter: bool,
    /// Relative scale jitter: the face scale is multiplied by a factor in
    /// `[1 - scale_jitter, 1 + scale_jitter]`, 0..=0.5.
    #[serde(default = "default_scale_jitter")]
    pub scale_jitter: f64,
    /// Largest translation, as a fraction of the image side, 0..=0.25.
    #[serde(default = "default_translation_jitter")]
    pub translation_jitter: f64,
    /// Occasional occluders (a hand or a bar) in front of the face.
    #[serde(default = "yes")]
    pub occluders: bool,
    /// Probability that a sample has an occluder, 0..=1.
    #[serde(default = "default_occluder_probability")]
    pub occluder_probability: f64,
}

fn default_identities() -> usize {
    100
}
fn default_test_identities() -> usize {
    20
}
fn default_samples_per_identity() -> usize {
    25
}
fn default_resolution() -> usize {
    112
}
fn default_max_yaw() -> f64 {
    75.0
}
fn default_max_pitch() -> f64 {
    40.0
}
fn default_max_roll() -> f64 {
    35.0
}
fn default_extra_au_probability() -> f64 {
    0.25
}
fn default_dropped_au_probability() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}
fn default_max_blur() -> f64 {
    0.008
}
fn default_noise_std() -> f64 {
    0.03
}
fn default_scale_jitter() -> f64 {
    0.12
}
fn default_translation_jitter() -> f64 {
    0.06
}
fn default_occluder_probability() -> f64 {
    0.2
}

impl Default for SynthFaceParams {
    fn default() -> Self {
        SynthFaceParams {
            identities: default_identities(),
            test_identities: default_test_identities(),
            samples_per_identity: default_samples_per_identity(),
            resolution: default_resolution(),
            pose: PoseParams::default(),
            expression: ExpressionParams::default(),
            nuisance: NuisanceParams::default(),
        }
    }
}

impl Default for PoseParams {
    fn default() -> Self {
        PoseParams {
            max_yaw: default_max_yaw(),
            max_pitch: default_max_pitch(),
            max_roll: default_max_roll(),
        }
    }
}

impl Default for ExpressionParams {
    fn default() -> Self {
        ExpressionParams {
            extra_au_probability: default_extra_au_probability(),
            dropped_au_probability: default_dropped_au_probability(),
        }
    }
}

impl Default for NuisanceParams {
    fn default() -> Self {
        NuisanceParams {
            background: true,
            lighting: true,
            blur: true,
            max_blur: default_max_blur(),
            noise: true,
            noise_std: default_noise_std(),
            jitter: true,
            scale_jitter: default_scale_jitter(),
            translation_jitter: default_translation_jitter(),
            occluders: true,
            occluder_probability: default_occluder_probability(),
        }
    }
}

impl NuisanceParams {
    /// Every nuisance factor switched off.
    pub fn none() -> Self {
        NuisanceParams {
            background: false,
            lighting: false,
            blur: false,
            noise: false,
            jitter: false,
            occluders: false,
            ..NuisanceParams::default()
        }
    }
}

fn check_range(field: &str, value: f64, lo: f64, hi: f64) -> Result<()> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "synthface: `{field}` must be in {lo}..={hi}, got {value}"
        )))
    }
}

impl SynthFaceParams {
    /// Checks every field, naming the first one that is out of range.
    pub fn validate(&self) -> Result<()> {
        if self.identities < 2 {
            return Err(Error::msg(format!(
                "synthface: `identities` must be at least 2 (train and test identities are disjoint), got {}",
                self.identities
            )));
        }
        if self.test_identities == 0 || self.test_identities >= self.identities {
            return Err(Error::msg(format!(
                "synthface: `test_identities` must be in 1..{} (fewer than `identities` = {}), got {}",
                self.identities, self.identities, self.test_identities
            )));
        }
        if self.samples_per_identity == 0 {
            return Err(Error::msg(
                "synthface: `samples_per_identity` must be at least 1, got 0",
            ));
        }
        if !(32..=1024).contains(&self.resolution) {
            return Err(Error::msg(format!(
                "synthface: `resolution` must be in 32..=1024, got {}",
                self.resolution
            )));
        }
        check_range("pose.max_yaw", self.pose.max_yaw, 0.0, 90.0)?;
        check_range("pose.max_pitch", self.pose.max_pitch, 0.0, 60.0)?;
        check_range("pose.max_roll", self.pose.max_roll, 0.0, 90.0)?;
        check_range(
            "expression.extra_au_probability",
            self.expression.extra_au_probability,
            0.0,
            1.0,
        )?;
        check_range(
            "expression.dropped_au_probability",
            self.expression.dropped_au_probability,
            0.0,
            1.0,
        )?;
        let n = &self.nuisance;
        check_range("nuisance.max_blur", n.max_blur, 0.0, 0.05)?;
        check_range("nuisance.noise_std", n.noise_std, 0.0, 0.5)?;
        check_range("nuisance.scale_jitter", n.scale_jitter, 0.0, 0.5)?;
        check_range("nuisance.translation_jitter", n.translation_jitter, 0.0, 0.25)?;
        check_range("nuisance.occluder_probability", n.occluder_probability, 0.0, 1.0)?;
        Ok(())
    }

    /// The identities of the train split, then those of the test split.
    pub fn split_identities(&self, split: visage_core::dataset::Split) -> std::ops::Range<usize> {
        let train = self.identities - self.test_identities.min(self.identities);
        match split {
            visage_core::dataset::Split::Train => 0..train,
            visage_core::dataset::Split::Test => train..self.identities,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_fill_missing_keys() {
        let p: SynthFaceParams = serde_json::from_str(r#"{"resolution": 64, "pose": {"max_yaw": 30}}"#).unwrap();
        p.validate().unwrap();
        assert_eq!(p.resolution, 64);
        assert_eq!(p.pose.max_yaw, 30.0);
        assert_eq!(p.pose.max_pitch, 40.0);
        assert_eq!(p.identities, 100);
        assert!(p.nuisance.occluders);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<SynthFaceParams>(r#"{"resolutoin": 64}"#).unwrap_err();
        assert!(err.to_string().contains("resolutoin"), "{err}");
        let err = serde_json::from_str::<SynthFaceParams>(r#"{"nuisance": {"blurr": true}}"#).unwrap_err();
        assert!(err.to_string().contains("blurr"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_field() {
        let cases: Vec<(SynthFaceParams, &str)> = vec![
            (
                SynthFaceParams {
                    resolution: 8,
                    ..Default::default()
                },
                "`resolution`",
            ),
            (
                SynthFaceParams {
                    identities: 0,
                    ..Default::default()
                },
                "`identities`",
            ),
            (
                SynthFaceParams {
                    test_identities: 100,
                    ..Default::default()
                },
                "`test_identities`",
            ),
            (
                SynthFaceParams {
                    samples_per_identity: 0,
                    ..Default::default()
                },
                "`samples_per_identity`",
            ),
            (
                SynthFaceParams {
                    pose: PoseParams {
                        max_yaw: 120.0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "`pose.max_yaw`",
            ),
            (
                SynthFaceParams {
                    nuisance: NuisanceParams {
                        noise_std: f64::NAN,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "`nuisance.noise_std`",
            ),
        ];
        for (params, field) in cases {
            let err = params.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }
}
