//! Antialiased bilinear resizing of a box of a CPU float image, in plain
//! Rust: libtorch's `_upsample_bilinear2d_aa` (which is PIL's algorithm),
//! written as two separable passes with precomputed taps.
//!
//! Output pixel `i` of an axis scaled by `scale = input / output` is
//! centred at `scale (i + 0.5)`; it averages the inputs within `support =
//! max(scale, 1)` of the centre with triangle weights `1 - |d| / max(scale,
//! 1)`, normalised to sum to one. The width is resampled first, then the
//! height, as libtorch does. The tests below hold this path to libtorch's.

use tch::Tensor;

use crate::{pixels, Result};

/// The input taps of every output pixel along one axis.
struct Taps {
    /// First input index of each output pixel.
    start: Vec<usize>,
    /// Number of taps of each output pixel.
    len: Vec<usize>,
    /// `width` weights per output pixel (zero-padded).
    weights: Vec<f32>,
    width: usize,
}

impl Taps {
    /// The taps of resampling `input` values to `output`.
    fn new(input: usize, output: usize) -> Taps {
        // In f32, as libtorch computes the weights of a float image.
        let scale = input as f32 / output as f32;
        let support = scale.max(1.0);
        let inv = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
        let width = support.ceil() as usize * 2 + 1;
        let mut taps = Taps {
            start: Vec::with_capacity(output),
            len: Vec::with_capacity(output),
            weights: vec![0.0; output * width],
            width,
        };
        for i in 0..output {
            let centre = scale * (i as f32 + 0.5);
            let lo = ((centre - support + 0.5) as i64).max(0) as usize;
            let hi = ((centre + support + 0.5) as i64).min(input as i64) as usize;
            let n = (hi - lo).min(width);
            let w = &mut taps.weights[i * width..][..n];
            for (j, wj) in w.iter_mut().enumerate() {
                *wj = (1.0 - ((j + lo) as f32 - centre + 0.5).abs() * inv).max(0.0);
            }
            let total: f32 = w.iter().sum();
            for wj in w.iter_mut() {
                *wj = if total != 0.0 { *wj / total } else { 0.0 };
            }
            taps.start.push(lo);
            taps.len.push(n);
        }
        taps
    }

    fn of(&self, i: usize) -> (usize, &[f32]) {
        let w = &self.weights[i * self.width..i * self.width + self.len[i]];
        (self.start[i], w)
    }

    /// The same taps as windows of one width, `min(width, input)`, each
    /// starting early enough to stay inside the input and padded with zero
    /// weights (which add nothing to the sums): `(starts, weights, width)`.
    fn windows(&self, input: usize) -> (Vec<usize>, Vec<f32>, usize) {
        let width = self.width.min(input);
        let mut weights = vec![0f32; self.start.len() * width];
        let starts = (0..self.start.len())
            .map(|i| {
                let (lo, w) = self.of(i);
                let start = lo.min(input - width);
                weights[i * width + lo - start..][..w.len()].copy_from_slice(w);
                start
            })
            .collect();
        (starts, weights, width)
    }
}

/// One row resampled along its length with windows of `N` taps.
#[inline(always)]
fn resample_row<const N: usize>(row: &[f32], starts: &[usize], weights: &[f32], out: &mut [f32]) {
    for ((o, &start), w) in out.iter_mut().zip(starts).zip(weights.chunks_exact(N)) {
        let x = &row[start..start + N];
        let mut sum = 0.0;
        for k in 0..N {
            sum += w[k] * x[k];
        }
        *o = sum;
    }
}

/// [`resample_row`] for any window width, with the common widths (3 when
/// enlarging, 5 and 7 when shrinking up to 3x) unrolled.
#[inline(always)]
fn resample_rows(
    rows: impl Iterator<Item = (usize, usize)>,
    data: &[f32],
    len: usize,
    windows: &(Vec<usize>, Vec<f32>, usize),
    out: &mut [f32],
    out_len: usize,
) {
    let (starts, weights, width) = windows;
    for (src, dst) in rows {
        let (row, o) = (&data[src..src + len], &mut out[dst..dst + out_len]);
        match *width {
            3 => resample_row::<3>(row, starts, weights, o),
            5 => resample_row::<5>(row, starts, weights, o),
            7 => resample_row::<7>(row, starts, weights, o),
            n => {
                for ((o, &start), w) in o.iter_mut().zip(starts).zip(weights.chunks_exact(n)) {
                    *o = w.iter().zip(&row[start..start + n]).map(|(a, b)| a * b).sum();
                }
            }
        }
    }
}

/// A box of a `[C, H, W]` image: rows `top..top + height`, columns
/// `left..left + width`, inside the image.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

pixels::vectorised! {
    /// Resizes `region` of the contiguous `[C, H, W]` values `data` into
    /// `out`, `[C, out_h, out_w]` zeros, through `wide`, which holds the
    /// width-resampled rows.
    fn resize / resize_portable(
        data: &[f32],
        dims: (usize, usize, usize),
        region: Region,
        wide: &mut Vec<f32>,
        out: &mut [f32],
        out_h: usize,
        out_w: usize,
    ) {
        let (c, h, w) = dims;
        let (cols, rows) = (Taps::new(region.width, out_w), Taps::new(region.height, out_h));
        // Width first: [C, region.height, out_w].
        wide.clear();
        wide.resize(c * region.height * out_w, 0.0);
        let rows_in = (0..c).flat_map(|ch| {
            (0..region.height).map(move |y| {
                let src = ch * h * w + (region.top + y) * w + region.left;
                (src, (ch * region.height + y) * out_w)
            })
        });
        resample_rows(rows_in, data, region.width, &cols.windows(region.width), wide, out_w);
        // Then the height, a weighted sum of whole rows.
        for ch in 0..c {
            for y in 0..out_h {
                let (start, weights) = rows.of(y);
                let dst = &mut out[(ch * out_h + y) * out_w..][..out_w];
                for (k, &wk) in weights.iter().enumerate() {
                    let src = &wide[(ch * region.height + start + k) * out_w..][..out_w];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += wk * s;
                    }
                }
            }
        }
    }
}

thread_local! {
    /// Each thread's buffer for [`resize`]'s width-resampled rows (a fresh
    /// one would page-fault in on every view).
    static WIDE: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The antialiased resize of `region` of a CPU float `[C, H, W]` image to
/// `out_h x out_w`, or `None` when `image` is not a CPU float tensor (the
/// caller then takes libtorch's path).
pub(crate) fn resize_region(image: &Tensor, region: Region, out_h: i64, out_w: i64) -> Result<Option<Tensor>> {
    if !pixels::is_cpu_float(image) || image.dim() != 3 {
        return Ok(None);
    }
    let size = image.size();
    let dims = (size[0] as usize, size[1] as usize, size[2] as usize);
    let (oh, ow) = (out_h as usize, out_w as usize);
    let out = pixels::with_values(image, |data| {
        let mut wide = WIDE.take();
        let out = pixels::filled(&[size[0], out_h, out_w], |out| {
            resize(data, dims, region, &mut wide, out, oh, ow)
        });
        WIDE.set(wide);
        out
    })??;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::geometry::{crop_pad, resize_image};
    use crate::rng::Rng;
    use tch::Kind;

    #[test]
    fn the_rust_resize_matches_libtorch_antialiased_bilinear() {
        let mut rng = Rng::new(&[5]);
        // (channels, image h, w, box top, left, height, width, output h, w):
        // downscaling by integer and fractional factors, upscaling, one axis
        // unchanged, a 1-pixel box, a box at the far corner.
        let cases = [
            (3, 250, 250, 0, 0, 250, 250, 112, 112),
            (3, 250, 250, 17, 40, 151, 97, 112, 112),
            (3, 250, 250, 200, 210, 50, 40, 112, 112),
            (1, 64, 48, 3, 5, 60, 43, 17, 29),
            (3, 40, 40, 0, 0, 40, 40, 40, 13),
            (2, 30, 30, 29, 29, 1, 1, 4, 4),
            (3, 90, 70, 10, 0, 80, 70, 224, 224),
        ];
        for (c, h, w, top, left, bh, bw, oh, ow) in cases {
            let pixels: Vec<f32> = (0..c * h * w).map(|_| rng.uniform() as f32).collect();
            let image = Tensor::from_slice(&pixels).view([c, h, w]);
            let region = Region {
                top: top as usize,
                left: left as usize,
                height: bh as usize,
                width: bw as usize,
            };
            let ours = resize_region(&image, region, oh, ow).unwrap().unwrap();
            let torch = resize_image(&crop_pad(&image, top, left, bh, bw).unwrap(), oh, ow, true).unwrap();
            assert_eq!(ours.size(), torch.size());
            let diff = (&ours - &torch).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "case {:?}: {diff}", (c, h, w, top, left, bh, bw, oh, ow));
        }
        // The AVX2 build of the kernel gives the portable build's bits.
        let pixels: Vec<f32> = (0..3 * 50 * 40).map(|_| rng.uniform() as f32).collect();
        let region = Region {
            top: 3,
            left: 2,
            height: 41,
            width: 37,
        };
        let (mut a, mut b) = (vec![0f32; 3 * 23 * 29], vec![0f32; 3 * 23 * 29]);
        resize(&pixels, (3, 50, 40), region, &mut Vec::new(), &mut a, 23, 29);
        resize_portable(&pixels, (3, 50, 40), region, &mut Vec::new(), &mut b, 23, 29);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        // Not a CPU float image: the caller takes libtorch's path.
        let double = Tensor::zeros([3, 8, 8], (Kind::Double, tch::Device::Cpu));
        let whole = Region {
            top: 0,
            left: 0,
            height: 8,
            width: 8,
        };
        assert!(resize_region(&double, whole, 4, 4).unwrap().is_none());
    }
}
