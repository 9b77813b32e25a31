//! Label names and conventions shared by datasets, augmentations and tasks.
//!
//! A [`crate::Sample`] carries its labels by name. Every face dataset uses the
//! names and conventions below, so that an augmentation written once moves
//! the labels of every dataset correctly, and a task reads any dataset.
//!
//! | name | tensor | meaning |
//! |---|---|---|
//! | [`IDENTITY`] | int64 `[]` | identity index |
//! | [`EXPRESSION`] | int64 `[]` | index into [`EXPRESSIONS`] |
//! | [`AU`] | float `[12]` | 0/1 per action unit of [`AU_NAMES`] |
//! | [`POSE`] | float `[3]` | yaw, pitch, roll in degrees |
//! | [`LANDMARKS`] | float `[68, 2]` | iBUG-68 points, `(x, y)` in pixels |
//! | [`LANDMARKS_VISIBLE`] | float `[68]` | 1 where the point is visible |
//! | [`PARSING`] | int64 `[H, W]` | index into [`LAPA_CLASSES`] per pixel |
//! | [`BOX`] | float `[4]` | face box `x0, y0, x1, y1` in pixels |
//! | [`SUBJECT`] | int64 `[]` | subject index (subject-exclusive folds) |
//! | [`SAME`] | int64 `[]` | 1 when the sample's verification pair is one identity |
//! | [`FOLD`] | int64 `[]` | the pair's cross-validation fold |
//! | [`CLASS`] | int64 `[]` | a plain class index (non-face data) |
//!
//! ## Geometry
//! - Pixel `(i, j)` covers `[j, j+1) x [i, i+1)`; a landmark at `(x, y)`
//!   lies in pixel `(floor(y), floor(x))`. A horizontal flip of a width-`W`
//!   image maps `x` to `W - x`.
//! - Head pose: the head's rotation is `R = Rz(roll) Rx(pitch) Ry(yaw)`,
//!   yaw first about the head's vertical axis, roll last about the camera's
//!   optical axis. Positive yaw turns the nose towards the image's right
//!   (`+x`), positive pitch raises it (`-y`), positive roll rotates the face
//!   counter-clockwise as seen on screen. Hence a mirror negates yaw and roll
//!   and keeps pitch, and rotating the image by `a` degrees counter-clockwise
//!   adds `a` to roll.
//! - "Left" and "right" in [`LAPA_CLASSES`] and the iBUG layout are the
//!   image's: for a frontal face, iBUG points 17..=21 and class 2 are the
//!   brow on the image's left.

/// Identity index (int64 scalar).
pub const IDENTITY: &str = "identity";
/// Expression class (int64 scalar), an index into [`EXPRESSIONS`].
pub const EXPRESSION: &str = "expression";
/// Action-unit occurrence (float `[12]`, 0 or 1), ordered as [`AU_NAMES`].
pub const AU: &str = "au";
/// Head pose (float `[3]`): yaw, pitch, roll in degrees.
pub const POSE: &str = "pose";
/// iBUG-68 landmarks (float `[68, 2]`), `(x, y)` in pixels.
pub const LANDMARKS: &str = "landmarks";
/// Visibility of each landmark (float `[68]`, 0 or 1).
pub const LANDMARKS_VISIBLE: &str = "landmarks_visible";
/// Face parsing mask (int64 `[H, W]`), indices into [`LAPA_CLASSES`].
pub const PARSING: &str = "parsing";
/// Face box (float `[4]`): `x0, y0, x1, y1` in pixels, for NME's box and
/// diagonal units.
pub const BOX: &str = "box";
/// Subject index (int64 scalar), for subject-exclusive folds.
pub const SUBJECT: &str = "subject";
/// Verification pair label (int64 scalar, 1 = same identity), carried by
/// both samples of the pair (`2i`, `2i+1`).
pub const SAME: &str = "same";
/// Cross-validation fold of a verification pair (int64 scalar).
pub const FOLD: &str = "fold";
/// A plain class index (int64 scalar), for datasets that are not faces.
pub const CLASS: &str = "class";

/// The seven basic expressions, in label order.
pub const EXPRESSIONS: [&str; 7] = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"];

/// The DISFA-like action units, in label order.
pub const AU_NAMES: [&str; 12] = [
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26",
];

/// The 11 LaPa parsing classes, in label order.
pub const LAPA_CLASSES: [&str; 11] = [
    "background",
    "skin",
    "left_brow",
    "right_brow",
    "left_eye",
    "right_eye",
    "nose",
    "upper_lip",
    "inner_mouth",
    "lower_lip",
    "hair",
];

/// Number of iBUG landmarks.
pub const IBUG68: usize = 68;

/// The mirror image of each iBUG-68 point: after a horizontal flip, point
/// `i` of the flipped face is point `IBUG68_FLIP[i]` of the original.
pub const IBUG68_FLIP: [usize; IBUG68] = [
    // jaw 0..=16
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, //
    // brows 17..=26
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17, //
    // nose bridge 27..=30, nostrils 31..=35
    27, 28, 29, 30, 35, 34, 33, 32, 31, //
    // eyes 36..=47
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, //
    // outer lips 48..=59
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, //
    // inner lips 60..=67
    64, 63, 62, 61, 60, 67, 66, 65,
];

/// The mirror image of each LaPa class: left and right brows and eyes swap.
pub const LAPA_FLIP: [i64; 11] = [0, 1, 3, 2, 5, 4, 6, 7, 8, 9, 10];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_are_involutions() {
        for (i, &j) in IBUG68_FLIP.iter().enumerate() {
            assert_eq!(
                IBUG68_FLIP[j], i,
                "iBUG point {i} mirrors to {j}, which does not mirror back"
            );
        }
        for (i, &j) in LAPA_FLIP.iter().enumerate() {
            assert_eq!(LAPA_FLIP[j as usize], i as i64);
        }
    }

    #[test]
    fn flip_keeps_the_midline_and_swaps_the_sides() {
        // Nose bridge, nose tip, chin and lip centres lie on the midline.
        for i in [8, 27, 28, 29, 30, 33, 51, 57, 62, 66] {
            assert_eq!(IBUG68_FLIP[i], i);
        }
        // The outer eye corners swap.
        assert_eq!(IBUG68_FLIP[36], 45);
        assert_eq!(IBUG68_FLIP[48], 54);
    }
}
