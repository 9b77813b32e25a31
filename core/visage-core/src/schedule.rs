//! One schedule type for every per-step hyper-parameter: the learning-rate
//! factor (the `cosine` scheduler), weight decay (`weight_decay_end`), EMA
//! momentum (BYOL/DINO: 0.996 -> 1), temperatures (DINO's teacher:
//! 0.04 -> 0.07 warm-up) and loss weights. A method takes a [`Schedule`]
//! in its parameters and reads it with [`Schedule::value`] at the step that
//! [`crate::method::Method::begin_step`] reports.
//!
//! One end-point convention for every shape: the value at step 0 is
//! `start`, and `end` is the value *after* the last step, at `step ==
//! total`, so that the last step is one short of it. This is PyTorch's
//! `CosineAnnealingLR(T_max=total)`, DINO's `cosine_scheduler` (learning
//! rate, weight decay, teacher momentum) and MoCo v3's momentum schedule.
//!
//! In YAML a number is a constant; otherwise name the shape:
//!
//! ```yaml
//! momentum: {cosine: {start: 0.996, end: 1.0}}
//! teacher_temperature: {linear: {start: 0.04, end: 0.07, steps: 300}}
//! ```
//!
//! ```
//! use visage_core::schedule::Schedule;
//! let momentum = Schedule::cosine(0.996, 1.0);
//! assert_eq!(momentum.value(0, 100), 0.996);
//! assert!((momentum.value(50, 100) - 0.998).abs() < 1e-12);
//! assert!(momentum.value(99, 100) < 1.0);
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A value as a function of the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Schedule {
    /// The same value at every step.
    Constant(f64),
    /// A named shape.
    Shaped(Shape),
}

/// The shapes a [`Schedule`] can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// A linear warm-up from 0 to `start` over `warmup_steps` steps, then
    /// half a cosine from `start` towards `end` over the remaining steps.
    Cosine {
        /// Value at the first step after the warm-up.
        start: f64,
        /// Value after the last step.
        end: f64,
        /// Steps of linear warm-up: step `s < warmup_steps` has
        /// `start * (s + 1) / warmup_steps`.
        #[serde(default, skip_serializing_if = "is_zero")]
        warmup_steps: u64,
    },
    /// A straight line from `start` to `end` over `steps` steps (default:
    /// the whole run), then `end`.
    Linear {
        /// Value at the first step.
        start: f64,
        /// Value from step `steps` on.
        end: f64,
        /// Length of the ramp.
        #[serde(default)]
        steps: Option<u64>,
    },
    /// `start`, multiplied by `gamma` at each milestone step.
    Step {
        /// Value before the first milestone.
        start: f64,
        /// Factor applied at each milestone.
        gamma: f64,
        /// Steps at which the value changes.
        milestones: Vec<u64>,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `(1 + cos(pi * progress)) / 2`: 1 at progress 0, 0 at progress 1.
fn half_cosine(progress: f64) -> f64 {
    0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())
}

impl Schedule {
    /// Half a cosine from `start` to `end`, without warm-up.
    pub fn cosine(start: f64, end: f64) -> Self {
        Schedule::Shaped(Shape::Cosine {
            start,
            end,
            warmup_steps: 0,
        })
    }

    /// The value at `step` (0-based) of `total`.
    pub fn value(&self, step: u64, total: u64) -> f64 {
        match self {
            Schedule::Constant(v) => *v,
            Schedule::Shaped(Shape::Cosine {
                start,
                end,
                warmup_steps,
            }) => {
                if step < *warmup_steps {
                    return start * (step + 1) as f64 / *warmup_steps as f64;
                }
                let span = total.saturating_sub(*warmup_steps).max(1) as f64;
                end + (start - end) * half_cosine((step - warmup_steps) as f64 / span)
            }
            Schedule::Shaped(Shape::Linear { start, end, steps }) => {
                let span = steps.unwrap_or(total).max(1) as f64;
                let progress = (step as f64 / span).min(1.0);
                start + (end - start) * progress
            }
            Schedule::Shaped(Shape::Step {
                start,
                gamma,
                milestones,
            }) => start * gamma.powi(milestones.iter().filter(|&&m| step >= m).count() as i32),
        }
    }

    /// Checks that the schedule's numbers are finite, naming `key`.
    pub fn check(&self, key: &str) -> crate::Result<()> {
        let numbers: Vec<f64> = match self {
            Schedule::Constant(v) => vec![*v],
            Schedule::Shaped(Shape::Cosine { start, end, .. }) | Schedule::Shaped(Shape::Linear { start, end, .. }) => {
                vec![*start, *end]
            }
            Schedule::Shaped(Shape::Step { start, gamma, .. }) => vec![*start, *gamma],
        };
        match numbers.iter().find(|v| !v.is_finite()) {
            Some(v) => Err(crate::Error::msg(format!("{key}: expected finite numbers, got {v}"))),
            None => Ok(()),
        }
    }
}

impl From<f64> for Schedule {
    fn from(v: f64) -> Self {
        Schedule::Constant(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Schedule {
        serde_json::from_str(yaml).unwrap()
    }

    #[test]
    fn every_shape_starts_at_start_and_reaches_end_at_total() {
        assert_eq!(parse("0.2").value(7, 10), 0.2);
        let cosine = parse(r#"{"cosine": {"start": 0.996, "end": 1.0}}"#);
        assert_eq!(cosine.value(0, 10), 0.996);
        assert!((cosine.value(5, 10) - 0.998).abs() < 1e-12);
        assert!(cosine.value(9, 10) < 1.0 && cosine.value(9, 10) > 0.9995);
        assert_eq!(cosine.value(10, 10), 1.0);
        assert_eq!(cosine.value(12, 10), 1.0);
        let linear = parse(r#"{"linear": {"start": 0.0, "end": 1.0}}"#);
        assert_eq!(linear.value(0, 4), 0.0);
        assert_eq!(linear.value(2, 4), 0.5);
        assert_eq!(linear.value(4, 4), 1.0);
        let ramp = parse(r#"{"linear": {"start": 0.04, "end": 0.07, "steps": 3}}"#);
        let v: Vec<f64> = (0..5).map(|s| ramp.value(s, 100)).collect();
        assert!((v[1] - 0.05).abs() < 1e-12 && v[3] == 0.07 && v[4] == 0.07, "{v:?}");
        let step = parse(r#"{"step": {"start": 1.0, "gamma": 0.1, "milestones": [2, 4]}}"#);
        let v: Vec<f64> = (0..5).map(|s| step.value(s, 5)).collect();
        assert_eq!(v[1], 1.0);
        assert!((v[2] - 0.1).abs() < 1e-12 && (v[4] - 0.01).abs() < 1e-12);
    }

    /// The values of PyTorch's `CosineAnnealingLR(T_max=10, eta_min=0.1)`
    /// on a base learning rate of 1 (its closed form), and DINO's
    /// `cosine_scheduler(1, 0.1, 1, 10, warmup_epochs=0)`.
    #[test]
    fn cosine_matches_pytorch_and_dino() {
        let cosine = Schedule::cosine(1.0, 0.1);
        for step in 0..10u64 {
            let torch = 0.1 + (1.0 - 0.1) * (1.0 + (std::f64::consts::PI * step as f64 / 10.0).cos()) / 2.0;
            assert!((cosine.value(step, 10) - torch).abs() < 1e-15, "step {step}");
        }
    }

    #[test]
    fn warmup_rises_linearly_then_the_cosine_starts_at_start() {
        let s = parse(r#"{"cosine": {"start": 1.0, "end": 0.1, "warmup_steps": 4}}"#);
        let f: Vec<f64> = (0..14).map(|i| s.value(i, 14)).collect();
        assert_eq!(&f[..4], &[0.25, 0.5, 0.75, 1.0]);
        assert_eq!(f[4], 1.0);
        assert!(f.windows(2).skip(4).all(|w| w[1] <= w[0]));
        assert!((s.value(14, 14) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn unknown_shapes_and_non_finite_numbers_are_refused() {
        assert!(serde_json::from_str::<Schedule>(r#"{"cosin": {"start": 1, "end": 0}}"#).is_err());
        assert!(serde_json::from_str::<Schedule>(r#"{"cosine": {"start": 1, "ned": 0}}"#).is_err());
        let err = Schedule::cosine(f64::NAN, 1.0).check("method.momentum").unwrap_err();
        assert_eq!(err.to_string(), "method.momentum: expected finite numbers, got NaN");
    }
}
