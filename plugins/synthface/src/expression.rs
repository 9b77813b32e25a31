//! The seven basic expressions and the action units that make them.
//!
//! Each expression has a prototype (EMFACS-style, restricted to the 12
//! DISFA units): its units are drawn at a visible intensity, each may be
//! dropped, one extra unit may be added, and other units may leak in below
//! the label threshold. FER and AU labels are therefore related, as in real
//! data, but not identical.

use visage_core::rng::Rng;

use crate::action_units::{self as au, COUNT};
use crate::params::ExpressionParams;

/// Number of expression classes, ordered as `visage_core::labels::EXPRESSIONS`.
pub const EXPRESSIONS: usize = 7;

/// The prototype units of each expression, in label order: neutral, happy,
/// sad, surprise, fear, disgust, anger.
pub const PROTOTYPES: [&[usize]; EXPRESSIONS] = [
    &[],
    &[au::AU6, au::AU12, au::AU25],
    &[au::AU1, au::AU4, au::AU15, au::AU17],
    &[au::AU1, au::AU2, au::AU5, au::AU25, au::AU26],
    &[au::AU1, au::AU2, au::AU4, au::AU5, au::AU20, au::AU25],
    &[au::AU9, au::AU15, au::AU17],
    &[au::AU4, au::AU5, au::AU17],
];

/// An expression class and the intensity of every action unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expression {
    /// Index into the expression classes.
    pub class: usize,
    /// Intensity per action unit, 0..1.
    pub intensity: [f64; COUNT],
}

impl Expression {
    /// A neutral face: no unit active.
    pub fn neutral() -> Self {
        Expression {
            class: 0,
            intensity: [0.0; COUNT],
        }
    }

    /// Draws an expression uniformly, then its unit intensities.
    pub fn sample(rng: &mut Rng, params: &ExpressionParams) -> Self {
        let class = (rng.next_u64() % EXPRESSIONS as u64) as usize;
        let strength = rng.range(0.6, 1.0);
        let mut intensity = [0.0; COUNT];
        for &unit in PROTOTYPES[class] {
            if rng.uniform() >= params.dropped_au_probability {
                intensity[unit] = (strength * rng.range(0.8, 1.2)).clamp(0.45, 1.0);
            }
        }
        if rng.uniform() < params.extra_au_probability {
            let unit = (rng.next_u64() % COUNT as u64) as usize;
            if intensity[unit] == 0.0 {
                intensity[unit] = rng.range(0.45, 1.0);
            }
        }
        for value in intensity.iter_mut() {
            if *value == 0.0 && rng.uniform() < 0.3 {
                *value = rng.range(0.0, 0.2);
            }
        }
        Expression { class, intensity }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prototype_units_are_mostly_present_and_leaks_stay_below_threshold() {
        let params = ExpressionParams::default();
        let mut rng = Rng::new(&[1]);
        let mut hits = [[0usize; COUNT]; EXPRESSIONS];
        let mut counts = [0usize; EXPRESSIONS];
        for _ in 0..3000 {
            let e = Expression::sample(&mut rng, &params);
            counts[e.class] += 1;
            for (u, &v) in e.intensity.iter().enumerate() {
                assert!((0.0..=1.0).contains(&v));
                assert!(!(0.2..=0.45).contains(&v) || v == 0.45, "intensity {v} in the gap");
                if v > au::THRESHOLD {
                    hits[e.class][u] += 1;
                }
            }
        }
        for class in 0..EXPRESSIONS {
            assert!(counts[class] > 300, "{counts:?}");
            for &unit in PROTOTYPES[class] {
                assert!(hits[class][unit] as f64 > 0.8 * counts[class] as f64);
            }
        }
        // Neutral faces only carry the occasional extra unit.
        let neutral: usize = hits[0].iter().sum();
        assert!((neutral as f64) < 0.35 * counts[0] as f64, "{neutral}");
    }
}
