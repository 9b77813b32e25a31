//! `color_jitter`, `grayscale`, `solarize` and `normalize` (photometric:
//! labels untouched).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::geometry::image_dims;
use super::{bad, check_p, fires, half, one, planar};
use crate::augmentation::Augmentation;
use crate::pixels::{self, is_cpu_float};
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
        let (order, factors) = self.draw(&mut rng);
        sample.image = if is_cpu_float(&sample.image) {
            jitter_planar(&sample.image, c, &order, &factors)?
        } else {
            jitter_torch(sample.image, c, &order, &factors)?
        };
        Ok(sample)
    }
}

impl ColorJitter {
    /// The order of the four adjustments and each one's factor (`None`
    /// for a no-op).
    fn draw(&self, rng: &mut Rng) -> (Vec<usize>, Vec<Option<f64>>) {
        let order = rng.permutation(4);
        let factors = self
            .ranges
            .iter()
            .map(|r| r.map(|[lo, hi]| rng.range(lo, hi)))
            .collect();
        (order, factors)
    }
}

/// The jitter in plain Rust on a copy of the pixels.
fn jitter_planar(img: &Tensor, c: i64, order: &[usize], factors: &[Option<f64>]) -> Result<Tensor> {
    pixels::edited_copy(img, |data| {
        for &k in order {
            match (k, factors[k], c) {
                (0, Some(f), _) => planar::brightness(data, f),
                (1, Some(f), _) => planar::contrast(data, c as usize, f),
                (2, Some(f), 3) => planar::saturation(data, f),
                (3, Some(f), 3) => planar::hue(data, f),
                _ => {}
            }
        }
    })
}

/// The jitter in libtorch ops, for any kind and device.
fn jitter_torch(mut img: Tensor, c: i64, order: &[usize], factors: &[Option<f64>]) -> Result<Tensor> {
    for &k in order {
        let Some(f) = factors[k] else { continue };
        img = match (k, c) {
            // blend(img, 0, f): adding the zero term changes no bit.
            (0, _) => (&img * f).f_clamp(0.0, 1.0)?,
            (1, _) => {
                let mean = if c == 3 { gray(&img)? } else { img.shallow_clone() }.f_mean(Kind::Float)?;
                blend(&img, &mean, f)?
            }
            (2, 3) => blend(&img, &gray(&img)?, f)?,
            (3, 3) => adjust_hue_torch(&img, f)?,
            _ => img,
        };
    }
    Ok(img)
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
/// A float RGB image on the CPU takes the plain-Rust path
/// ([`planar::hue`]); other images the libtorch path.
#[cfg(test)]
pub(crate) fn adjust_hue(img: &Tensor, shift: f64) -> Result<Tensor> {
    let size = img.size();
    if is_cpu_float(img) && size.len() == 3 && size[0] == 3 {
        return pixels::edited_copy(img, |data| planar::hue(data, shift));
    }
    adjust_hue_torch(img, shift)
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
            (3, _, _) if is_cpu_float(&sample.image) => {
                sample.image = pixels::edited_copy(&sample.image, planar::grayscale)?;
            }
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

    fn random_pixels(seed: u64, c: i64) -> Tensor {
        let mut rng = Rng::new(&[seed]);
        let pixels: Vec<f32> = (0..c * 20 * 28).map(|_| rng.uniform() as f32).collect();
        Tensor::from_slice(&pixels).view([c, 20, 28])
    }

    #[test]
    fn the_rust_jitter_matches_the_libtorch_jitter_in_every_order() {
        let params = ColorJitterParams {
            brightness: Jitter::Single(0.6),
            contrast: Jitter::Single(0.6),
            saturation: Jitter::Single(0.6),
            hue: Jitter::Single(0.3),
            p: 1.0,
        };
        let jitter = ColorJitter::new(params).unwrap();
        for seed in 0..24 {
            for c in [1, 3] {
                let img = random_pixels(seed, c);
                let (order, factors) = jitter.draw(&mut Rng::new(&[seed, 7]));
                let fast = jitter_planar(&img, c, &order, &factors).unwrap();
                let torch = jitter_torch(img.shallow_clone(), c, &order, &factors).unwrap();
                let diff = (&fast - &torch).abs().max().double_value(&[]);
                assert!(diff < 2e-6, "seed {seed}, {c} channels, order {order:?}: {diff}");
                assert!(
                    (&fast - &img).abs().max().double_value(&[]) > 0.01,
                    "the jitter changed nothing"
                );
            }
        }
    }

    #[test]
    fn the_rust_grayscale_matches_the_luma_of_libtorch() {
        let img = random_pixels(3, 3);
        let gray_op = Grayscale::new(GrayscaleParams { p: 1.0 }).unwrap();
        let fast = gray_op.apply(Sample::new(img.copy()), 0).unwrap().image;
        let torch = gray(&img).unwrap().expand([3, 20, 28], false);
        assert_eq!(fast.size(), [3, 20, 28]);
        assert!((&fast - &torch).abs().max().double_value(&[]) < 1e-6);
    }
}
