//! `hflip`, `rotate` and `affine`: maps of the image onto itself (same size).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::geometry::{image_dims, transform, Affine, Geometric, Pixels};
use super::{bad, check_p, check_range, fires, half, one, round_half_even};
use crate::augmentation::Augmentation;
use crate::rng::Rng;
use crate::{Result, Sample};

/// Parameters of `hflip`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HflipParams {
    /// Probability of flipping (torchvision's default 0.5).
    #[serde(default = "half")]
    pub p: f64,
}

/// Horizontal flip with probability `p`: `x -> W - x`, landmark indices
/// permuted by `IBUG68_FLIP`, mask classes by `LAPA_FLIP`, yaw and roll
/// negated.
#[derive(Debug, Clone)]
pub struct Hflip {
    p: f64,
}

impl Hflip {
    /// Checks the parameters.
    pub fn new(params: HflipParams) -> Result<Self> {
        Ok(Hflip { p: check_p(params.p)? })
    }

    /// The flip of a width-`width` image.
    pub(crate) fn op(height: i64, width: i64) -> Geometric {
        Geometric {
            map: Affine::hflip(width as f64),
            height,
            width,
            pixels: Pixels::Flip,
        }
    }
}

impl Augmentation for Hflip {
    fn apply(&self, sample: Sample, seed: u64) -> Result<Sample> {
        if !fires(&mut Rng::new(&[seed]), self.p) {
            return Ok(sample);
        }
        let (_, h, w) = image_dims(&sample.image)?;
        transform(sample, &Hflip::op(h, w))
    }
}

/// Parameters of `rotate`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateParams {
    /// Largest absolute angle in degrees; the angle is uniform in
    /// `[-degrees, degrees)`, positive counter-clockwise on screen.
    pub degrees: f64,
    /// Probability of rotating.
    #[serde(default = "one")]
    pub p: f64,
}

/// Rotation about the image centre `(W/2, H/2)` by a uniform angle, same
/// output size, bilinear, zero outside the input (torchvision's
/// `RandomRotation` without `expand`). Roll increases by the angle.
#[derive(Debug, Clone)]
pub struct Rotate {
    degrees: f64,
    p: f64,
}

impl Rotate {
    /// Checks the parameters.
    pub fn new(params: RotateParams) -> Result<Self> {
        if !(params.degrees.is_finite() && params.degrees >= 0.0) {
            return Err(bad(
                "degrees",
                format!("must be a non-negative angle, got {}", params.degrees),
            ));
        }
        Ok(Rotate {
            degrees: params.degrees,
            p: check_p(params.p)?,
        })
    }

    /// The angle (degrees, counter-clockwise) drawn for `seed`, or `None`
    /// when the op does not fire.
    pub fn angle(&self, seed: u64) -> Option<f64> {
        let mut rng = Rng::new(&[seed]);
        fires(&mut rng, self.p).then(|| rng.range(-self.degrees, self.degrees))
    }

    /// Rotation by `degrees` of an `height x width` image about its centre.
    pub(crate) fn op(degrees: f64, height: i64, width: i64) -> Geometric {
        Geometric {
            map: Affine::rotation_about(degrees, width as f64 / 2.0, height as f64 / 2.0),
            height,
            width,
            pixels: Pixels::Warp,
        }
    }
}

impl Augmentation for Rotate {
    fn apply(&self, sample: Sample, seed: u64) -> Result<Sample> {
        let Some(angle) = self.angle(seed) else {
            return Ok(sample);
        };
        let (_, h, w) = image_dims(&sample.image)?;
        transform(sample, &Rotate::op(angle, h, w))
    }
}

/// Shear angles in degrees: `s` draws the x-shear from `[-s, s]`; `[a, b]`
/// draws it from `[a, b]`; `[a, b, c, d]` also draws a y-shear from `[c, d]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Shear {
    /// Symmetric x-shear range.
    Single(f64),
    /// `[a, b]` or `[a, b, c, d]`.
    Ranges(Vec<f64>),
}

/// Parameters of `affine` (torchvision's `RandomAffine`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AffineParams {
    /// Largest absolute rotation in degrees (counter-clockwise positive).
    #[serde(default)]
    pub degrees: f64,
    /// Largest translation as fractions `[of width, of height]`; each shift
    /// is uniform, rounded to whole pixels. None: no translation.
    #[serde(default)]
    pub translate: Option<[f64; 2]>,
    /// Range `[lo, hi]` of the isotropic scale factor. None: 1.
    #[serde(default)]
    pub scale: Option<[f64; 2]>,
    /// Shear angles in degrees (see [`Shear`]). None: no shear.
    #[serde(default)]
    pub shear: Option<Shear>,
    /// Probability of applying the transform.
    #[serde(default = "one")]
    pub p: f64,
}

/// Random affine map about the image centre `c`, same output size:
/// `x -> c + t + R(angle) · Shy · Shx · s (x - c)`, bilinear, zero outside.
/// Shears: `Shx` moves `x += tan(shear_x) · y` (lower rows to the right for a
/// positive angle), `Shy` moves `y += tan(shear_y) · x`.
///
/// Pose: roll increases by the angle of the rotation closest to the linear
/// part (polar decomposition): exactly the drawn angle without shear. A
/// shear is not a head motion; its rotational component goes into roll,
/// yaw and pitch are kept. Differs from torchvision in the exact shear
/// parametrisation and in the rotation sign (torchvision's `affine` turns
/// clockwise for a positive angle; the ranges are symmetric anyway).
#[derive(Debug, Clone)]
pub struct RandomAffine {
    degrees: f64,
    translate: [f64; 2],
    scale: [f64; 2],
    shear: [f64; 4],
    p: f64,
}

impl RandomAffine {
    /// Checks the parameters.
    pub fn new(params: AffineParams) -> Result<Self> {
        if !(params.degrees.is_finite() && params.degrees >= 0.0) {
            return Err(bad(
                "degrees",
                format!("must be a non-negative angle, got {}", params.degrees),
            ));
        }
        let translate = params.translate.unwrap_or([0.0, 0.0]);
        if !translate.iter().all(|t| (0.0..=1.0).contains(t)) {
            return Err(bad(
                "translate",
                format!("must be fractions in [0, 1], got {translate:?}"),
            ));
        }
        let scale = check_range("scale", params.scale.unwrap_or([1.0, 1.0]), 0.0, true)?;
        let shear = match params.shear {
            None => [0.0; 4],
            Some(Shear::Single(s)) if s.is_finite() && s >= 0.0 => [-s, s, 0.0, 0.0],
            Some(Shear::Ranges(v)) if v.len() == 2 => [v[0], v[1], 0.0, 0.0],
            Some(Shear::Ranges(v)) if v.len() == 4 => [v[0], v[1], v[2], v[3]],
            Some(other) => {
                return Err(bad(
                    "shear",
                    format!("must be a non-negative angle, [a, b] or [a, b, c, d], got {other:?}"),
                ))
            }
        };
        for (pair, name) in [(&shear[..2], "x"), (&shear[2..], "y")] {
            if !(pair[0] <= pair[1] && pair[0] > -90.0 && pair[1] < 90.0) {
                return Err(bad(
                    "shear",
                    format!("the {name}-shear range must be ordered within (-90, 90) degrees, got {pair:?}"),
                ));
            }
        }
        Ok(RandomAffine {
            degrees: params.degrees,
            translate,
            scale,
            shear,
            p: check_p(params.p)?,
        })
    }

    /// The map drawn for `seed` on an `height x width` image, or `None` when
    /// the op does not fire.
    pub fn map(&self, seed: u64, height: i64, width: i64) -> Option<Affine> {
        let mut rng = Rng::new(&[seed]);
        if !fires(&mut rng, self.p) {
            return None;
        }
        let angle = rng.range(-self.degrees, self.degrees);
        let max_dx = self.translate[0] * width as f64;
        let max_dy = self.translate[1] * height as f64;
        let tx = round_half_even(rng.range(-max_dx, max_dx)) as f64;
        let ty = round_half_even(rng.range(-max_dy, max_dy)) as f64;
        let s = rng.range(self.scale[0], self.scale[1]);
        let shx = rng.range(self.shear[0], self.shear[1]).to_radians().tan();
        let shy = rng.range(self.shear[2], self.shear[3]).to_radians().tan();
        let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
        Some(
            Affine::translation(-cx, -cy)
                .then(&Affine::scaling(s, s))
                .then(&Affine::linear([[1.0, shx], [0.0, 1.0]]))
                .then(&Affine::linear([[1.0, 0.0], [shy, 1.0]]))
                .then(&Affine::rotation_about(angle, 0.0, 0.0))
                .then(&Affine::translation(cx + tx, cy + ty)),
        )
    }
}

impl Augmentation for RandomAffine {
    fn apply(&self, sample: Sample, seed: u64) -> Result<Sample> {
        let (_, h, w) = image_dims(&sample.image)?;
        let Some(map) = self.map(seed, h, w) else {
            return Ok(sample);
        };
        let op = Geometric {
            map,
            height: h,
            width: w,
            pixels: Pixels::Warp,
        };
        transform(sample, &op)
    }
}
