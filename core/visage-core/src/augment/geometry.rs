//! Affine maps of the image plane and their application to a whole sample.
//!
//! Every geometric augmentation reduces to one [`Affine`] map `A` from input
//! to output coordinates plus an output size. The same `A` moves the
//! landmarks (`p' = A p`), the pixels (each output pixel centre samples the
//! input at `A⁻¹` of itself) and the parsing mask (the same, nearest
//! neighbour), so labels cannot drift from the pixels.
//!
//! Coordinates are those of [`crate::labels`]: `x` to the right, `y` down,
//! pixel `(i, j)` covers `[j, j+1) x [i, i+1)`. This is exactly libtorch's
//! `align_corners = false` convention, where the normalised coordinates
//! `-1` and `1` are the outer edges of the border pixels.

use super::resample::{self, Region};
use tch::{Kind, Tensor};

use crate::labels::{IBUG68, IBUG68_FLIP, LANDMARKS, LANDMARKS_VISIBLE, LAPA_CLASSES, LAPA_FLIP, PARSING, POSE};
use crate::{Error, Result, Sample};

/// An affine map `(x, y) -> (m00 x + m01 y + m02, m10 x + m11 y + m12)` in
/// pixel-corner coordinates (`x` right, `y` down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [[f64; 3]; 2]);

impl Affine {
    /// The identity.
    pub const IDENTITY: Affine = Affine([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);

    /// Translation by `(tx, ty)`.
    pub fn translation(tx: f64, ty: f64) -> Affine {
        Affine([[1.0, 0.0, tx], [0.0, 1.0, ty]])
    }

    /// Scaling by `(sx, sy)` about the origin (the image's top-left corner).
    pub fn scaling(sx: f64, sy: f64) -> Affine {
        Affine([[sx, 0.0, 0.0], [0.0, sy, 0.0]])
    }

    /// The linear map `l` (rows), no translation.
    pub fn linear(l: [[f64; 2]; 2]) -> Affine {
        Affine([[l[0][0], l[0][1], 0.0], [l[1][0], l[1][1], 0.0]])
    }

    /// Rotation by `degrees` counter-clockwise as seen on screen about
    /// `(cx, cy)`. With `y` pointing down this is `[[c, s], [-s, c]]`.
    pub fn rotation_about(degrees: f64, cx: f64, cy: f64) -> Affine {
        let (s, c) = degrees.to_radians().sin_cos();
        Affine::translation(-cx, -cy)
            .then(&Affine::linear([[c, s], [-s, c]]))
            .then(&Affine::translation(cx, cy))
    }

    /// The horizontal mirror of a width-`width` image: `x -> width - x`.
    pub fn hflip(width: f64) -> Affine {
        Affine([[-1.0, 0.0, width], [0.0, 1.0, 0.0]])
    }

    /// `self` followed by `next`, i.e. `next ∘ self`.
    pub fn then(&self, next: &Affine) -> Affine {
        let (a, b) = (&next.0, &self.0);
        let mut m = [[0.0; 3]; 2];
        for (r, row) in m.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = a[r][0] * b[0][c] + a[r][1] * b[1][c] + if c == 2 { a[r][2] } else { 0.0 };
            }
        }
        Affine(m)
    }

    /// The image of the point `(x, y)`.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.0;
        (m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2])
    }

    /// Determinant of the linear part; negative for a mirror.
    pub fn det(&self) -> f64 {
        let m = &self.0;
        m[0][0] * m[1][1] - m[0][1] * m[1][0]
    }

    /// The inverse map, or an error for a singular one.
    pub fn inverse(&self) -> Result<Affine> {
        let det = self.det();
        if !det.is_finite() || det.abs() < 1e-12 {
            return Err(Error::msg(format!("the affine map {:?} is not invertible", self.0)));
        }
        let m = &self.0;
        let (a, b, c, d) = (m[1][1] / det, -m[0][1] / det, -m[1][0] / det, m[0][0] / det);
        Ok(Affine([
            [a, b, -(a * m[0][2] + b * m[1][2])],
            [c, d, -(c * m[0][2] + d * m[1][2])],
        ]))
    }

    /// The in-plane rotation the map applies, in degrees counter-clockwise on
    /// screen: the angle of the rotation closest to the linear part (its polar
    /// decomposition), after factoring out a mirror when `det < 0`. Exact for
    /// rotations combined with uniform scaling and translation.
    pub fn rotation_degrees(&self) -> f64 {
        let m = &self.0;
        // Factor out the mirror x -> -x (applied first) when there is one.
        let (a, b, c, d) = if self.det() < 0.0 {
            (-m[0][0], m[0][1], -m[1][0], m[1][1])
        } else {
            (m[0][0], m[0][1], m[1][0], m[1][1])
        };
        (b - c).atan2(a + d).to_degrees()
    }
}

/// How the pixels of a geometric op are resampled; all variants agree with
/// the op's [`Affine`] map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pixels {
    /// Exact horizontal flip (the map must be [`Affine::hflip`]).
    Flip,
    /// An integer box of the input (zero outside it), then a bilinear resize
    /// to the output size (the map must be that translation and scaling).
    Crop {
        top: i64,
        left: i64,
        height: i64,
        width: i64,
        antialias: bool,
    },
    /// General bilinear warp, zero outside the input.
    Warp,
}

/// One geometric op, ready to apply: the map, the output size and how to
/// resample the pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Geometric {
    pub map: Affine,
    pub height: i64,
    pub width: i64,
    pub pixels: Pixels,
}

impl Geometric {
    /// An integer crop box resized to `(height, width)`.
    pub fn crop(top: i64, left: i64, crop: (i64, i64), out: (i64, i64), antialias: bool) -> Geometric {
        let map = Affine::translation(-left as f64, -top as f64).then(&Affine::scaling(
            out.1 as f64 / crop.1 as f64,
            out.0 as f64 / crop.0 as f64,
        ));
        Geometric {
            map,
            height: out.0,
            width: out.1,
            pixels: Pixels::Crop {
                top,
                left,
                height: crop.0,
                width: crop.1,
                antialias,
            },
        }
    }
}

/// `(C, H, W)` of a sample's image, with an error for anything but a
/// non-empty `[C, H, W]` tensor.
pub(crate) fn image_dims(image: &Tensor) -> Result<(i64, i64, i64)> {
    match image.size()[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok((c, h, w)),
        ref other => Err(Error::msg(format!(
            "augmentations expect a non-empty image [C, H, W], got shape {other:?}"
        ))),
    }
}

/// Applies `op` to the image and to every geometric label of `sample`.
pub(crate) fn transform(mut sample: Sample, op: &Geometric) -> Result<Sample> {
    let (_, h, w) = image_dims(&sample.image)?;
    if op.height <= 0 || op.width <= 0 {
        return Err(Error::msg(format!("output size {}x{} is empty", op.height, op.width)));
    }
    sample.image = match op.pixels {
        Pixels::Flip => sample.image.f_flip([2])?,
        Pixels::Crop {
            top,
            left,
            height,
            width,
            antialias,
        } => {
            let inside = top >= 0 && left >= 0 && top + height <= h && left + width <= w;
            let region = Region {
                top: top as usize,
                left: left as usize,
                height: height as usize,
                width: width as usize,
            };
            let resized = (inside && antialias && (height, width) != (op.height, op.width))
                .then(|| resample::resize_region(&sample.image, region, op.height, op.width))
                .transpose()?
                .flatten();
            match resized {
                Some(image) => image,
                None => resize_image(
                    &crop_pad(&sample.image, top, left, height, width)?,
                    op.height,
                    op.width,
                    antialias,
                )?,
            }
        }
        Pixels::Warp => warp(&sample.image, &op.map, (h, w), (op.height, op.width), 0)?,
    };
    let mirror = op.map.det() < 0.0;
    if let Some(mask) = sample.labels.remove(PARSING) {
        sample
            .labels
            .insert(PARSING.into(), transform_mask(&mask, op, (h, w), mirror)?);
    }
    let visible = sample.labels.remove(LANDMARKS_VISIBLE);
    let mut inside = None;
    if let Some(points) = sample.labels.remove(LANDMARKS) {
        let (moved, within) = transform_points(&points, op)?;
        inside = Some(within);
        sample
            .labels
            .insert(LANDMARKS.into(), permute_points(moved, mirror, LANDMARKS)?);
    }
    if let Some(visible) = visible {
        let visible = match inside {
            Some(inside) => visible.f_mul(&inside.f_to_kind(visible.kind())?)?,
            None => visible,
        };
        sample.labels.insert(
            LANDMARKS_VISIBLE.into(),
            permute_points(visible, mirror, LANDMARKS_VISIBLE)?,
        );
    }
    if let Some(pose) = sample.labels.remove(POSE) {
        sample.labels.insert(POSE.into(), transform_pose(&pose, &op.map)?);
    }
    Ok(sample)
}

/// The box `[top, top+height) x [left, left+width)` of the last two axes,
/// zero where it leaves the input.
pub(crate) fn crop_pad(x: &Tensor, top: i64, left: i64, height: i64, width: i64) -> Result<Tensor> {
    let size = x.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    let pads = [
        (-left).max(0),
        (left + width - w).max(0),
        (-top).max(0),
        (top + height - h).max(0),
    ];
    let padded = if pads.iter().any(|&p| p > 0) {
        x.f_constant_pad_nd(pads)?
    } else {
        x.shallow_clone()
    };
    Ok(padded
        .f_narrow(-2, top + pads[2], height)?
        .f_narrow(-1, left + pads[0], width)?)
}

/// Bilinear resize of `[C, H, W]` with `align_corners = false` (scaling
/// about the top-left corner), antialiased when `antialias`.
pub(crate) fn resize_image(x: &Tensor, height: i64, width: i64, antialias: bool) -> Result<Tensor> {
    let size = x.size();
    if size[1] == height && size[2] == width {
        return Ok(x.shallow_clone());
    }
    let batch = x.f_unsqueeze(0)?;
    let out = if antialias {
        batch.f_internal_upsample_bilinear2d_aa([height, width], false, None, None)?
    } else {
        batch.f_upsample_bilinear2d([height, width], false, None, None)?
    };
    Ok(out.f_squeeze_dim(0)?)
}

/// Samples `x` (`[C, H, W]`, float or double) on the output grid of `map`;
/// `mode` 0 is bilinear, 1 nearest; zero outside the input.
fn warp(x: &Tensor, map: &Affine, input: (i64, i64), output: (i64, i64), mode: i64) -> Result<Tensor> {
    let (h, w) = (input.0 as f64, input.1 as f64);
    let (oh, ow) = (output.0 as f64, output.1 as f64);
    // Output normalised -> output pixels -> input pixels -> input normalised.
    let theta = Affine([[ow / 2.0, 0.0, ow / 2.0], [0.0, oh / 2.0, oh / 2.0]])
        .then(&map.inverse()?)
        .then(&Affine([[2.0 / w, 0.0, -1.0], [0.0, 2.0 / h, -1.0]]));
    let flat: Vec<f64> = theta.0.iter().flatten().copied().collect();
    let theta = Tensor::from_slice(&flat).f_to_kind(x.kind())?.f_view([1, 2, 3])?;
    let c = x.size()[0];
    let grid = Tensor::f_affine_grid_generator(&theta, [1, c, output.0, output.1], false)?;
    Ok(x.f_unsqueeze(0)?
        .f_grid_sampler(&grid, mode, 0, false)?
        .f_squeeze_dim(0)?)
}

fn transform_mask(mask: &Tensor, op: &Geometric, input: (i64, i64), mirror: bool) -> Result<Tensor> {
    if mask.size() != [input.0, input.1] {
        return Err(Error::msg(format!(
            "label `{PARSING}` has shape {:?}, the image is {}x{}",
            mask.size(),
            input.0,
            input.1
        )));
    }
    let moved = match op.pixels {
        Pixels::Flip => mask.f_flip([1])?,
        _ => {
            let x = mask.f_to_kind(Kind::Double)?.f_unsqueeze(0)?;
            warp(&x, &op.map, input, (op.height, op.width), 1)?
                .f_squeeze_dim(0)?
                .f_round()?
                .f_to_kind(mask.kind())?
        }
    };
    if !mirror {
        return Ok(moved);
    }
    let (lo, hi) = (moved.min().int64_value(&[]), moved.max().int64_value(&[]));
    if lo < 0 || hi >= LAPA_CLASSES.len() as i64 {
        return Err(Error::msg(format!(
            "label `{PARSING}` holds classes {lo}..={hi}, outside the {} LaPa classes a mirror can swap",
            LAPA_CLASSES.len()
        )));
    }
    let table = Tensor::from_slice(&LAPA_FLIP).f_to_kind(moved.kind())?;
    let shape = moved.size();
    Ok(table
        .f_index_select(0, &moved.f_flatten(0, -1)?.f_to_kind(Kind::Int64)?)?
        .f_view(shape.as_slice())?)
}

/// Moved points `[N, 2]` (same kind) and a bool `[N]`: inside the output.
fn transform_points(points: &Tensor, op: &Geometric) -> Result<(Tensor, Tensor)> {
    match points.size()[..] {
        [_, 2] => {}
        ref other => {
            return Err(Error::msg(format!(
                "label `{LANDMARKS}` must be [N, 2] (x, y), got shape {other:?}"
            )))
        }
    }
    let p = points.f_to_kind(Kind::Double)?;
    let (x, y) = (p.f_select(1, 0)?, p.f_select(1, 1)?);
    let m = &op.map.0;
    let nx = &x * m[0][0] + &y * m[0][1] + m[0][2];
    let ny = &x * m[1][0] + &y * m[1][1] + m[1][2];
    let inside = nx
        .f_ge(0.0)?
        .f_logical_and(&nx.f_lt(op.width as f64)?)?
        .f_logical_and(&ny.f_ge(0.0)?)?
        .f_logical_and(&ny.f_lt(op.height as f64)?)?;
    Ok((Tensor::f_stack(&[nx, ny], 1)?.f_to_kind(points.kind())?, inside))
}

/// After a mirror, point `i` is the original's `IBUG68_FLIP[i]`.
fn permute_points(x: Tensor, mirror: bool, name: &str) -> Result<Tensor> {
    if !mirror {
        return Ok(x);
    }
    if x.size().first() != Some(&(IBUG68 as i64)) {
        return Err(Error::msg(format!(
            "label `{name}` has shape {:?}; a mirror can only swap the sides of the {IBUG68} iBUG points",
            x.size()
        )));
    }
    let order: Vec<i64> = IBUG68_FLIP.iter().map(|&i| i as i64).collect();
    Ok(x.f_index_select(0, &Tensor::from_slice(&order))?)
}

/// A mirror negates yaw and roll; the map's in-plane rotation adds to roll
/// (wrapped to [-180, 180)).
fn transform_pose(pose: &Tensor, map: &Affine) -> Result<Tensor> {
    if pose.size() != [3] {
        return Err(Error::msg(format!(
            "label `{POSE}` must be [3] (yaw, pitch, roll), got shape {:?}",
            pose.size()
        )));
    }
    let mut v = Vec::<f64>::try_from(pose.f_to_kind(Kind::Double)?)?;
    if map.det() < 0.0 {
        v[0] = -v[0];
        v[2] = -v[2];
    }
    v[2] = wrap_degrees(v[2] + map.rotation_degrees());
    Ok(Tensor::from_slice(&v).f_to_kind(pose.kind())?)
}

fn wrap_degrees(a: f64) -> f64 {
    let w = (a + 180.0).rem_euclid(360.0) - 180.0;
    // Keep values that are already in range bit-exact.
    if (-180.0..180.0).contains(&a) {
        a
    } else {
        w
    }
}
