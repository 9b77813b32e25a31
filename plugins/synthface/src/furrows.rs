//! The skin's wrinkles and furrows that action units cause.
//!
//! FACS describes each unit by its appearance changes, and for most units a
//! furrow is the clearest of them: AU1 and AU2 crease the forehead, AU4
//! draws vertical lines between the brows, AU6 makes crow's feet, AU12
//! (and AU9) deepen the nasolabial folds, AU15 the lines below the lip
//! corners, AU17 dimples the chin. Each furrow is a line on the frontal
//! `(x, y)` of the head surface, placed from the moved landmarks and as
//! dark as its unit is intense; a neutral face has none. AU9's nose
//! wrinkles are drawn on the nose (`face_model`).
//!
//! A furrow only darkens the skin by a scalar, so every skin pixel stays a
//! multiple of the skin colour (`shading::palette`).

use crate::action_units::{AU1, AU12, AU15, AU17, AU2, AU4, AU6, AU9, COUNT};
use crate::math::{lerp2, segment_distance, P2};

/// Half the width of a furrow line, face units (about a pixel at 112 px).
const HALF_WIDTH: f64 = 0.014;
/// How much a furrow of full intensity darkens the skin.
const DEPTH: f64 = 0.5;

/// A dark line segment of the skin.
#[derive(Debug, Clone, Copy)]
struct Line {
    from: P2,
    to: P2,
    /// 0..1; the line darkens the skin by `DEPTH * strength`.
    strength: f64,
}

impl Line {
    /// Whether `xy` is within the line's bounding box grown by the half
    /// width (a cheap test before the distance).
    fn near(&self, xy: P2) -> bool {
        let within = |k: usize| {
            let (lo, hi) = if self.from[k] < self.to[k] {
                (self.from[k], self.to[k])
            } else {
                (self.to[k], self.from[k])
            };
            xy[k] > lo - HALF_WIDTH && xy[k] < hi + HALF_WIDTH
        };
        within(0) && within(1)
    }
}

/// The furrows of one face.
#[derive(Debug, Clone, Default)]
pub struct Furrows {
    lines: Vec<Line>,
}

impl Furrows {
    /// The furrows of a face with frontal landmarks `p` (already moved by
    /// the units) and unit intensities `au`.
    pub fn new(p: &[P2; 68], au: &[f64; COUNT]) -> Furrows {
        let k = |unit: usize| au[unit].clamp(0.0, 1.0);
        let mut f = Furrows::default();
        f.forehead(p, k(AU1).max(k(AU2)));
        f.glabella(p, k(AU4));
        f.crows_feet(p, k(AU6));
        f.nasolabial(p, k(AU12).max(0.6 * k(AU9)));
        f.marionette(p, k(AU15));
        f.chin(p, k(AU17));
        f
    }

    /// The skin's brightness multiplier at frontal `xy`, in `(0, 1]`.
    pub fn shade(&self, xy: P2) -> f64 {
        let darkest = self
            .lines
            .iter()
            .filter(|l| l.near(xy) && segment_distance(xy, l.from, l.to) < HALF_WIDTH)
            .map(|l| l.strength)
            .fold(0.0, f64::max);
        1.0 - DEPTH * darkest
    }

    fn line(&mut self, from: P2, to: P2, strength: f64) {
        if strength > 0.0 {
            self.lines.push(Line { from, to, strength });
        }
    }

    /// A segment and its mirror image about the midline.
    fn pair(&mut self, from: P2, to: P2, strength: f64) {
        self.line(from, to, strength);
        self.line([-from[0], from[1]], [-to[0], to[1]], strength);
    }

    /// AU1/AU2: three horizontal creases above the brows, across the
    /// forehead between the brows' middles.
    fn forehead(&mut self, p: &[P2; 68], k: f64) {
        let top = p[17..27].iter().map(|q| q[1]).fold(f64::MIN, f64::max);
        let (x0, x1) = (p[19][0], p[24][0]);
        for row in 1..=3 {
            let y = top + 0.06 * row as f64;
            self.line([x0, y], [x1, y], k);
        }
    }

    /// AU4: two vertical lines between the lowered, knitted inner brows.
    fn glabella(&mut self, p: &[P2; 68], k: f64) {
        let x = 0.25 * (p[22][0] - p[21][0]);
        let y = 0.5 * (p[21][1] + p[22][1]);
        self.pair([-x, y - 0.08], [-x, y + 0.06], k);
    }

    /// AU6: crow's feet, three short lines fanning out from each outer eye
    /// corner.
    fn crows_feet(&mut self, p: &[P2; 68], k: f64) {
        let corner = p[36];
        for dy in [-0.05, 0.0, 0.05] {
            let from = [corner[0] - 0.04, corner[1] + 0.4 * dy];
            self.pair(from, [from[0] - 0.1, from[1] + dy], k);
        }
    }

    /// AU12 (and AU9): the nasolabial folds, from beside the nose wings to
    /// just beyond the lip corners.
    fn nasolabial(&mut self, p: &[P2; 68], k: f64) {
        let wing = [p[31][0] - 0.07, p[31][1] + 0.03];
        let corner = [p[48][0] - 0.05, p[48][1] - 0.01];
        let bend = lerp2(wing, corner, 0.5);
        let bend = [bend[0] - 0.03, bend[1]];
        self.pair(wing, bend, k);
        self.pair(bend, corner, k);
    }

    /// AU15: lines running down from the depressed lip corners.
    fn marionette(&mut self, p: &[P2; 68], k: f64) {
        let corner = p[48];
        self.pair(
            [corner[0] + 0.01, corner[1] - 0.03],
            [corner[0] + 0.03, corner[1] - 0.16],
            k,
        );
    }

    /// AU17: the chin boss wrinkles, short horizontal dimples between the
    /// lower lip and the chin.
    fn chin(&mut self, p: &[P2; 68], k: f64) {
        let (lip, chin) = (p[57], p[8]);
        for (t, half) in [(0.4, 0.06), (0.6, 0.08)] {
            let y = lip[1] + t * (chin[1] - lip[1]);
            self.line([-half, y], [half, y], k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face_model::FaceModel;
    use crate::identity::Identity;

    #[test]
    fn a_neutral_face_has_no_furrows_and_each_furrow_unit_draws_some() {
        let id = Identity::new(2, 5);
        let neutral = FaceModel::new(&id, &[0.0; COUNT], [0.0, 0.0]);
        assert!(Furrows::new(&neutral.frontal, &[0.0; COUNT]).lines.is_empty());
        for unit in [AU1, AU2, AU4, AU6, AU9, AU12, AU15, AU17] {
            let mut au = [0.0; COUNT];
            au[unit] = 0.8;
            let model = FaceModel::new(&id, &au, [0.0, 0.0]);
            let furrows = Furrows::new(&model.frontal, &au);
            assert!(!furrows.lines.is_empty(), "unit {unit}");
            let darkest = furrows
                .lines
                .iter()
                .map(|l| furrows.shade(lerp2(l.from, l.to, 0.5)))
                .fold(1.0, f64::min);
            let strength = if unit == AU9 { 0.6 * 0.8 } else { 0.8 };
            assert!(
                (darkest - (1.0 - DEPTH * strength)).abs() < 1e-9,
                "unit {unit}: {darkest}"
            );
        }
    }
}
