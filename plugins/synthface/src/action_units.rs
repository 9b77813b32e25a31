//! The 12 DISFA-like action units and how each deforms the face.
//!
//! Intensities are in 0..1. Each unit moves frontal landmark positions (face
//! units, `y` up) and, for the jaw and nose, the head and nose geometry, as
//! FACS describes the unit's appearance change. Regions are drawn from the
//! moved landmarks, so pixels and labels move together.

use crate::identity::{HeadSize, NoseSize};

/// Number of action units, ordered as `visage_core::labels::AU_NAMES`.
pub const COUNT: usize = 12;
/// Inner brow raiser.
pub const AU1: usize = 0;
/// Outer brow raiser.
pub const AU2: usize = 1;
/// Brow lowerer.
pub const AU4: usize = 2;
/// Upper lid raiser.
pub const AU5: usize = 3;
/// Cheek raiser.
pub const AU6: usize = 4;
/// Nose wrinkler.
pub const AU9: usize = 5;
/// Lip corner puller.
pub const AU12: usize = 6;
/// Lip corner depressor.
pub const AU15: usize = 7;
/// Chin raiser.
pub const AU17: usize = 8;
/// Lip stretcher.
pub const AU20: usize = 9;
/// Lips part.
pub const AU25: usize = 10;
/// Jaw drop.
pub const AU26: usize = 11;

/// An action unit is labelled present (1) when its intensity exceeds this.
/// Prototype and extra units are drawn at 0.45..1, sub-threshold "leak" at
/// 0..0.2, so a present unit always moves the face visibly.
pub const THRESHOLD: f64 = 0.35;

/// The 0/1 occurrence labels of `intensity`.
pub fn occurrence(intensity: &[f64; COUNT]) -> [f32; COUNT] {
    intensity.map(|i| if i > THRESHOLD { 1.0 } else { 0.0 })
}

/// Frontal landmark positions being deformed.
struct Points<'a>(&'a mut [[f64; 2]; 68]);

impl Points<'_> {
    /// Moves points `ids` by `dy` up and `dx` away from the midline.
    fn shift(&mut self, ids: &[usize], out: f64, up: f64) {
        for &i in ids {
            let side = if self.0[i][0] < 0.0 { -1.0 } else { 1.0 };
            self.0[i][0] += side * out;
            self.0[i][1] += up;
        }
    }
}

/// Deforms the frontal landmarks (all but jaw and nose points, which are
/// derived from `head` and `nose`) and the head and nose geometry.
pub fn apply(points: &mut [[f64; 2]; 68], head: &mut HeadSize, nose: &mut NoseSize, au: &[f64; COUNT]) {
    let mut p = Points(points);
    let k = |unit: usize| au[unit].clamp(0.0, 1.0);
    // Brows: AU1 inner raise, AU2 outer raise, AU4 lower and knit.
    p.shift(&[21, 22], 0.0, 0.11 * k(AU1));
    p.shift(&[20, 23], 0.0, 0.08 * k(AU1));
    p.shift(&[19, 24], 0.0, 0.035 * k(AU1));
    p.shift(&[17, 26], 0.0, 0.11 * k(AU2));
    p.shift(&[18, 25], 0.0, 0.09 * k(AU2));
    p.shift(&[19, 24], 0.0, 0.05 * k(AU2));
    p.shift(&[17, 18, 19, 20, 21, 22, 23, 24, 25, 26], 0.0, -0.07 * k(AU4));
    p.shift(&[20, 21, 22, 23], -0.04 * k(AU4), 0.0);
    p.shift(&[19, 24], -0.015 * k(AU4), 0.0);
    p.shift(&[37, 38, 43, 44], 0.0, -0.012 * k(AU4));
    // Eyes: AU5 widens the upper lid, AU6 raises the lower lid.
    p.shift(&[37, 38, 43, 44], 0.0, 0.05 * k(AU5));
    p.shift(&[40, 41, 46, 47], 0.0, 0.05 * k(AU6));
    p.shift(&[36, 45], 0.0, 0.012 * k(AU6));
    // AU9 shortens the nose, flares the nostrils, lifts the upper lip and
    // pulls the inner brows down (wrinkles are shaded in `shading`).
    nose.h *= 1.0 - 0.14 * k(AU9);
    nose.w *= 1.0 + 0.12 * k(AU9);
    p.shift(&[49, 50, 51, 52, 53], 0.0, 0.03 * k(AU9));
    p.shift(&[21, 22], 0.0, -0.025 * k(AU9));
    // Lip corners: AU12 out and up, AU15 down, AU20 straight out.
    p.shift(&[48, 54, 60, 64], 0.10 * k(AU12), 0.10 * k(AU12));
    p.shift(&[49, 53, 55, 59], 0.04 * k(AU12), 0.05 * k(AU12));
    p.shift(&[61, 63, 65, 67], 0.0, 0.025 * k(AU12));
    p.shift(&[48, 54, 60, 64], -0.012 * k(AU15), -0.08 * k(AU15));
    p.shift(&[49, 53, 55, 59], 0.0, -0.035 * k(AU15));
    p.shift(&[48, 54, 60, 64], 0.10 * k(AU20), -0.015 * k(AU20));
    p.shift(&[49, 53, 55, 59, 61, 63, 65, 67], 0.05 * k(AU20), 0.0);
    p.shift(&[50, 51, 52], 0.0, -0.015 * k(AU20));
    p.shift(&[56, 57, 58], 0.0, 0.015 * k(AU20));
    // AU17 pushes the chin and lower lip up.
    head.b_low -= 0.07 * k(AU17);
    p.shift(&[55, 56, 57, 58, 59, 65, 66, 67], 0.0, 0.035 * k(AU17));
    p.shift(&[50, 51, 52], 0.0, 0.015 * k(AU17));
    // AU25 parts the lips; AU26 drops the jaw, taking the lower lip along.
    p.shift(&[61, 62, 63], 0.0, 0.02 * k(AU25));
    p.shift(&[65, 66, 67], 0.0, -0.055 * k(AU25));
    p.shift(&[55, 56, 57, 58, 59], 0.0, -0.045 * k(AU25));
    head.b_low += 0.26 * k(AU26);
    p.shift(&[55, 56, 57, 58, 59, 65, 66, 67], 0.0, -0.19 * k(AU26));
    p.shift(&[60, 64], 0.0, -0.02 * k(AU26));
    keep_lids_apart(p.0);
}

/// The upper lid never drops below the lower one.
fn keep_lids_apart(points: &mut [[f64; 2]; 68]) {
    for (upper, lower) in [(37, 41), (38, 40), (43, 47), (44, 46)] {
        let min = points[lower][1] + 0.012;
        if points[upper][1] < min {
            points[upper][1] = min;
        }
    }
}
