//! Per-pixel rendering of a posed face: each pixel's ray finds the nearest
//! surface (so a turned face hides its far side), its LaPa class is decided
//! there, and the pixel is shaded from that class. Occluders, blur and noise
//! come last. Landmarks are projected and tested for visibility with the
//! same rays.

use visage_core::rng::Rng;

use crate::face_model::{FaceModel, Part};
use crate::math::mul_mv;
use crate::nuisance::{self, Nuisance};
use crate::pose::Camera;
use crate::render::{Face, Scene};
use crate::shading;

/// Pixels per face unit at scale 1, as a fraction of the image side.
pub const BASE_SCALE: f64 = 0.4;
/// Where the head's centre sits at zero offset, as fractions of the side.
pub const BASE_CENTRE: [f64; 2] = [0.5, 0.42];
/// A landmark is visible when the first surface on its ray is no more than
/// this far (face units) in front of it.
const VISIBILITY_TOLERANCE: f64 = 1e-4;
/// ... and, for the inner points (brows, nose, eyes, lips: 17..=67), its
/// surface faces the camera: the normal is less than about 72 degrees from
/// the view direction (cos = 0.3). Such points at a grazing angle sit on the
/// silhouette, where their region is thinner than a pixel. Jaw points are
/// contour points by definition and only need to be unhidden.
const MIN_FACING: f64 = 0.3;

/// The camera that views `scene` in a `side`-pixel image.
pub fn camera(scene: &Scene, side: usize) -> Camera {
    let s = side as f64;
    let n = &scene.nuisance;
    Camera::new(
        &scene.pose,
        BASE_SCALE * s * n.scale,
        [s * (BASE_CENTRE[0] + n.offset[0]), s * (BASE_CENTRE[1] + n.offset[1])],
    )
}

/// Renders `scene` as a `side` x `side` image with its labels.
pub fn draw(scene: &Scene, side: usize, noise_rng: &mut Rng) -> Face {
    let model = FaceModel::new(&scene.identity, &scene.expression.intensity, scene.gaze);
    let cam = camera(scene, side);
    let n = &scene.nuisance;
    let plane = side * side;
    let mut image = vec![0f32; 3 * plane];
    let mut parsing = vec![0u8; plane];
    let reach = model.bound * cam.scale;
    let background = n.background.fill(side);
    for i in 0..side {
        for j in 0..side {
            let px = [j as f64 + 0.5, i as f64 + 0.5];
            let frac = [px[0] / side as f64, px[1] / side as f64];
            let (dx, dy) = (px[0] - cam.centre[0], px[1] - cam.centre[1]);
            let hit = if dx * dx + dy * dy <= reach * reach {
                let (o, d) = cam.ray(px);
                model.cast(o, d, true)
            } else {
                None
            };
            let (class, colour) = match hit {
                Some(hit) => {
                    let part = model.part(&hit);
                    let normal = mul_mv(&cam.rotation, hit.normal);
                    (
                        part.class(),
                        shading::shade(&part, &scene.identity.colours, hit.point, normal, n),
                    )
                }
                None => (Part::Background.class(), background[i * side + j]),
            };
            let (class, colour) = match &n.occluder {
                Some(occ) if occ.covers(frac) => (0, occ.colour_at(frac)),
                _ => (class, colour),
            };
            parsing[i * side + j] = class;
            for c in 0..3 {
                image[c * plane + i * side + j] = colour[c] as f32;
            }
        }
    }
    nuisance::blur(&mut image, side, n.blur * side as f64);
    nuisance::add_noise(&mut image, n.noise, noise_rng);
    let (landmarks, visible) = landmarks(&model, &cam, n, side);
    Face {
        side,
        image,
        parsing,
        landmarks,
        visible,
        identity: scene.identity.index,
        expression: scene.expression.class,
        au_intensity: scene.expression.intensity,
        pose: scene.pose,
    }
}

/// Projected landmarks and their visibility: inside the image, not hidden
/// by another surface (self-occlusion, hair), not at a grazing angle and
/// not under an occluder.
fn landmarks(model: &FaceModel, cam: &Camera, n: &Nuisance, side: usize) -> ([[f32; 2]; 68], [bool; 68]) {
    let mut points = [[0f32; 2]; 68];
    let mut visible = [false; 68];
    let s = side as f64;
    for (i, p) in model.landmarks.iter().enumerate() {
        let (px, depth) = cam.project(*p);
        points[i] = [px[0] as f32, px[1] as f32];
        let inside = px[0] >= 0.0 && px[0] < s && px[1] >= 0.0 && px[1] < s;
        let occluded = n.occluder.as_ref().is_some_and(|o| o.covers([px[0] / s, px[1] / s]));
        let (o, d) = cam.ray(px);
        let unhidden = model.cast(o, d, true).is_some_and(|hit| {
            let facing = i < 17 || mul_mv(&cam.rotation, hit.normal)[2] > MIN_FACING;
            Camera::depth(hit.t) <= depth + VISIBILITY_TOLERANCE && facing
        });
        visible[i] = inside && !occluded && unhidden;
    }
    (points, visible)
}
