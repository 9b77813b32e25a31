//! `color_jitter`'s adjustments on planar `f32` data (`[C * H * W]`, one
//! plane per channel), in plain Rust: the path of every CPU float image.
//!
//! A 112 px view is about 37 000 values, so each libtorch kernel of the
//! tensor path costs more in dispatch and allocation than in arithmetic.
//! Here the whole jitter is one copy in, one loop per adjustment in place,
//! and one copy out. The formulas are torchvision's, in `f32` as libtorch
//! computes them; `color.rs` tests both paths against each other.

/// torchvision's luma weights (ITU-R 601-2).
const LUMA: [f32; 3] = [0.2989, 0.587, 0.114];

/// The three planes of an RGB image.
fn planes(data: &mut [f32]) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let n = data.len() / 3;
    let (r, rest) = data.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    (r, g, b)
}

fn luma(r: f32, g: f32, b: f32) -> f32 {
    r * LUMA[0] + g * LUMA[1] + b * LUMA[2]
}

/// `clamp(x * f, 0, 1)`.
pub(crate) fn brightness(data: &mut [f32], f: f64) {
    let f = f as f32;
    for x in data {
        *x = clamp01(*x * f);
    }
}

/// Blends with the mean grey level: `clamp(f x + (1 - f) mean, 0, 1)`.
pub(crate) fn contrast(data: &mut [f32], channels: usize, f: f64) {
    let mean = if channels == 3 {
        let n = data.len() / 3;
        let (r, g, b) = (&data[..n], &data[n..2 * n], &data[2 * n..]);
        let sum: f64 = r.iter().zip(g).zip(b).map(|((&r, &g), &b)| luma(r, g, b) as f64).sum();
        (sum / n as f64) as f32
    } else {
        (data.iter().map(|&x| x as f64).sum::<f64>() / data.len() as f64) as f32
    };
    let offset = mean * (1.0 - f) as f32;
    let f = f as f32;
    for x in data {
        *x = clamp01(*x * f + offset);
    }
}

/// Blends each RGB pixel with its grey level.
pub(crate) fn saturation(data: &mut [f32], f: f64) {
    let (keep, grey) = (f as f32, (1.0 - f) as f32);
    let (r, g, b) = planes(data);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let y = luma(*r, *g, *b) * grey;
        *r = clamp01(*r * keep + y);
        *g = clamp01(*g * keep + y);
        *b = clamp01(*b * keep + y);
    }
}

/// Replaces every channel of an RGB image by its luma.
pub(crate) fn grayscale(data: &mut [f32]) {
    let (r, g, b) = planes(data);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let y = luma(*r, *g, *b);
        (*r, *g, *b) = (y, y, y);
    }
}

/// Python's `x % 1` for floats, equal to libtorch's `remainder` (up to the
/// sign of zero): `x - floor(x)`.
#[inline(always)]
fn rem1(x: f32) -> f32 {
    x - floor_small(x)
}

/// `x.floor()` for `|x| < 2^22` (hue values are within a few units):
/// adding and subtracting `1.5 * 2^23` rounds to the nearest integer in
/// plain float arithmetic, which vectorises where `f32::floor` (a libm call
/// without SSE4.1) and the saturating `as i32` do not.
#[inline(always)]
fn floor_small(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    let nearest = (x + ROUND) - ROUND;
    if nearest > x {
        nearest - 1.0
    } else {
        nearest
    }
}

/// Rotates the hue of every RGB pixel by `shift` turns, torchvision's
/// `_rgb2hsv`, shift and `_hsv2rgb`, written without branches (each case
/// is a select) so that the compiler vectorises the loop.
pub(crate) fn hue(data: &mut [f32], shift: f64) {
    hue_vectorised(data, shift as f32);
}

crate::pixels::vectorised! {
    /// [`hue`]'s loop over the pixels.
    fn hue_vectorised / hue_portable(data: &mut [f32], shift: f32) {
        let (r, g, b) = planes(data);
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            (*r, *g, *b) = hue_pixel(*r, *g, *b, shift);
        }
    }
}

/// `max` and `min` as a compare and a select (no NaN handling: pixel
/// values are finite), which vectorise, unlike `f32::max`.
#[inline(always)]
fn max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn min(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn clamp01(x: f32) -> f32 {
    min(max(x, 0.0), 1.0)
}

/// One pixel of [`hue`].
#[inline(always)]
fn hue_pixel(r: f32, g: f32, b: f32, shift: f32) -> (f32, f32, f32) {
    let maxc = max(max(r, g), b);
    let minc = min(min(r, g), b);
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
    let p = clamp01(v * (1.0 - s));
    let q = clamp01(v * (1.0 - s * f));
    let t = clamp01(v * (1.0 - s * (1.0 - f)));
    // Sector `i6 mod 6` (h * 6 may round up to 6).
    let sector = if i6 >= 6.0 { i6 - 6.0 } else { i6 };
    let pick = |values: [f32; 6]| {
        let mut out = values[0];
        for (k, &value) in values.iter().enumerate().skip(1) {
            out = if sector == k as f32 { value } else { out };
        }
        out
    };
    (
        pick([v, q, p, p, t, v]),
        pick([t, v, v, q, p, p]),
        pick([p, p, t, v, v, q]),
    )
}

#[cfg(test)]
mod tests {
    use super::{floor_small, hue, hue_portable};
    use crate::rng::Rng;

    #[test]
    fn the_avx2_hue_gives_the_same_bits_as_the_portable_one() {
        let mut rng = Rng::new(&[9]);
        let pixels: Vec<f32> = (0..3 * 999).map(|_| rng.uniform() as f32).collect();
        for shift in [-0.4, 0.05, 0.3] {
            let (mut dispatched, mut portable) = (pixels.clone(), pixels.clone());
            hue(&mut dispatched, shift);
            hue_portable(&mut portable, shift as f32);
            assert!(dispatched
                .iter()
                .zip(&portable)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            assert_ne!(dispatched, pixels);
        }
    }

    #[test]
    fn floor_small_is_floor_on_the_hue_range() {
        let mut x = -8.0f32;
        while x < 8.0 {
            for y in [x, x.next_up(), x.next_down()] {
                assert_eq!(floor_small(y), y.floor(), "{y}");
            }
            x += 1.0 / 64.0;
        }
        for y in [-1e-30, -0.0, 0.0, 0.999_999_94, -0.999_999_94, 5.999_999_5] {
            assert_eq!(floor_small(y), y.floor(), "{y}");
        }
    }
}
