//! Nuisance factors: background texture, lighting, blur, noise, scale and
//! translation jitter, occluders. All are drawn from the sample's own
//! generator, independently of identity, expression and pose, so none
//! of them carries a label.

use visage_core::rng::Rng;

use crate::math::{exp, normalize, sin, P2, V3};
use crate::params::NuisanceParams;

/// One sample's nuisance draws. Positions and sizes are fractions of the
/// image side.
#[derive(Debug, Clone)]
pub struct Nuisance {
    /// Unit direction towards the light, camera frame.
    pub light: V3,
    /// Ambient light level in 0..1.
    pub ambient: f64,
    /// Per-channel gain applied to the lit face.
    pub gain: V3,
    /// Multiplier of the face's size.
    pub scale: f64,
    /// Offset of the head's centre.
    pub offset: P2,
    /// The background.
    pub background: Background,
    /// Blur sigma, fraction of the side (0: none).
    pub blur: f64,
    /// Noise std (0: none).
    pub noise: f64,
    /// An occluder in front of everything, if any.
    pub occluder: Option<Occluder>,
}

/// A background: flat, or a few coloured gratings and blobs.
#[derive(Debug, Clone)]
pub enum Background {
    /// One colour.
    Flat(V3),
    /// Base colour plus gratings `(direction * frequency, phase, colour)`
    /// and disks `(centre, radius, colour)`.
    Texture {
        /// Base colour.
        base: V3,
        /// Sinusoidal gratings.
        waves: Vec<(P2, f64, V3)>,
        /// Soft disks.
        blobs: Vec<(P2, f64, V3)>,
    },
}

/// A hand or a bar in front of the face.
#[derive(Debug, Clone)]
pub struct Occluder {
    /// Capsules `(start, end, radius)` and ellipses `(centre, radius)`
    /// that make the shape.
    capsules: Vec<(P2, P2, f64)>,
    disks: Vec<(P2, f64)>,
    /// Flat colour, shaded by a gentle gradient.
    pub colour: V3,
}

/// The flat background grey used when `background` is off.
pub const FLAT_GREY: V3 = [0.5, 0.5, 0.5];

fn colour(rng: &mut Rng) -> V3 {
    [rng.uniform(), rng.uniform(), rng.uniform()]
}

impl Nuisance {
    /// No nuisance: fixed light, centred, flat grey, sharp, clean.
    pub fn none() -> Nuisance {
        Nuisance {
            light: normalize([0.0, 0.25, 1.0]),
            ambient: 0.45,
            gain: [1.0; 3],
            scale: 1.0,
            offset: [0.0, 0.0],
            background: Background::Flat(FLAT_GREY),
            blur: 0.0,
            noise: 0.0,
            occluder: None,
        }
    }

    /// Draws the factors that `params` switches on.
    pub fn sample(rng: &mut Rng, params: &NuisanceParams) -> Nuisance {
        let mut n = Nuisance::none();
        if params.lighting {
            n.light = normalize([rng.range(-0.8, 0.8), rng.range(-0.5, 0.8), 1.0]);
            n.ambient = rng.range(0.3, 0.6);
            let level = rng.range(0.8, 1.1);
            n.gain = [0, 1, 2].map(|_| level * rng.range(0.95, 1.05));
        }
        if params.jitter {
            n.scale = rng.range(1.0 - params.scale_jitter, 1.0 + params.scale_jitter);
            let t = params.translation_jitter;
            n.offset = [rng.range(-t, t), rng.range(-t, t)];
        }
        if params.background {
            n.background = Background::sample(rng);
        }
        if params.blur {
            n.blur = rng.range(0.0, params.max_blur);
        }
        if params.noise {
            n.noise = rng.range(0.0, params.noise_std);
        }
        if params.occluders && rng.uniform() < params.occluder_probability {
            n.occluder = Some(Occluder::sample(rng, [0.5 + n.offset[0], 0.5 + n.offset[1]]));
        }
        n
    }
}

impl Background {
    fn sample(rng: &mut Rng) -> Background {
        let base = colour(rng).map(|v| 0.1 + 0.8 * v);
        let waves = (0..3)
            .map(|_| {
                let angle = rng.range(0.0, std::f64::consts::TAU);
                let freq = rng.range(1.0, 12.0) * std::f64::consts::TAU;
                let (s, c) = crate::math::sin_cos(angle);
                let amp = rng.range(0.03, 0.2);
                (
                    [c * freq, s * freq],
                    rng.range(0.0, 6.3),
                    colour(rng).map(|v| (v - 0.5) * 2.0 * amp),
                )
            })
            .collect();
        let blobs = (0..(rng.next_u64() % 4) as usize)
            .map(|_| ([rng.uniform(), rng.uniform()], rng.range(0.05, 0.3), colour(rng)))
            .collect();
        Background::Texture { base, waves, blobs }
    }

    /// The colour at `(x, y)` (fractions of the side).
    pub fn colour(&self, x: f64, y: f64) -> V3 {
        match self {
            Background::Flat(c) => *c,
            Background::Texture { waves, .. } => {
                let s: Vec<f64> = waves
                    .iter()
                    .map(|(k, phase, _)| sin(k[0] * x + k[1] * y + phase))
                    .collect();
                self.colour_with(&s, x, y)
            }
        }
    }

    /// Fills a `side` x `side` row-major image of background colours; the
    /// gratings are evaluated separably, as `sin(a + b)` from the sines and
    /// cosines of the row and column terms.
    pub fn fill(&self, side: usize) -> Vec<V3> {
        let coord = |k: usize| (k as f64 + 0.5) / side as f64;
        let Background::Texture { waves, .. } = self else {
            return (0..side * side)
                .map(|p| self.colour(coord(p % side), coord(p / side)))
                .collect();
        };
        let cols: Vec<Vec<(f64, f64)>> = waves
            .iter()
            .map(|(k, _, _)| (0..side).map(|j| crate::math::sin_cos(k[0] * coord(j))).collect())
            .collect();
        let rows: Vec<Vec<(f64, f64)>> = waves
            .iter()
            .map(|(k, phase, _)| {
                (0..side)
                    .map(|i| crate::math::sin_cos(k[1] * coord(i) + phase))
                    .collect()
            })
            .collect();
        let mut out = Vec::with_capacity(side * side);
        let mut s = vec![0.0; waves.len()];
        for i in 0..side {
            for j in 0..side {
                for ((value, col), row) in s.iter_mut().zip(&cols).zip(&rows) {
                    let ((sa, ca), (sb, cb)) = (col[j], row[i]);
                    *value = sa * cb + ca * sb;
                }
                out.push(self.colour_with(&s, coord(j), coord(i)));
            }
        }
        out
    }

    fn colour_with(&self, sines: &[f64], x: f64, y: f64) -> V3 {
        match self {
            Background::Flat(c) => *c,
            Background::Texture { base, waves, blobs } => {
                let mut out = *base;
                for ((_, _, amp), s) in waves.iter().zip(sines) {
                    for ch in 0..3 {
                        out[ch] += amp[ch] * s;
                    }
                }
                for (c, r, col) in blobs {
                    let d2 = ((x - c[0]) * (x - c[0]) + (y - c[1]) * (y - c[1])) / (r * r);
                    if d2 < 1.0 {
                        let w = 1.0 - d2;
                        for ch in 0..3 {
                            out[ch] += (col[ch] - out[ch]) * w;
                        }
                    }
                }
                out.map(|v| v.clamp(0.0, 1.0))
            }
        }
    }
}

impl Occluder {
    /// A hand or a bar near `centre`.
    fn sample(rng: &mut Rng, centre: P2) -> Occluder {
        let at = [centre[0] + rng.range(-0.2, 0.2), centre[1] + rng.range(-0.15, 0.25)];
        let (s, c) = crate::math::sin_cos(rng.range(0.0, std::f64::consts::TAU));
        if rng.uniform() < 0.5 {
            let half = rng.range(0.04, 0.08);
            Occluder {
                capsules: vec![([at[0] - c, at[1] - s], [at[0] + c, at[1] + s], half)],
                disks: vec![],
                colour: colour(rng),
            }
        } else {
            // A hand: a palm and four fingers pointing along (c, s).
            let palm = rng.range(0.08, 0.12);
            let finger = palm * 0.24;
            let length = palm * rng.range(1.3, 1.8);
            let capsules = (0..4)
                .map(|k| {
                    let side = (k as f64 - 1.5) * finger * 2.1;
                    let base = [at[0] + c * palm * 0.5 - s * side, at[1] + s * palm * 0.5 + c * side];
                    let tip = [base[0] + c * length, base[1] + s * length];
                    (base, tip, finger)
                })
                .collect();
            let tone = rng.range(0.0, 1.0);
            let skin = [0.93 - 0.5 * tone, 0.76 - 0.5 * tone, 0.65 - 0.47 * tone];
            Occluder {
                capsules,
                disks: vec![(at, palm)],
                colour: skin,
            }
        }
    }

    /// Whether the occluder covers `(x, y)` (fractions of the side).
    pub fn covers(&self, p: P2) -> bool {
        self.disks
            .iter()
            .any(|(c, r)| (p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) < r * r)
            || self
                .capsules
                .iter()
                .any(|(a, b, r)| crate::math::segment_distance(p, *a, *b) < *r)
    }

    /// Its colour at `(x, y)`: flat, darker towards the bottom.
    pub fn colour_at(&self, p: P2) -> V3 {
        let k = 1.0 - 0.25 * p[1].clamp(0.0, 1.0);
        self.colour.map(|v| v * k)
    }
}

/// Separable Gaussian blur of a `[3, side, side]` image in place, sigma in
/// pixels; borders are clamped. Sums run in a fixed order.
pub fn blur(image: &mut [f32], side: usize, sigma: f64) {
    if sigma < 0.2 {
        return;
    }
    let radius = (3.0 * sigma).ceil() as usize;
    let kernel: Vec<f64> = (0..=2 * radius)
        .map(|k| {
            let d = k as f64 - radius as f64;
            exp(-d * d / (2.0 * sigma * sigma))
        })
        .collect();
    let total: f64 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| (k / total) as f32).collect();
    let mut padded = vec![0f32; side + 2 * radius];
    let mut column = vec![0f32; side];
    for plane in image.chunks_mut(side * side) {
        for row in plane.chunks_mut(side) {
            convolve_line(row, &mut padded, &kernel, radius);
        }
        for x in 0..side {
            for (y, v) in column.iter_mut().enumerate() {
                *v = plane[y * side + x];
            }
            convolve_line(&mut column, &mut padded, &kernel, radius);
            for (y, v) in column.iter().enumerate() {
                plane[y * side + x] = *v;
            }
        }
    }
}

/// Convolves `line` in place with `kernel` (length `2 radius + 1`),
/// clamping at the ends, using `padded` as scratch.
fn convolve_line(line: &mut [f32], padded: &mut [f32], kernel: &[f32], radius: usize) {
    let n = line.len();
    for (k, p) in padded.iter_mut().enumerate() {
        *p = line[k.saturating_sub(radius).min(n - 1)];
    }
    for (x, out) in line.iter_mut().enumerate() {
        let window = &padded[x..x + kernel.len()];
        let mut acc = 0f32;
        for (w, v) in kernel.iter().zip(window) {
            acc += w * v;
        }
        *out = acc;
    }
}

/// Adds zero-mean noise of std `std` (a scaled sum of four uniforms, so no
/// transcendental functions) from `rng`, and clamps to 0..1.
pub fn add_noise(image: &mut [f32], std: f64, rng: &mut Rng) {
    if std <= 0.0 {
        return;
    }
    // The sum of 4 uniforms has variance 4/12; each draw gives four 16-bit
    // uniforms.
    let k = std * 3f64.sqrt();
    for v in image.iter_mut() {
        let bits = rng.next_u64();
        let sum: u64 = (0..4).map(|q| (bits >> (16 * q)) & 0xFFFF).sum();
        let n = (sum as f64 + 2.0) / 65536.0 - 2.0;
        *v = (*v as f64 + k * n).clamp(0.0, 1.0) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_the_mean_and_smooths() {
        let side = 16;
        let mut image = vec![0f32; 3 * side * side];
        image[8 * side + 8] = 1.0;
        blur(&mut image, side, 1.5);
        let sum: f32 = image[..side * side].iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        assert!(image[8 * side + 8] < 0.2 && image[8 * side + 9] > 0.01);
    }

    #[test]
    fn noise_has_the_requested_spread() {
        let mut image = vec![0.5f32; 20000];
        add_noise(&mut image, 0.05, &mut Rng::new(&[9]));
        let mean = image.iter().map(|&v| v as f64).sum::<f64>() / 20000.0;
        let var = image.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 20000.0;
        assert!(
            (mean - 0.5).abs() < 0.002 && (var.sqrt() - 0.05).abs() < 0.003,
            "{mean} {var}"
        );
    }
}
