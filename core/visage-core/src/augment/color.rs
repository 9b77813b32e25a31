//! `color_jitter`, `grayscale`, `solarize` and `normalize` (photometric:
//! labels untouched).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::geometry::image_dims;
use super::{bad, check_p, fires, half, one};
use crate::augmentation::Augmentation;
use crate::rng::Rng;
use crate::{Error, Result, Sample};

/// A jitter strength: `s` gives `[1 - s, 1 + s]` (`[-s, s]` for hue), or an
/// explicit `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Jitter {
    /// Symmetric strength.
    Single(f64),
    /// Explicit range.
    Range([f64; 2]),
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter::Single(0.0)
    }
}

/// Parameters of `color_jitter` (torchvision's `ColorJitter`, wrapped in
/// `RandomApply` with probability `p`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColorJitterParams {
    /// Brightness factor range (non-negative).
    #[serde(default)]
    pub brightness: Jitter,
    /// Contrast factor range (non-negative).
    #[serde(default)]
    pub contrast: Jitter,
    /// Saturation factor range (non-negative).
    #[serde(default)]
    pub saturation: Jitter,
    /// Hue shift range, within [-0.5, 0.5] (fractions of a full turn).
    #[serde(default)]
    pub hue: Jitter,
    /// Probability of jittering at all.
    #[serde(default = "one")]
    pub p: f64,
}

/// torchvision's `ColorJitter` on tensors: the four adjustments in a random
/// order, each with a uniform factor, each clamped to [0, 1]. Contrast
/// blends with the mean grey level, saturation with the grey image, hue
/// rotates in HSV. A 1-channel image gets brightness and contrast only
/// (saturation and hue are no-ops on grey, as in torchvision); other
/// channel counts than 1 and 3 are errors.
#[derive(Debug, Clone)]
pub struct ColorJitter {
    /// Ranges of brightness, contrast, saturation, hue; `None` for no-ops.
    ranges: [Option<[f64; 2]>; 4],
    p: f64,
}

impl ColorJitter {
    /// Checks the parameters.
    pub fn new(params: ColorJitterParams) -> Result<Self> {
        let factor = |field: &str, j: Jitter| -> Result<Option<[f64; 2]>> {
            let r = match j {
                Jitter::Single(s) if s >= 0.0 => [(1.0 - s).max(0.0), 1.0 + s],
                Jitter::Range(r) => r,
                Jitter::Single(s) => return Err(bad(field, format!("must be non-negative, got {s}"))),
            };
            if !(r[0].is_finite() && r[1].is_finite() && r[0] >= 0.0 && r[0] <= r[1]) {
                return Err(bad(
                    field,
                    format!("must be a range [lo, hi] with 0 <= lo <= hi, got {r:?}"),
                ));
            }
            Ok((r != [1.0, 1.0]).then_some(r))
        };
        let hue = match params.hue {
            Jitter::Single(s) => [-s, s],
            Jitter::Range(r) => r,
        };
        if !(-0.5 <= hue[0] && hue[0] <= hue[1] && hue[1] <= 0.5) {
            return Err(bad("hue", format!("must lie within [-0.5, 0.5], got {:?}", params.hue)));
        }
        Ok(ColorJitter {
            ranges: [
                factor("brightness", params.brightness)?,
                factor("contrast", params.contrast)?,
                factor("saturation", params.saturation)?,
                (hue != [0.0, 0.0]).then_some(hue),
            ],
            p: check_p(params.p)?,
        })
    }
}

impl Augmentation for ColorJitter {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        let mut rng = Rng::new(&[seed]);
        if !fires(&mut rng, self.p) {
            return Ok(sample);
        }
        let (c, _, _) = image_dims(&sample.image)?;
        if c != 1 && c != 3 {
            return Err(Error::msg(format!("color_jitter needs 1 or 3 channels, got {c}")));
        }
        let order = rng.permutation(4);
        let factors: Vec<Option<f64>> = self
            .ranges
            .iter()
            .map(|r| r.map(|[lo, hi]| rng.range(lo, hi)))
            .collect();
        let mut img = sample.image;
        for k in order {
            let Some(f) = factors[k] else { continue };
            img = match (k, c) {
                // blend(img, 0, f): adding the zero term changes no bit.
                (0, _) => (&img * f).f_clamp(0.0, 1.0)?,
                (1, _) => {
                    let mean = if c == 3 { gray(&img)? } else { img.shallow_clone() }.f_mean(Kind::Float)?;
                    blend(&img, &mean, f)?
                }
                (2, 3) => blend(&img, &gray(&img)?, f)?,
                (3, 3) => adjust_hue(&img, f)?,
                _ => img,
            };
        }
        sample.image = img;
        Ok(sample)
    }
}

/// `clamp(f · a + (1 - f) · b, 0, 1)`.
fn blend(a: &Tensor, b: &Tensor, f: f64) -> Result<Tensor> {
    Ok((a * f + b * (1.0 - f)).f_clamp(0.0, 1.0)?)
}

/// ITU-R 601-2 luma `[1, H, W]` of an RGB image (torchvision's weights).
pub(crate) fn gray(img: &Tensor) -> Result<Tensor> {
    let w = Tensor::from_slice(&[0.2989f32, 0.587, 0.114])
        .f_to_kind(img.kind())?
        .f_view([3, 1, 1])?;
    Ok(img.f_mul(&w)?.f_sum_dim_intlist(0, true, img.kind())?)
}

/// Rotates hue by `shift` turns (torchvision's `_rgb2hsv` / `_hsv2rgb`).
/// A float RGB image on the CPU takes a per-pixel path in plain Rust (the
/// same formulas in f32, one pass instead of ~50 libtorch kernels); other
/// images the libtorch path.
pub(crate) fn adjust_hue(img: &Tensor, shift: f64) -> Result<Tensor> {
    let size = img.size();
    if img.kind() == Kind::Float && img.device() == tch::Device::Cpu && size.len() == 3 && size[0] == 3 {
        let data = Vec::<f32>::try_from(img.f_contiguous()?.f_view([-1])?)?;
        return Ok(Tensor::from_slice(&hue_shift_rgb(&data, shift as f32)).f_view([3, size[1], size[2]])?);
    }
    adjust_hue_torch(img, shift)
}

/// Python's `x % 1` for floats, equal to libtorch's `remainder` (up to the sign of zero)
/// (`fmod`, plus 1 when negative): `x - floor(x)` is exact for `x >= 0` and
/// for `x <= -1`, and rounds `x + 1` like it for `-1 < x < 0`.
fn rem1(x: f32) -> f32 {
    x - floor_small(x)
}

/// `x.floor()` for `|x| < 2^31` (hue values are within a few units), without
/// the libm call that `f32::floor` is on targets without SSE4.1.
fn floor_small(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// [`adjust_hue`] on planar RGB data `[3 * n]`.
fn hue_shift_rgb(data: &[f32], shift: f32) -> Vec<f32> {
    let n = data.len() / 3;
    let (r, rest) = data.split_at(n);
    let (g, b) = rest.split_at(n);
    let mut out = vec![0f32; 3 * n];
    let (or, rest) = out.split_at_mut(n);
    let (og, ob) = rest.split_at_mut(n);
    for i in 0..n {
        let (r, g, b) = (r[i], g[i], b[i]);
        let maxc = r.max(g).max(b);
        let minc = r.min(g).min(b);
        let eqc = maxc == minc;
        let cr = maxc - minc;
        let s = cr / if eqc { 1.0 } else { maxc };
        let cr_div = if eqc { 1.0 } else { cr };
        let rc = (maxc - r) / cr_div;
        let gc = (maxc - g) / cr_div;
        let bc = (maxc - b) / cr_div;
        let h = if maxc == r {
            bc - gc
        } else if maxc == g {
            (rc - bc) + 2.0
        } else {
            (gc - rc) + 4.0
        };
        let h = rem1(rem1(h / 6.0 + 1.0) + shift);
        let v = maxc;
        let i6 = floor_small(h * 6.0);
        let f = h * 6.0 - i6;
        let p = (v * (1.0 - s)).clamp(0.0, 1.0);
        let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
        let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
        let (x, y, z) = match i6 as i64 % 6 {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        (or[i], og[i], ob[i]) = (x, y, z);
    }
    out
}

/// [`adjust_hue`] in libtorch ops, for any kind and device.
fn adjust_hue_torch(img: &Tensor, shift: f64) -> Result<Tensor> {
    let rgb = img.f_unbind(0)?;
    let (r, g, b) = (&rgb[0], &rgb[1], &rgb[2]);
    let maxc = img.f_amax(0, false)?;
    let minc = img.f_amin(0, false)?;
    let eqc = maxc.f_eq_tensor(&minc)?;
    let cr = &maxc - &minc;
    let ones = maxc.ones_like();
    let s = &cr / maxc.f_where_self(&eqc.f_logical_not()?, &ones)?;
    let cr_div = cr.f_where_self(&eqc.f_logical_not()?, &ones)?;
    let rc = (&maxc - r) / &cr_div;
    let gc = (&maxc - g) / &cr_div;
    let bc = (&maxc - b) / &cr_div;
    let is_r = maxc.f_eq_tensor(r)?;
    let is_g = maxc.f_eq_tensor(g)?.f_logical_and(&is_r.f_logical_not()?)?;
    let is_b = is_r.f_logical_or(&is_g)?.f_logical_not()?;
    let k = img.kind();
    let h = is_r.f_to_kind(k)? * (&bc - &gc)
        + is_g.f_to_kind(k)? * ((&rc - &bc) + 2.0)
        + is_b.f_to_kind(k)? * ((&gc - &rc) + 4.0);
    let h = (h / 6.0 + 1.0).f_remainder(1.0)?;
    let h = (h + shift).f_remainder(1.0)?;
    // HSV back to RGB.
    let v = maxc;
    let i = (&h * 6.0).f_floor()?;
    let f = &h * 6.0 - &i;
    let i = i.f_remainder(6.0)?;
    let one_minus = |x: &Tensor| x * -1.0 + 1.0;
    let p = (&v * one_minus(&s)).f_clamp(0.0, 1.0)?;
    let q = (&v * one_minus(&(&s * &f))).f_clamp(0.0, 1.0)?;
    let t = (&v * one_minus(&(&s * one_minus(&f)))).f_clamp(0.0, 1.0)?;
    let sector = Tensor::f_stack(&(0..6).map(|n| i.f_eq(n as f64)).collect::<Result<Vec<_>, _>>()?, 0)?.f_to_kind(k)?;
    let pick = |vals: [&Tensor; 6]| -> Result<Tensor> {
        Ok(Tensor::f_stack(&vals, 0)?
            .f_mul(&sector)?
            .f_sum_dim_intlist(0, false, k)?)
    };
    let r = pick([&v, &q, &p, &p, &t, &v])?;
    let g = pick([&t, &v, &v, &q, &p, &p])?;
    let b = pick([&p, &p, &t, &v, &v, &q])?;
    Ok(Tensor::f_stack(&[r, g, b], 0)?)
}

/// Parameters of `grayscale` (torchvision's `RandomGrayscale`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrayscaleParams {
    /// Probability of converting (torchvision's default 0.1).
    #[serde(default = "default_gray_p")]
    pub p: f64,
}

fn default_gray_p() -> f64 {
    0.1
}

/// Replaces each channel of an RGB image by its luma (keeps 3 channels); a
/// 1-channel image is already grey and is returned as is; other channel
/// counts are errors.
#[derive(Debug, Clone)]
pub struct Grayscale {
    p: f64,
}

impl Grayscale {
    /// Checks the parameters.
    pub fn new(params: GrayscaleParams) -> Result<Self> {
        Ok(Grayscale { p: check_p(params.p)? })
    }
}

impl Augmentation for Grayscale {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        if !fires(&mut Rng::new(&[seed]), self.p) {
            return Ok(sample);
        }
        match image_dims(&sample.image)? {
            (1, _, _) => {}
            (3, h, w) => sample.image = gray(&sample.image)?.f_expand([3, h, w], false)?.f_contiguous()?,
            (c, _, _) => return Err(Error::msg(format!("grayscale needs 1 or 3 channels, got {c}"))),
        }
        Ok(sample)
    }
}

/// Parameters of `solarize` (torchvision's `RandomSolarize`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SolarizeParams {
    /// Values at or above it are inverted (`x -> 1 - x`).
    #[serde(default = "half")]
    pub threshold: f64,
    /// Probability of solarizing (torchvision's default 0.5).
    #[serde(default = "half")]
    pub p: f64,
}

/// Inverts every value at or above `threshold`.
#[derive(Debug, Clone)]
pub struct Solarize {
    threshold: f64,
    p: f64,
}

impl Solarize {
    /// Checks the parameters.
    pub fn new(params: SolarizeParams) -> Result<Self> {
        if !(0.0..=1.0).contains(&params.threshold) {
            return Err(bad("threshold", format!("must be in [0, 1], got {}", params.threshold)));
        }
        Ok(Solarize {
            threshold: params.threshold,
            p: check_p(params.p)?,
        })
    }
}

impl Augmentation for Solarize {
    fn apply(&self, mut sample: Sample, seed: u64) -> Result<Sample> {
        if !fires(&mut Rng::new(&[seed]), self.p) {
            return Ok(sample);
        }
        image_dims(&sample.image)?;
        let above = sample.image.f_ge(self.threshold)?;
        sample.image = (&sample.image * -1.0 + 1.0).f_where_self(&above, &sample.image)?;
        Ok(sample)
    }
}

/// Parameters of `normalize`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NormalizeParams {
    /// Per-channel mean (one value for all channels, or one per channel).
    #[serde(default = "imagenet_mean")]
    pub mean: Vec<f64>,
    /// Per-channel standard deviation, positive.
    #[serde(default = "imagenet_std")]
    pub std: Vec<f64>,
}

fn imagenet_mean() -> Vec<f64> {
    vec![0.485, 0.456, 0.406]
}
fn imagenet_std() -> Vec<f64> {
    vec![0.229, 0.224, 0.225]
}

/// `(x - mean) / std` per channel (defaults: ImageNet's statistics). The
/// number of values must be 1 or the image's channel count.
#[derive(Debug, Clone)]
pub struct Normalize {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Normalize {
    /// Checks the parameters.
    pub fn new(params: NormalizeParams) -> Result<Self> {
        if params.mean.is_empty() || params.mean.iter().any(|m| !m.is_finite()) {
            return Err(bad("mean", format!("must be finite values, got {:?}", params.mean)));
        }
        if params.std.len() != params.mean.len() || params.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(bad(
                "std",
                format!(
                    "must be {} positive values (one per mean), got {:?}",
                    params.mean.len(),
                    params.std
                ),
            ));
        }
        Ok(Normalize {
            mean: params.mean,
            std: params.std,
        })
    }
}

impl Augmentation for Normalize {
    fn apply(&self, mut sample: Sample, _seed: u64) -> Result<Sample> {
        let (c, _, _) = image_dims(&sample.image)?;
        let n = self.mean.len() as i64;
        if n != 1 && n != c {
            return Err(Error::msg(format!(
                "normalize has {n} means and stds for an image with {c} channels"
            )));
        }
        let kind = sample.image.kind();
        let mean = Tensor::from_slice(&self.mean).f_to_kind(kind)?.f_view([n, 1, 1])?;
        let std = Tensor::from_slice(&self.std).f_to_kind(kind)?.f_view([n, 1, 1])?;
        sample.image = sample.image.f_sub(&mean)?.f_div(&std)?;
        Ok(sample)
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn the_rust_hue_path_matches_the_libtorch_path() {
        let mut rng = Rng::new(&[42]);
        let mut pixels: Vec<f32> = (0..3 * 32 * 24).map(|_| rng.uniform() as f32).collect();
        // Grey pixels, saturated primaries and ties between channels.
        pixels[..6].copy_from_slice(&[0.5, 1.0, 0.0, 0.3, 0.5, 1.0]);
        let img = Tensor::from_slice(&pixels).view([3, 32, 24]);
        for shift in [-0.5, -0.37, 0.0, 0.1, 0.25, 0.5] {
            let fast = adjust_hue(&img, shift).unwrap();
            let torch = adjust_hue_torch(&img, shift).unwrap();
            let diff = (&fast - &torch).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "shift {shift}: {diff}");
        }
    }
}
