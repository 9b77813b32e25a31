//! Head pose and the orthographic camera.
//!
//! Model frame: `x` to the image's right for a frontal face, `y` up, `z`
//! out of the face towards the camera; the head's centre is the origin.
//! The camera frame has the same axes; the head's rotation is
//! `R = Rz(roll) Rx(pitch) Ry(yaw)` as `visage_core::labels` defines it:
//! positive yaw turns the nose towards `+x`, positive pitch raises it
//! (image `-y`), positive roll turns the face counter-clockwise on screen.
//! A camera-frame point `(x, y, z)` lands at pixel coordinates
//! `(cx + s x, cy - s y)` with depth `z` (larger is nearer).

use visage_core::rng::Rng;

use crate::math::{mul_mm, mul_mv, radians, sin_cos, transpose, M3, V3};
use crate::params::PoseParams;

/// Yaw, pitch and roll in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Degrees; positive turns the nose towards the image's right.
    pub yaw: f64,
    /// Degrees; positive raises the nose.
    pub pitch: f64,
    /// Degrees; positive turns the face counter-clockwise on screen.
    pub roll: f64,
}

impl Pose {
    /// A frontal pose.
    pub const FRONTAL: Pose = Pose {
        yaw: 0.0,
        pitch: 0.0,
        roll: 0.0,
    };

    /// Draws each angle uniformly in its range.
    pub fn sample(rng: &mut Rng, params: &PoseParams) -> Pose {
        Pose {
            yaw: rng.range(-params.max_yaw, params.max_yaw),
            pitch: rng.range(-params.max_pitch, params.max_pitch),
            roll: rng.range(-params.max_roll, params.max_roll),
        }
    }

    /// The rotation `Rz(roll) Rx(pitch) Ry(yaw)` from model to camera frame.
    pub fn rotation(&self) -> M3 {
        let (sy, cy) = sin_cos(radians(self.yaw));
        let (sp, cp) = sin_cos(radians(self.pitch));
        let (sr, cr) = sin_cos(radians(self.roll));
        // Yaw about +y: the nose (0, 0, 1) goes to (sin, 0, cos).
        let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        // Pitch about x: the nose goes to (0, sin, cos), i.e. up.
        let rx = [[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]];
        // Roll about the optical axis, counter-clockwise with y up.
        let rz = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        mul_mm(&rz, &mul_mm(&rx, &ry))
    }
}

/// An orthographic camera looking at a posed head.
#[derive(Debug, Clone, Copy)]
pub struct Camera {
    /// Model to camera rotation.
    pub rotation: M3,
    /// Its inverse.
    pub inverse: M3,
    /// Pixels per face unit.
    pub scale: f64,
    /// Pixel coordinates of the head's centre.
    pub centre: [f64; 2],
}

/// Where rays start, in face units in front of the head.
const RAY_START: f64 = 100.0;

impl Camera {
    /// A camera for `pose`, `scale` pixels per face unit and the head's
    /// centre at pixel coordinates `centre`.
    pub fn new(pose: &Pose, scale: f64, centre: [f64; 2]) -> Camera {
        let rotation = pose.rotation();
        Camera {
            rotation,
            inverse: transpose(&rotation),
            scale,
            centre,
        }
    }

    /// Pixel coordinates `(x, y)` and depth of model point `p`.
    pub fn project(&self, p: V3) -> ([f64; 2], f64) {
        let q = mul_mv(&self.rotation, p);
        (
            [self.centre[0] + self.scale * q[0], self.centre[1] - self.scale * q[1]],
            q[2],
        )
    }

    /// The model-frame ray (origin, direction) through pixel coordinates
    /// `(x, y)`, and the depth of its origin.
    pub fn ray(&self, pixel: [f64; 2]) -> (V3, V3) {
        let q = [
            (pixel[0] - self.centre[0]) / self.scale,
            (self.centre[1] - pixel[1]) / self.scale,
            RAY_START,
        ];
        (mul_mv(&self.inverse, q), mul_mv(&self.inverse, [0.0, 0.0, -1.0]))
    }

    /// The depth of the point at parameter `t` along a ray from [`Camera::ray`].
    pub fn depth(t: f64) -> f64 {
        RAY_START - t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(yaw: f64, pitch: f64, roll: f64) -> Camera {
        Camera::new(&Pose { yaw, pitch, roll }, 10.0, [50.0, 50.0])
    }

    #[test]
    fn rotations_follow_the_label_conventions() {
        let nose = [0.0, 0.0, 1.0];
        // +yaw: the nose goes to the image's right.
        assert!(camera(30.0, 0.0, 0.0).project(nose).0[0] > 52.0);
        assert!(camera(-30.0, 0.0, 0.0).project(nose).0[0] < 48.0);
        // +pitch: the nose goes up (smaller image y).
        assert!(camera(0.0, 30.0, 0.0).project(nose).0[1] < 48.0);
        // +roll: counter-clockwise on screen, so a point on the image's
        // right rises.
        let right = [1.0, 0.0, 0.0];
        let p = camera(0.0, 0.0, 30.0).project(right).0;
        assert!(p[0] > 50.0 && p[1] < 46.0, "{p:?}");
        // Roll last: with yaw, roll still turns the nose about the optical axis.
        let a = camera(40.0, 0.0, 0.0).project(nose).0;
        let b = camera(40.0, 0.0, 90.0).project(nose).0;
        assert!(
            (b[0] - 50.0).abs() < 1e-9 && (b[1] - (50.0 - (a[0] - 50.0))).abs() < 1e-9,
            "{a:?} {b:?}"
        );
    }

    #[test]
    fn rays_pass_through_their_pixel() {
        let cam = camera(20.0, -10.0, 15.0);
        let (o, d) = cam.ray([31.5, 62.25]);
        let p = [o[0] + 97.0 * d[0], o[1] + 97.0 * d[1], o[2] + 97.0 * d[2]];
        let (px, depth) = cam.project(p);
        assert!((px[0] - 31.5).abs() < 1e-9 && (px[1] - 62.25).abs() < 1e-9);
        assert!((depth - Camera::depth(97.0)).abs() < 1e-9);
    }
}
