//! The 3-D parametric face: surfaces (head, nose, hair), the 68 iBUG
//! landmarks on them, and the feature regions drawn from the landmarks.
//!
//! The head is two half-ellipsoids joined at the centre's height (the
//! lower one's height is the chin's, which AU17 and AU26 change), the nose
//! a tilted ellipsoid, the hair a slightly larger cap clipped by a hairline
//! plus, for long hair, a curtain behind the head. Landmarks are given as
//! frontal `(x, y)` positions and lifted onto the head or nose surface;
//! eyes, brows and lips are regions of the head surface bounded by smooth
//! curves through those landmarks, so the drawn regions follow the
//! landmarks exactly.

use crate::action_units::{self, AU9, COUNT};
use crate::furrows::Furrows;
use crate::identity::{HairStyle, HeadSize, Identity, NoseSize};
use crate::math::{
    add, dot, lerp2, mul_mv, normalize, smooth_closed, smooth_open, sub, transpose, Polygon, M3, P2, V3,
};

/// An ellipsoid `centre + R diag(axes) u` for unit vectors `u`.
#[derive(Debug, Clone, Copy)]
pub struct Ellipsoid {
    centre: V3,
    axes: V3,
    /// Local to model rotation (columns are the local axes).
    rotation: M3,
    /// Its inverse.
    inverse: M3,
}

impl Ellipsoid {
    fn new(centre: V3, axes: V3, rotation: M3) -> Self {
        Ellipsoid {
            centre,
            axes,
            rotation,
            inverse: transpose(&rotation),
        }
    }

    fn aligned(centre: V3, axes: V3) -> Self {
        Ellipsoid::new(centre, axes, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    }

    /// Normalised local coordinates of `p` (on the surface: unit length).
    fn local(&self, p: V3) -> V3 {
        let q = mul_mv(&self.inverse, sub(p, self.centre));
        [q[0] / self.axes[0], q[1] / self.axes[1], q[2] / self.axes[2]]
    }

    /// The ray parameter where `o + t d` enters the ellipsoid, if it does.
    fn entry(&self, o: V3, d: V3) -> Option<f64> {
        let lo = self.local(o);
        let dd = mul_mv(&self.inverse, d);
        let ld = [dd[0] / self.axes[0], dd[1] / self.axes[1], dd[2] / self.axes[2]];
        let (a, b, c) = (dot(ld, ld), 2.0 * dot(lo, ld), dot(lo, lo) - 1.0);
        let disc = b * b - 4.0 * a * c;
        if disc < 0.0 || a == 0.0 {
            return None;
        }
        let t = (-b - disc.sqrt()) / (2.0 * a);
        (t >= 0.0).then_some(t)
    }

    /// Outward unit normal at surface point `p`.
    fn normal(&self, p: V3) -> V3 {
        let q = self.local(p);
        let n = [q[0] / self.axes[0], q[1] / self.axes[1], q[2] / self.axes[2]];
        normalize(mul_mv(&self.rotation, n))
    }

    /// The surface point furthest along unit direction `u`.
    fn support(&self, u: V3) -> V3 {
        let m = mul_mv(&self.inverse, u);
        let m = [m[0] * self.axes[0], m[1] * self.axes[1], m[2] * self.axes[2]];
        let len = dot(m, m).sqrt();
        let local = [
            m[0] * self.axes[0] / len,
            m[1] * self.axes[1] / len,
            m[2] * self.axes[2] / len,
        ];
        add(self.centre, mul_mv(&self.rotation, local))
    }
}

/// Which surface a ray hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The head (skin and the regions drawn on it).
    Head,
    /// The nose.
    Nose,
    /// The hair cap or the long-hair curtain.
    Hair,
}

/// A ray's first hit.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Ray parameter.
    pub t: f64,
    /// Model-frame point.
    pub point: V3,
    /// Model-frame outward normal.
    pub normal: V3,
    /// The surface.
    pub surface: Surface,
}

/// Where hair grows, in an ellipsoid's normalised coordinates `q`: above
/// the hairline `q.y > hairline - drop q.x^2`, or behind `q.z < side_z`
/// and above the nape `q.y > nape`.
#[derive(Debug, Clone, Copy)]
struct HairRule {
    hairline: f64,
    drop: f64,
    side_z: f64,
    nape: f64,
}

impl HairRule {
    fn covers(&self, q: V3) -> bool {
        q[1] > self.hairline - self.drop * q[0] * q[0] || (q[2] < self.side_z && q[1] > self.nape)
    }
}

/// What a pixel shows: a LaPa class and, within it, the tissue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Part {
    /// Background (also occluders).
    Background,
    /// Face skin, darkened by `shade` (AU furrows, `furrows`) in 0..1.
    Skin {
        /// Multiplier of the skin colour.
        shade: f64,
    },
    /// A brow; `left` is the image's left for a frontal face.
    Brow {
        /// Image-left brow (class 2), else class 3.
        left: bool,
    },
    /// An eye.
    Eye {
        /// Image-left eye (class 4), else class 5.
        left: bool,
        /// Sclera, iris or pupil.
        tissue: EyeTissue,
    },
    /// The nose, darkened by `shade` (nostrils, AU9 wrinkles) in 0..1.
    Nose {
        /// Multiplier of the nose colour.
        shade: f64,
    },
    /// Upper lip.
    UpperLip,
    /// Inside the mouth.
    InnerMouth {
        /// Upper teeth.
        teeth: bool,
    },
    /// Lower lip.
    LowerLip,
    /// Hair.
    Hair,
}

/// The visible tissue of an eye.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EyeTissue {
    /// White.
    Sclera,
    /// Coloured ring.
    Iris,
    /// Centre.
    Pupil,
}

impl Part {
    /// The LaPa class index (`visage_core::labels::LAPA_CLASSES`).
    pub fn class(&self) -> u8 {
        match self {
            Part::Background => 0,
            Part::Skin { .. } => 1,
            Part::Brow { left: true } => 2,
            Part::Brow { left: false } => 3,
            Part::Eye { left: true, .. } => 4,
            Part::Eye { left: false, .. } => 5,
            Part::Nose { .. } => 6,
            Part::UpperLip => 7,
            Part::InnerMouth { .. } => 8,
            Part::LowerLip => 9,
            Part::Hair => 10,
        }
    }
}

/// Regions of the head surface, in frontal `(x, y)`.
#[derive(Debug, Clone)]
struct Regions {
    eyes: [Polygon; 2],
    irises: [(P2, f64); 2],
    brows: [Polygon; 2],
    inner_mouth: Polygon,
    upper_lip: Polygon,
    lower_lip: Polygon,
    teeth_y: f64,
    nostrils: [P2; 2],
    nostril_radii: P2,
    wrinkles: (f64, f64, f64),
    furrows: Furrows,
}

/// A posable face: surfaces, landmarks and regions.
#[derive(Debug, Clone)]
pub struct FaceModel {
    upper: Ellipsoid,
    lower: Ellipsoid,
    nose: Ellipsoid,
    cap: Option<Ellipsoid>,
    curtain: Option<Ellipsoid>,
    hair: HairRule,
    regions: Regions,
    /// Frontal `(x, y)` of the 68 landmarks.
    pub frontal: [P2; 68],
    /// Model-frame 3-D landmarks, on the head or nose surface.
    pub landmarks: [V3; 68],
    /// Radius of a sphere about the origin that holds every surface.
    pub bound: f64,
}

/// Eye, brow and lip landmarks of a neutral face (jaw and nose points are
/// derived from the geometry later).
fn neutral_layout(id: &Identity) -> [P2; 68] {
    let mut p = [[0.0; 2]; 68];
    // Image-left eye 36..=41 (outer corner first), mirrored to 42..=47.
    let (cx, cy, w, h) = (-id.eye_x, id.eye_y, id.eye_w, id.eye_h);
    let low = 0.75 * h;
    let left_eye = [
        [cx - w, cy + id.eye_tilt],
        [cx - 0.35 * w, cy + h],
        [cx + 0.35 * w, cy + h],
        [cx + w, cy - 0.3 * id.eye_tilt],
        [cx + 0.35 * w, cy - low],
        [cx - 0.35 * w, cy - low],
    ];
    p[36..42].copy_from_slice(&left_eye);
    for (k, &m) in [39, 38, 37, 36, 41, 40].iter().enumerate() {
        p[42 + k] = [-p[m][0], p[m][1]];
    }
    // Image-left brow 17..=21 (outer to inner), mirrored to 22..=26.
    let half = 1.1 * w + 0.05;
    let bx = cx - 0.02;
    for k in 0..5 {
        let u = k as f64 / 4.0;
        let arch = 1.0 - ((u - 0.55) / 0.55) * ((u - 0.55) / 0.55);
        p[17 + k] = [bx - half + 2.0 * half * u, cy + id.brow_y + id.brow_arch * arch];
        p[26 - k] = [-p[17 + k][0], p[17 + k][1]];
    }
    // Lips: outer 48..=59, inner 60..=67; the inner contours meet.
    let (my, mw, up, lo) = (id.mouth_y, id.mouth_w, id.lip_upper, id.lip_lower);
    let outer = [
        [-mw, my],
        [-0.6 * mw, my + 0.85 * up],
        [-0.25 * mw, my + up],
        [0.0, my + 0.88 * up],
        [0.25 * mw, my + up],
        [0.6 * mw, my + 0.85 * up],
        [mw, my],
        [0.6 * mw, my - 0.8 * lo],
        [0.25 * mw, my - lo],
        [0.0, my - lo],
        [-0.25 * mw, my - lo],
        [-0.6 * mw, my - 0.8 * lo],
    ];
    p[48..60].copy_from_slice(&outer);
    let inner = [
        [-0.85 * mw, my],
        [-0.4 * mw, my],
        [0.0, my],
        [0.4 * mw, my],
        [0.85 * mw, my],
        [0.4 * mw, my],
        [0.0, my],
        [-0.4 * mw, my],
    ];
    p[60..68].copy_from_slice(&inner);
    for (point, offset) in p.iter_mut().zip(id.offsets.iter()) {
        point[0] += offset[0];
        point[1] += offset[1];
    }
    p
}

/// Height of the head's front surface above `(x, y)`, if any.
fn head_front_z(head: &HeadSize, x: f64, y: f64) -> f64 {
    let b = if y >= 0.0 { head.b_top } else { head.b_low };
    let r = 1.0 - (x / head.a) * (x / head.a) - (y / b) * (y / b);
    head.c * r.max(0.0).sqrt()
}

fn nose_ellipsoid(nose: &NoseSize, head: &HeadSize) -> Ellipsoid {
    let tilt: f64 = 0.35;
    let (s, c) = crate::math::sin_cos(tilt);
    // Local y runs down the ridge, tilted so that the base juts out.
    Ellipsoid::new(
        [0.0, nose.y, head_front_z(head, 0.0, nose.y) - 0.06],
        [nose.w, nose.h, nose.d],
        [[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]],
    )
}

/// Nose points 27..=35 from the nose geometry.
fn place_nose(p: &mut [P2; 68], nose: &Ellipsoid, eye_y: f64) {
    let tip = nose.support([0.0, 0.0, 1.0]);
    let bottom = nose.support([0.0, -1.0, 0.0]);
    let w = nose.axes[0];
    p[27] = [0.0, eye_y];
    p[28] = [0.0, eye_y + (tip[1] - eye_y) * 0.36];
    p[29] = [0.0, eye_y + (tip[1] - eye_y) * 0.68];
    p[30] = [tip[0], tip[1]];
    let base = tip[1] + 0.72 * (bottom[1] - tip[1]);
    p[31] = [-0.62 * w, base + 0.02];
    p[32] = [-0.32 * w, base - 0.004];
    p[33] = [0.0, base - 0.012];
    p[34] = [0.32 * w, base - 0.004];
    p[35] = [0.62 * w, base + 0.02];
}

/// Jaw points 0..=16 just inside the head's frontal outline, from the
/// image-left temple round the chin to the image-right temple.
fn place_jaw(p: &mut [P2; 68], head: &HeadSize) {
    let pi = std::f64::consts::PI;
    for (k, point) in p.iter_mut().enumerate().take(17) {
        let gamma = -0.06 * pi + 1.12 * pi * k as f64 / 16.0;
        let (s, c) = crate::math::sin_cos(gamma);
        let b = if s > 0.0 { head.b_low } else { head.b_top };
        *point = [-c * 0.97 * head.a, -s * 0.97 * b];
    }
}

fn hair_parts(id: &Identity, head: &HeadSize) -> (HairRule, Option<Ellipsoid>, Option<Ellipsoid>) {
    let (thickness, lift, side_z, nape) = match id.hair_style {
        HairStyle::Cropped => (0.02, 0.12, -0.25, -0.2),
        HairStyle::Short => (0.05, 0.0, -0.05, -0.3),
        HairStyle::Medium => (0.09, 0.0, 0.15, -0.45),
        HairStyle::Long => (0.09, 0.0, 0.15, -0.5),
    };
    let rule = HairRule {
        hairline: id.hairline + lift,
        drop: id.hairline_drop,
        side_z,
        nape,
    };
    let k = 1.0 + thickness;
    let cap = Ellipsoid::aligned([0.0, 0.0, -0.02], [head.a * k, head.b_top * k, head.c * k]);
    let curtain = (id.hair_style == HairStyle::Long).then(|| {
        Ellipsoid::aligned(
            [0.0, -0.35 * head.b_low, -0.45 * head.c],
            [1.2 * head.a, 1.0 * head.b_low, 0.55 * head.c],
        )
    });
    (rule, Some(cap), curtain)
}

/// The brow region through the five points `ids` (outer to inner or inner
/// to outer, as `outer_first` says).
fn brow_region(p: &[P2; 68], ids: [usize; 5], outer_first: bool, thickness: f64) -> Polygon {
    let centre: Vec<P2> = ids.iter().map(|&i| p[i]).collect();
    let line = smooth_open(&centre, 4);
    let n = line.len() - 1;
    let width = |k: usize| {
        let u = k as f64 / n as f64;
        let inner = if outer_first { u } else { 1.0 - u };
        thickness * (0.45 + 0.55 * inner)
    };
    let mut outline: Vec<P2> = line
        .iter()
        .enumerate()
        .map(|(k, q)| [q[0], q[1] + 0.6 * width(k)])
        .collect();
    outline.extend(
        line.iter()
            .enumerate()
            .rev()
            .map(|(k, q)| [q[0], q[1] - 0.4 * width(k)]),
    );
    Polygon::new(outline)
}

fn curve(p: &[P2; 68], ids: &[usize]) -> Vec<P2> {
    let pts: Vec<P2> = ids.iter().map(|&i| p[i]).collect();
    smooth_open(&pts, 4)
}

fn regions(p: &[P2; 68], id: &Identity, au: &[f64; COUNT], gaze: P2, nose: &Ellipsoid) -> Regions {
    let eye = |ids: std::ops::Range<usize>| {
        let pts: Vec<P2> = p[ids.clone()].to_vec();
        let n = pts.len() as f64;
        let centre = [
            pts.iter().map(|q| q[0]).sum::<f64>() / n,
            pts.iter().map(|q| q[1]).sum::<f64>() / n,
        ];
        let iris = [centre[0] + gaze[0] * 0.05, centre[1] + gaze[1] * 0.015];
        (Polygon::new(smooth_closed(&pts, 4)), (iris, 0.36 * id.eye_w))
    };
    let (left_eye, left_iris) = eye(36..42);
    let (right_eye, right_iris) = eye(42..48);
    // Lips: upper outer 48..54, lower outer 54..59,48, inner upper 60..64,
    // inner lower 64..67,60.
    let upper_outer = curve(p, &[48, 49, 50, 51, 52, 53, 54]);
    let lower_outer = curve(p, &[54, 55, 56, 57, 58, 59, 48]);
    let inner_upper = curve(p, &[60, 61, 62, 63, 64]);
    let inner_lower = curve(p, &[64, 65, 66, 67, 60]);
    let mut upper = upper_outer.clone();
    upper.extend(inner_upper.iter().rev());
    let mut lower = lower_outer.clone();
    lower.extend(inner_lower.iter().rev());
    let mut inner = inner_upper.clone();
    inner.extend(inner_lower.iter().skip(1));
    let teeth_y = (p[61][1] + p[62][1] + p[63][1]) / 3.0 - 0.045;
    let lift = [0.0, 0.012];
    let tip = nose.support([0.0, 0.0, 1.0])[1];
    let w = nose.axes[0];
    Regions {
        eyes: [left_eye, right_eye],
        irises: [left_iris, right_iris],
        brows: [
            brow_region(p, [17, 18, 19, 20, 21], true, id.brow_thickness),
            brow_region(p, [22, 23, 24, 25, 26], false, id.brow_thickness),
        ],
        inner_mouth: Polygon::new(inner),
        upper_lip: Polygon::new(upper),
        lower_lip: Polygon::new(lower),
        teeth_y,
        nostrils: [
            [p[32][0] + lift[0], p[32][1] + lift[1]],
            [p[34][0] + lift[0], p[34][1] + lift[1]],
        ],
        nostril_radii: [0.2 * w, 0.1 * w],
        wrinkles: (tip + 0.04, tip + 0.16, au[AU9].clamp(0.0, 1.0)),
        furrows: Furrows::new(p, au),
    }
}

impl FaceModel {
    /// The face of `identity` with action-unit intensities `au` and the
    /// eyes' gaze `gaze` (each coordinate in -1..1).
    pub fn new(identity: &Identity, au: &[f64; COUNT], gaze: P2) -> FaceModel {
        let mut frontal = neutral_layout(identity);
        let (mut head, mut nose_size) = (identity.head, identity.nose);
        action_units::apply(&mut frontal, &mut head, &mut nose_size, au);
        let nose = nose_ellipsoid(&nose_size, &head);
        let eye_line = lerp2(frontal[39], frontal[42], 0.5)[1];
        place_nose(&mut frontal, &nose, eye_line);
        place_jaw(&mut frontal, &head);
        let (hair, cap, curtain) = hair_parts(identity, &head);
        let regions = regions(&frontal, identity, au, gaze, &nose);
        let mut model = FaceModel {
            upper: Ellipsoid::aligned([0.0; 3], [head.a, head.b_top, head.c]),
            lower: Ellipsoid::aligned([0.0; 3], [head.a, head.b_low, head.c]),
            nose,
            cap,
            curtain,
            hair,
            regions,
            frontal,
            landmarks: [[0.0; 3]; 68],
            bound: 1.35 * (head.a.max(head.b_top).max(head.b_low).max(head.c) + 0.3),
        };
        model.landmarks = frontal.map(|[x, y]| match model.cast([x, y, 50.0], [0.0, 0.0, -1.0], false) {
            Some(hit) => hit.point,
            None => [x, y, 0.0],
        });
        model
    }

    /// The first surface along the ray `o + t d` (`d` a unit vector);
    /// `hair` says whether the hair surfaces count.
    pub fn cast(&self, o: V3, d: V3, hair: bool) -> Option<Hit> {
        let mut best: Option<(f64, Surface, &Ellipsoid)> = None;
        let mut candidates: [Option<(f64, Surface, &Ellipsoid)>; 5] = [None; 5];
        let at = |t: f64| add(o, crate::math::scale(d, t));
        candidates[0] = self
            .upper
            .entry(o, d)
            .filter(|&t| at(t)[1] >= 0.0)
            .map(|t| (t, Surface::Head, &self.upper));
        candidates[1] = self
            .lower
            .entry(o, d)
            .filter(|&t| at(t)[1] < 0.0)
            .map(|t| (t, Surface::Head, &self.lower));
        candidates[2] = self.nose.entry(o, d).map(|t| (t, Surface::Nose, &self.nose));
        if hair {
            if let Some(cap) = &self.cap {
                candidates[3] = cap
                    .entry(o, d)
                    .filter(|&t| self.hair.covers(cap.local(at(t))))
                    .map(|t| (t, Surface::Hair, cap));
            }
            if let Some(curtain) = &self.curtain {
                candidates[4] = curtain.entry(o, d).map(|t| (t, Surface::Hair, curtain));
            }
        }
        for c in candidates.into_iter().flatten() {
            if best.is_none_or(|b| c.0 < b.0) {
                best = Some(c);
            }
        }
        best.map(|(t, surface, e)| {
            let point = add(o, crate::math::scale(d, t));
            Hit {
                t,
                point,
                normal: e.normal(point),
                surface,
            }
        })
    }

    /// What the surface shows at `hit`.
    pub fn part(&self, hit: &Hit) -> Part {
        let p = hit.point;
        let xy = [p[0], p[1]];
        let r = &self.regions;
        match hit.surface {
            Surface::Hair => Part::Hair,
            Surface::Nose => {
                let [rx, ry] = r.nostril_radii;
                let in_nostril = r.nostrils.iter().any(|c| {
                    let (dx, dy) = ((xy[0] - c[0]) / rx, (xy[1] - c[1]) / ry);
                    dx * dx + dy * dy < 1.0
                });
                let (lo, hi, strength) = r.wrinkles;
                let wrinkle = strength > 0.0 && xy[1] > lo && xy[1] < hi && ((xy[1] - lo) / 0.03).fract() < 0.35;
                let shade = if in_nostril {
                    0.35
                } else if wrinkle {
                    1.0 - 0.45 * strength
                } else {
                    1.0
                };
                Part::Nose { shade }
            }
            Surface::Head => self.head_part(p, xy),
        }
    }

    fn head_part(&self, p: V3, xy: P2) -> Part {
        let r = &self.regions;
        if p[2] > 0.0 {
            for (k, eye) in r.eyes.iter().enumerate() {
                if eye.contains(xy) {
                    let (c, radius) = r.irises[k];
                    let d = ((xy[0] - c[0]) * (xy[0] - c[0]) + (xy[1] - c[1]) * (xy[1] - c[1])).sqrt();
                    let tissue = if d < 0.4 * radius {
                        EyeTissue::Pupil
                    } else if d < radius {
                        EyeTissue::Iris
                    } else {
                        EyeTissue::Sclera
                    };
                    return Part::Eye { left: k == 0, tissue };
                }
            }
            for (k, brow) in r.brows.iter().enumerate() {
                if brow.contains(xy) {
                    return Part::Brow { left: k == 0 };
                }
            }
            if r.inner_mouth.contains(xy) {
                return Part::InnerMouth {
                    teeth: xy[1] > r.teeth_y,
                };
            }
            if r.upper_lip.contains(xy) {
                return Part::UpperLip;
            }
            if r.lower_lip.contains(xy) {
                return Part::LowerLip;
            }
        }
        let e = if p[1] >= 0.0 { &self.upper } else { &self.lower };
        if self.hair.covers(e.local(p)) {
            Part::Hair
        } else {
            let shade = if p[2] > 0.0 { r.furrows.shade(xy) } else { 1.0 };
            Part::Skin { shade }
        }
    }

    /// The outline of region `class` (2..=9 except 6) in frontal `(x, y)`,
    /// for tests and tools.
    pub fn region_outline(&self, class: u8) -> Option<&[P2]> {
        let r = &self.regions;
        Some(match class {
            2 => r.brows[0].points(),
            3 => r.brows[1].points(),
            4 => r.eyes[0].points(),
            5 => r.eyes[1].points(),
            7 => r.upper_lip.points(),
            8 => r.inner_mouth.points(),
            9 => r.lower_lip.points(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmarks_sit_on_the_surfaces_in_front() {
        for index in 0..20 {
            let id = Identity::new(1, index);
            let model = FaceModel::new(&id, &[0.0; COUNT], [0.0, 0.0]);
            for (i, p) in model.landmarks.iter().enumerate() {
                assert!(p[2] > 0.0, "identity {index} landmark {i} at {p:?}");
            }
            // The nose tip is the nose's front-most point and juts out.
            assert!(model.landmarks[30][2] > model.landmarks[27][2] + 0.1);
            // Eyes above the nose tip above the mouth above the chin.
            assert!(model.frontal[37][1] > model.frontal[30][1]);
            assert!(model.frontal[30][1] > model.frontal[51][1]);
            assert!(model.frontal[57][1] > model.frontal[8][1]);
            // Image-left features have x < 0.
            for i in [0, 17, 36, 48, 31] {
                assert!(model.frontal[i][0] < 0.0 && model.frontal[visage_core::labels::IBUG68_FLIP[i]][0] > 0.0);
            }
        }
    }
}
