//! Per-identity parameters: face shape, feature layout and colours, drawn
//! deterministically from `(seed, identity)`. Lengths are in face units
//! (the half-width of an average face is 1), `y` up, `x` to the image's
//! right for a frontal face.

use visage_core::rng::Rng;

use crate::math::V3;

/// Stream tag of identity draws, so that they never share a generator
/// with per-sample draws.
const IDENTITY_STREAM: u64 = 0x1D_E7_17;

/// How the hair is cut. See [`crate::face_model`] for the geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HairStyle {
    /// A thin cap with a high, receding hairline.
    Cropped,
    /// A short cap covering the top and back.
    Short,
    /// A thicker cap that also covers the temples.
    Medium,
    /// A medium cap plus long hair falling behind the head and shoulders.
    Long,
}

/// Everything that makes one identity look like itself.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Identity index.
    pub index: usize,
    /// Head half-width, height above and below the centre, depth.
    pub head: HeadSize,
    /// Eye centre `x` distance from the midline, eye centre height.
    pub eye_x: f64,
    /// Height of the eye centres.
    pub eye_y: f64,
    /// Eye half-width.
    pub eye_w: f64,
    /// Upper lid height above the eye centre.
    pub eye_h: f64,
    /// How much higher the outer eye corner sits than the inner one.
    pub eye_tilt: f64,
    /// Brow height above the eye centre.
    pub brow_y: f64,
    /// Brow arch height.
    pub brow_arch: f64,
    /// Brow thickness at its inner end.
    pub brow_thickness: f64,
    /// Nose half-width, half-length, depth and centre height.
    pub nose: NoseSize,
    /// Height of the mouth line.
    pub mouth_y: f64,
    /// Mouth half-width.
    pub mouth_w: f64,
    /// Upper and lower lip thickness.
    pub lip_upper: f64,
    /// Lower lip thickness.
    pub lip_lower: f64,
    /// Small per-landmark shape offsets (asymmetry), frontal `(x, y)`.
    pub offsets: [[f64; 2]; 68],
    /// Colours.
    pub colours: Colours,
    /// Hair cut.
    pub hair_style: HairStyle,
    /// Hairline height at the midline, relative to the head's top height.
    pub hairline: f64,
    /// How far the hairline drops towards the temples.
    pub hairline_drop: f64,
}

/// The head ellipsoids' semi-axes.
#[derive(Debug, Clone, Copy)]
pub struct HeadSize {
    /// Half-width.
    pub a: f64,
    /// Height above the centre.
    pub b_top: f64,
    /// Height of the chin below the centre.
    pub b_low: f64,
    /// Depth (centre to forehead).
    pub c: f64,
}

/// The nose ellipsoid's size and place.
#[derive(Debug, Clone, Copy)]
pub struct NoseSize {
    /// Half-width.
    pub w: f64,
    /// Half-length along the ridge.
    pub h: f64,
    /// Depth.
    pub d: f64,
    /// Height of the ellipsoid's centre.
    pub y: f64,
}

/// Albedos (linear RGB in 0..1).
#[derive(Debug, Clone, Copy)]
pub struct Colours {
    /// Skin.
    pub skin: V3,
    /// Lips.
    pub lips: V3,
    /// Iris.
    pub iris: V3,
    /// Hair.
    pub hair: V3,
    /// Brows.
    pub brows: V3,
}

const SKIN: [V3; 3] = [[0.95, 0.80, 0.70], [0.78, 0.57, 0.44], [0.40, 0.27, 0.19]];
const IRIS: [V3; 6] = [
    [0.40, 0.24, 0.12],
    [0.18, 0.11, 0.07],
    [0.30, 0.48, 0.70],
    [0.32, 0.50, 0.30],
    [0.45, 0.50, 0.56],
    [0.52, 0.40, 0.18],
];
const HAIR: [V3; 7] = [
    [0.07, 0.06, 0.06],
    [0.20, 0.13, 0.08],
    [0.38, 0.25, 0.14],
    [0.85, 0.72, 0.45],
    [0.62, 0.28, 0.12],
    [0.66, 0.64, 0.62],
    [0.30, 0.22, 0.18],
];

fn jitter(rng: &mut Rng, colour: V3, amount: f64) -> V3 {
    let mut out = colour;
    for c in &mut out {
        *c = (*c * (1.0 + rng.range(-amount, amount))).clamp(0.02, 0.95);
    }
    out
}

fn pick<const N: usize>(rng: &mut Rng, table: &[V3; N]) -> V3 {
    table[(rng.next_u64() % N as u64) as usize]
}

fn skin_tone(rng: &mut Rng) -> V3 {
    let t = rng.uniform() * 2.0;
    let (lo, hi, f) = if t < 1.0 {
        (SKIN[0], SKIN[1], t)
    } else {
        (SKIN[1], SKIN[2], t - 1.0)
    };
    let mixed = [
        lo[0] + (hi[0] - lo[0]) * f,
        lo[1] + (hi[1] - lo[1]) * f,
        lo[2] + (hi[2] - lo[2]) * f,
    ];
    jitter(rng, mixed, 0.04)
}

impl Identity {
    /// The identity `index` of the dataset with this `seed`.
    pub fn new(seed: u64, index: usize) -> Identity {
        let mut rng = Rng::new(&[seed, IDENTITY_STREAM, index as u64]);
        let r = &mut rng;
        let head = HeadSize {
            a: r.range(0.92, 1.08),
            b_top: r.range(1.18, 1.35),
            b_low: r.range(1.05, 1.22),
            c: r.range(0.95, 1.12),
        };
        let nose = NoseSize {
            w: r.range(0.13, 0.18),
            h: r.range(0.19, 0.25),
            d: r.range(0.18, 0.27),
            y: r.range(-0.12, -0.06),
        };
        let skin = skin_tone(r);
        let lips = jitter(r, [skin[0] * 0.92, skin[1] * 0.62, skin[2] * 0.64], 0.05);
        let hair_base = pick(r, &HAIR);
        let hair = jitter(r, hair_base, 0.08);
        let iris_base = pick(r, &IRIS);
        let colours = Colours {
            skin,
            lips,
            iris: jitter(r, iris_base, 0.08),
            hair,
            brows: brows(hair, skin),
        };
        let hair_style = match r.next_u64() % 4 {
            0 => HairStyle::Cropped,
            1 => HairStyle::Short,
            2 => HairStyle::Medium,
            _ => HairStyle::Long,
        };
        let mut offsets = [[0.0; 2]; 68];
        for (i, o) in offsets.iter_mut().enumerate() {
            // Eyes, brows and outer lips only: the inner lips must meet.
            if (17..=26).contains(&i) || (36..=59).contains(&i) {
                *o = [r.range(-0.012, 0.012), r.range(-0.012, 0.012)];
            }
        }
        Identity {
            index,
            head,
            eye_x: r.range(0.34, 0.42),
            eye_y: r.range(0.18, 0.26),
            eye_w: r.range(0.14, 0.18),
            eye_h: r.range(0.055, 0.08),
            eye_tilt: r.range(-0.015, 0.035),
            brow_y: r.range(0.19, 0.26),
            brow_arch: r.range(0.02, 0.08),
            brow_thickness: r.range(0.045, 0.1),
            nose,
            mouth_y: r.range(-0.55, -0.47),
            mouth_w: r.range(0.22, 0.30),
            lip_upper: r.range(0.05, 0.085),
            lip_lower: r.range(0.065, 0.11),
            offsets,
            colours,
            hair_style,
            hairline: r.range(0.6, 0.75),
            hairline_drop: r.range(0.05, 0.3),
        }
    }
}

/// Brow colour: the hair's, darkened, and never lighter than a shade of the
/// skin, so that brows stand out on every face as they do on real ones
/// (blond brows are still darker than the skin around them).
fn brows(hair: V3, skin: V3) -> V3 {
    let dark = [hair[0] * 0.85, hair[1] * 0.78, hair[2] * 0.72];
    [0, 1, 2].map(|c| dark[c].min(skin[c] * 0.55))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_deterministic_and_distinct() {
        let (a, b) = (Identity::new(3, 7), Identity::new(3, 7));
        assert_eq!(a.head.a.to_bits(), b.head.a.to_bits());
        assert_eq!(a.colours.skin, b.colours.skin);
        let c = Identity::new(3, 8);
        assert_ne!(a.colours.skin, c.colours.skin);
        assert_ne!(Identity::new(4, 7).eye_x, a.eye_x);
    }
}
