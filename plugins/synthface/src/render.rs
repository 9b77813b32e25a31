//! The renderer's public entry points: a [`Scene`] (what to draw), drawn
//! into a [`Face`] (image and labels), and [`render`], the dataset's pure
//! function of `(params, seed, split, index)`. Exporters can call these
//! directly; nothing here uses tch.

use visage_core::dataset::Split;
use visage_core::rng::Rng;
use visage_core::{Error, Result};

use crate::action_units::{self, COUNT};
use crate::expression::Expression;
use crate::identity::Identity;
use crate::math::P2;
use crate::nuisance::Nuisance;
use crate::params::SynthFaceParams;
use crate::pose::Pose;
use crate::raster;

/// Stream tags of the per-sample generators.
const SAMPLE_STREAM: u64 = 0x5A_3D_1E;
const NOISE_STREAM: u64 = 0x7E_0153;

/// Everything that determines one picture.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Who.
    pub identity: Identity,
    /// Expression class and action-unit intensities.
    pub expression: Expression,
    /// Head pose.
    pub pose: Pose,
    /// Gaze of both eyes, each coordinate in -1..1.
    pub gaze: P2,
    /// Nuisance factors.
    pub nuisance: Nuisance,
}

/// A rendered face and its labels.
#[derive(Debug, Clone)]
pub struct Face {
    /// Image side in pixels.
    pub side: usize,
    /// RGB image, channels first `[3, side, side]`, values in 0..1.
    pub image: Vec<f32>,
    /// LaPa class per pixel, row-major `[side, side]`.
    pub parsing: Vec<u8>,
    /// iBUG-68 landmarks `(x, y)` in pixels (pixel `(i, j)` covers
    /// `[j, j+1) x [i, i+1)`).
    pub landmarks: [[f32; 2]; 68],
    /// Whether each landmark is visible.
    pub visible: [bool; 68],
    /// Identity index.
    pub identity: usize,
    /// Expression class.
    pub expression: usize,
    /// Action-unit intensities (0..1); [`Face::au`] gives the 0/1 labels.
    pub au_intensity: [f64; COUNT],
    /// Head pose in degrees.
    pub pose: Pose,
}

impl Face {
    /// The 0/1 action-unit labels.
    pub fn au(&self) -> [f32; COUNT] {
        action_units::occurrence(&self.au_intensity)
    }

    /// The image as interleaved 8-bit RGB, row-major `[side, side, 3]`, for
    /// exporters.
    pub fn rgb8(&self) -> Vec<u8> {
        let plane = self.side * self.side;
        let mut out = Vec::with_capacity(3 * plane);
        for p in 0..plane {
            for c in 0..3 {
                out.push((self.image[c * plane + p] * 255.0).round().clamp(0.0, 255.0) as u8);
            }
        }
        out
    }
}

/// Sample `sample` of identity `identity`: its expression, pose, gaze and
/// nuisance, all drawn from `(seed, identity, sample)`.
pub fn sample_scene(params: &SynthFaceParams, seed: u64, identity: usize, sample: usize) -> Scene {
    let mut rng = Rng::new(&[seed, SAMPLE_STREAM, identity as u64, sample as u64]);
    let expression = Expression::sample(&mut rng, &params.expression);
    let pose = Pose::sample(&mut rng, &params.pose);
    let gaze = [rng.range(-1.0, 1.0), rng.range(-1.0, 1.0)];
    let nuisance = Nuisance::sample(&mut rng, &params.nuisance);
    Scene {
        identity: Identity::new(seed, identity),
        expression,
        pose,
        gaze,
        nuisance,
    }
}

/// Draws `scene` at `params.resolution`; `seed` and `sample` seed the pixel
/// noise.
pub fn draw_scene(scene: &Scene, side: usize, seed: u64, sample: usize) -> Face {
    let mut noise = Rng::new(&[seed, NOISE_STREAM, scene.identity.index as u64, sample as u64]);
    raster::draw(scene, side, &mut noise)
}

/// Number of samples in `split`.
pub fn split_len(params: &SynthFaceParams, split: Split) -> usize {
    params.split_identities(split).len() * params.samples_per_identity
}

/// The identity of sample `index` of `split` (see [`render`]).
pub fn identity_of(params: &SynthFaceParams, split: Split, index: usize) -> usize {
    params.split_identities(split).start + index / params.samples_per_identity
}

/// Sample `index` of `split`: identity `first + index / samples_per_identity`
/// of the split's identities, its `index % samples_per_identity`-th sample.
/// A pure function of its arguments.
pub fn render(params: &SynthFaceParams, seed: u64, split: Split, index: usize) -> Result<Face> {
    params.validate()?;
    let len = split_len(params, split);
    if index >= len {
        return Err(Error::msg(format!(
            "synthface: index {index} is out of range for the {split:?} split of {len} samples"
        )));
    }
    let identity = identity_of(params, split, index);
    let sample = index % params.samples_per_identity;
    let scene = sample_scene(params, seed, identity, sample);
    Ok(draw_scene(&scene, params.resolution, seed, sample))
}
