//! Colour of a face pixel from its part: the part's albedo times a
//! Lambertian light term times, for hair and brows, a strand texture.
//!
//! Every face pixel is `gain * albedo * k` with `k` a scalar in `(0, 1]`,
//! so with lighting off (`gain = 1`) each pixel's colour is proportional
//! to one of its class's [`palette`] colours; the tests check exactly this.

use crate::face_model::{EyeTissue, Part};
use crate::identity::Colours;
use crate::math::{dot, sin, V3};
use crate::nuisance::Nuisance;

/// Sclera albedo.
pub const SCLERA: V3 = [0.93, 0.91, 0.87];
/// Inner mouth albedo.
pub const MOUTH: V3 = [0.32, 0.08, 0.10];
/// Teeth albedo.
pub const TEETH: V3 = [0.92, 0.90, 0.80];
/// Pupils are the iris colour times this.
pub const PUPIL: f64 = 0.15;

fn times(c: V3, k: f64) -> V3 {
    [c[0] * k, c[1] * k, c[2] * k]
}

/// The lower lip: a little lighter and yellower than the upper one.
fn lower_lip(colours: &Colours) -> V3 {
    let l = colours.lips;
    [l[0] * 1.06, l[1] * 1.03, l[2]]
}

/// The unlit colour of `part` (before texture and light).
pub fn albedo(part: &Part, colours: &Colours) -> V3 {
    match *part {
        Part::Background => [0.0; 3],
        Part::Skin { shade } => times(colours.skin, shade),
        Part::Brow { .. } => colours.brows,
        Part::Eye { tissue, .. } => match tissue {
            EyeTissue::Sclera => SCLERA,
            EyeTissue::Iris => colours.iris,
            EyeTissue::Pupil => times(colours.iris, PUPIL),
        },
        Part::Nose { shade } => {
            let s = colours.skin;
            times([s[0] * 1.0, s[1] * 0.95, s[2] * 0.94], shade)
        }
        Part::UpperLip => colours.lips,
        Part::InnerMouth { teeth } => {
            if teeth {
                TEETH
            } else {
                MOUTH
            }
        }
        Part::LowerLip => lower_lip(colours),
        Part::Hair => colours.hair,
    }
}

/// The distinct base colours of LaPa class `class` (1..=10) for these
/// colours: every face pixel of that class is a multiple of one of them.
pub fn palette(class: u8, colours: &Colours) -> Vec<V3> {
    let nose = albedo(&Part::Nose { shade: 1.0 }, colours);
    match class {
        1 => vec![colours.skin],
        2 | 3 => vec![colours.brows],
        4 | 5 => vec![SCLERA, colours.iris],
        6 => vec![nose],
        7 => vec![colours.lips],
        8 => vec![MOUTH, TEETH],
        9 => vec![lower_lip(colours)],
        10 => vec![colours.hair],
        _ => vec![],
    }
}

/// Strand texture of hair and brows (a scalar in 0.8..1) at model point `p`.
pub fn texture(part: &Part, p: V3) -> f64 {
    match part {
        Part::Hair => 0.9 + 0.1 * sin(60.0 * p[0] + 6.0 * p[1] + 20.0 * p[2]),
        Part::Brow { .. } => 0.9 + 0.1 * sin(90.0 * p[0] + 30.0 * p[1]),
        _ => 1.0,
    }
}

/// The light level for a camera-frame unit normal.
pub fn light(normal: V3, nuisance: &Nuisance) -> f64 {
    nuisance.ambient + (1.0 - nuisance.ambient) * dot(normal, nuisance.light).max(0.0)
}

/// The final colour of a face pixel.
pub fn shade(part: &Part, colours: &Colours, point: V3, normal_camera: V3, nuisance: &Nuisance) -> V3 {
    let k = light(normal_camera, nuisance) * texture(part, point);
    let a = albedo(part, colours);
    [0, 1, 2].map(|c| (a[c] * k * nuisance.gain[c]).clamp(0.0, 1.0))
}
