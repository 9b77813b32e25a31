//! Per-step schedules of hyper-parameters other than the learning rate:
//! EMA momentum (BYOL/DINO: 0.996 -> 1), temperatures (DINO's teacher:
//! 0.04 -> 0.07 warm-up), loss weights. A method takes a [`Schedule`] in its
//! parameters and reads it with [`Schedule::value`] at the step that
//! [`crate::method::Method::begin_step`] reports.
//!
//! In YAML a number is a constant; otherwise name the shape:
//!
//! ```yaml
//! momentum: {cosine: {start: 0.996, end: 1.0}}
//! teacher_temperature: {linear: {start: 0.04, end: 0.07, steps: 300}}
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
    /// Half a cosine from `start` (first step) to `end` (last step).
    Cosine {
        /// Value at the first step.
        start: f64,
        /// Value at the last step.
        end: f64,
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

impl Schedule {
    /// The value at `step` (0-based) of `total`.
    pub fn value(&self, step: u64, total: u64) -> f64 {
        match self {
            Schedule::Constant(v) => *v,
            Schedule::Shaped(Shape::Cosine { start, end }) => {
                let progress = (step as f64 / total.saturating_sub(1).max(1) as f64).min(1.0);
                end + (start - end) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::Shaped(Shape::Linear { start, end, steps }) => {
                let span = steps.unwrap_or(total.saturating_sub(1)).max(1) as f64;
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
    fn shapes_reach_their_ends() {
        assert_eq!(parse("0.2").value(7, 10), 0.2);
        let cosine = parse(r#"{"cosine": {"start": 0.996, "end": 1.0}}"#);
        assert_eq!(cosine.value(0, 11), 0.996);
        assert!((cosine.value(10, 11) - 1.0).abs() < 1e-15);
        assert!((cosine.value(5, 11) - 0.998).abs() < 1e-12);
        let linear = parse(r#"{"linear": {"start": 0.04, "end": 0.07, "steps": 3}}"#);
        let v: Vec<f64> = (0..5).map(|s| linear.value(s, 100)).collect();
        assert!((v[1] - 0.05).abs() < 1e-12 && v[3] == 0.07 && v[4] == 0.07, "{v:?}");
        let step = parse(r#"{"step": {"start": 1.0, "gamma": 0.1, "milestones": [2, 4]}}"#);
        let v: Vec<f64> = (0..5).map(|s| step.value(s, 5)).collect();
        assert_eq!(v[1], 1.0);
        assert!((v[2] - 0.1).abs() < 1e-12 && (v[4] - 0.01).abs() < 1e-12);
    }

    #[test]
    fn unknown_shapes_are_refused() {
        assert!(serde_json::from_str::<Schedule>(r#"{"cosin": {"start": 1, "end": 0}}"#).is_err());
        assert!(serde_json::from_str::<Schedule>(r#"{"cosine": {"start": 1, "ned": 0}}"#).is_err());
    }
}
