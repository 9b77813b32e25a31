//! `resize`, `center_crop`, `random_resized_crop` and `distance_crop`:
//! integer boxes of the input, resized bilinearly.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::geometry::{image_dims, transform, Geometric};
use super::{bad, check_range, randint, round_half_even, yes, Size};
use crate::augmentation::Augmentation;
use crate::rng::Rng;
use crate::{Error, Result, Sample};

/// Parameters of `resize`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeParams {
    /// `[height, width]`, or one number: the shorter edge, keeping the aspect
    /// ratio (torchvision's `Resize`; the same as `[s, s]` for square images).
    pub size: Size,
    /// Antialias when downscaling (torchvision's default).
    #[serde(default = "yes")]
    pub antialias: bool,
}

/// Bilinear resize (`align_corners = false`: `x -> x · W'/W`).
#[derive(Debug, Clone)]
pub struct Resize {
    size: Size,
    antialias: bool,
}

impl Resize {
    /// Checks the parameters.
    pub fn new(params: ResizeParams) -> Result<Self> {
        Ok(Resize {
            size: params.size.check("size")?,
            antialias: params.antialias,
        })
    }

    /// Output `(height, width)` for an `h x w` input.
    pub fn output_size(&self, h: i64, w: i64) -> (i64, i64) {
        match self.size {
            Size::HeightWidth([oh, ow]) => (oh, ow),
            Size::Single(s) if h <= w => (s, ((s * w) as f64 / h as f64) as i64),
            Size::Single(s) => (((s * h) as f64 / w as f64) as i64, s),
        }
    }
}

impl Augmentation for Resize {
    fn apply(&self, sample: Sample, _seed: u64) -> Result<Sample> {
        let (_, h, w) = image_dims(&sample.image)?;
        let out = self.output_size(h, w);
        transform(sample, &Geometric::crop(0, 0, (h, w), out, self.antialias))
    }
}

/// Parameters of `center_crop`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CenterCropParams {
    /// `[height, width]` or one number for a square.
    pub size: Size,
}

/// Central box of the given size (torchvision's offsets; zero padding where
/// the box is larger than the image).
#[derive(Debug, Clone)]
pub struct CenterCrop {
    size: (i64, i64),
}

impl CenterCrop {
    /// Checks the parameters.
    pub fn new(params: CenterCropParams) -> Result<Self> {
        Ok(CenterCrop {
            size: params.size.check("size")?.square(),
        })
    }
}

/// Offset of a centred window of `crop` in `full` (torchvision's rule).
fn centred(full: i64, crop: i64) -> i64 {
    if crop > full {
        -((crop - full) / 2)
    } else {
        round_half_even((full - crop) as f64 / 2.0)
    }
}

impl Augmentation for CenterCrop {
    fn apply(&self, sample: Sample, _seed: u64) -> Result<Sample> {
        let (_, h, w) = image_dims(&sample.image)?;
        let (ch, cw) = self.size;
        let op = Geometric::crop(centred(h, ch), centred(w, cw), (ch, cw), (ch, cw), false);
        transform(sample, &op)
    }
}

/// An integer box `[top, top+height) x [left, left+width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First row.
    pub top: i64,
    /// First column.
    pub left: i64,
    /// Rows.
    pub height: i64,
    /// Columns.
    pub width: i64,
}

/// Parameters of `random_resized_crop`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomResizedCropParams {
    /// Output `[height, width]` or one number for a square.
    pub size: Size,
    /// Range of the box's area as a fraction of the image's.
    #[serde(default = "default_scale")]
    pub scale: [f64; 2],
    /// Range of the box's aspect ratio width/height (drawn log-uniformly).
    #[serde(default = "default_ratio")]
    pub ratio: [f64; 2],
    /// Antialias when downscaling.
    #[serde(default = "yes")]
    pub antialias: bool,
}

fn default_scale() -> [f64; 2] {
    [0.08, 1.0]
}
fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

/// torchvision's `RandomResizedCrop`: up to 10 draws of area and log-ratio,
/// the first box that fits is taken at a uniform position; otherwise the
/// central box of the whole image clamped to the ratio range.
#[derive(Debug, Clone)]
pub struct RandomResizedCrop {
    size: (i64, i64),
    scale: [f64; 2],
    ratio: [f64; 2],
    antialias: bool,
}

impl RandomResizedCrop {
    /// Checks the parameters.
    pub fn new(params: RandomResizedCropParams) -> Result<Self> {
        let scale = check_range("scale", params.scale, 0.0, true)?;
        let ratio = check_range("ratio", params.ratio, 0.0, true)?;
        Ok(RandomResizedCrop {
            size: params.size.check("size")?.square(),
            scale,
            ratio,
            antialias: params.antialias,
        })
    }

    /// The box drawn for `seed` in an `h x w` image.
    pub fn crop_box(&self, seed: u64, h: i64, w: i64) -> CropBox {
        let mut rng = Rng::new(&[seed]);
        let area = (h * w) as f64;
        let (log_lo, log_hi) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let target = area * rng.range(self.scale[0], self.scale[1]);
            let aspect = rng.range(log_lo, log_hi).exp();
            let cw = round_half_even((target * aspect).sqrt());
            let ch = round_half_even((target / aspect).sqrt());
            if 0 < cw && cw <= w && 0 < ch && ch <= h {
                let top = randint(&mut rng, 0, h - ch);
                let left = randint(&mut rng, 0, w - cw);
                return CropBox {
                    top,
                    left,
                    height: ch,
                    width: cw,
                };
            }
        }
        let in_ratio = w as f64 / h as f64;
        let (ch, cw) = if in_ratio < self.ratio[0] {
            (round_half_even(w as f64 / self.ratio[0]), w)
        } else if in_ratio > self.ratio[1] {
            (h, round_half_even(h as f64 * self.ratio[1]))
        } else {
            (h, w)
        };
        CropBox {
            top: (h - ch) / 2,
            left: (w - cw) / 2,
            height: ch,
            width: cw,
        }
    }
}

impl Augmentation for RandomResizedCrop {
    fn apply(&self, sample: Sample, seed: u64) -> Result<Sample> {
        let (_, h, w) = image_dims(&sample.image)?;
        let b = self.crop_box(seed, h, w);
        let op = Geometric::crop(b.top, b.left, (b.height, b.width), self.size, self.antialias);
        transform(sample, &op)
    }
}

/// Parameters of `distance_crop`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistanceCropParams {
    /// Crop size as a fraction of the image's height and width.
    #[serde(default = "default_ratio_pcl")]
    pub ratio: f64,
    /// Which of the two crops this view takes: 0 or 1.
    pub view: u8,
}

fn default_ratio_pcl() -> f64 {
    0.4
}

/// PCL's `DistanceCrop`: two crops centred in two different random
/// quadrants of the image; view `v` returns crop `v`, not resized (PCL
/// resizes each crop afterwards, so follow with `resize`).
///
/// As in the official code (DreamMr/PCL, `data_process/DistanceCrop.py`):
/// half-sizes `bh = floor(ratio · H / 2)`, `bw = floor(ratio · W / 2)` (so a
/// crop is `2bh x 2bw`, e.g. 24 px of 64 for 0.4); an ordered pair of
/// distinct quadrants (0 top-left, 1 top-right, 2 bottom-left, 3
/// bottom-right); each centre uniform over the integers keeping the crop in
/// its half, e.g. `x` in `bw..=W/2-bw` on the left, `W/2+bw..=W-bw` on the
/// right; the crop spans `[y-bh, y+bh) x [x-bw, x+bw)`. Images too small
/// for that (`bh` or `bw` zero, or not below `H/2`, `W/2`) are errors, like
/// the official assertion.
///
/// Two views from one op: an augmentation returns one sample, so the crop
/// pair is drawn from `seed` alone and `view` picks one. Both views must
/// therefore get the same seed for this step: put each first in its own
/// view group and list step 0 in both groups' `shared_steps`
/// ([`crate::data::ViewGroup`]). (Views that draw this step independently
/// still get valid crops, but their quadrants coincide with probability
/// 1/4.) This keeps each view an ordinary single-sample pipeline whose
/// other steps draw independently.
#[derive(Debug, Clone)]
pub struct DistanceCrop {
    ratio: f64,
    view: usize,
}

impl DistanceCrop {
    /// Checks the parameters.
    pub fn new(params: DistanceCropParams) -> Result<Self> {
        if !(params.ratio > 0.0 && params.ratio < 1.0) {
            return Err(bad("ratio", format!("must be in (0, 1), got {}", params.ratio)));
        }
        if params.view > 1 {
            return Err(bad("view", format!("must be 0 or 1, got {}", params.view)));
        }
        Ok(DistanceCrop {
            ratio: params.ratio,
            view: params.view as usize,
        })
    }

    /// The two boxes and their quadrants drawn for `seed` in an `h x w`
    /// image.
    pub fn crop_boxes(&self, seed: u64, h: i64, w: i64) -> Result<[(usize, CropBox); 2]> {
        let bh = (h as f64 * self.ratio / 2.0) as i64;
        let bw = (w as f64 * self.ratio / 2.0) as i64;
        if bh < 1 || bw < 1 || bh >= h / 2 || bw >= w / 2 {
            return Err(Error::msg(format!(
                "distance_crop with ratio {} needs a larger image than {h}x{w}",
                self.ratio
            )));
        }
        let mut rng = Rng::new(&[seed]);
        let first = (rng.next_u64() % 4) as usize;
        let mut second = (rng.next_u64() % 3) as usize;
        if second >= first {
            second += 1;
        }
        let mut boxes = [(
            0,
            CropBox {
                top: 0,
                left: 0,
                height: 0,
                width: 0,
            },
        ); 2];
        for (slot, quadrant) in boxes.iter_mut().zip([first, second]) {
            let x = if quadrant % 2 == 0 {
                randint(&mut rng, bw, w / 2 - bw)
            } else {
                randint(&mut rng, w / 2 + bw, w - bw)
            };
            let y = if quadrant < 2 {
                randint(&mut rng, bh, h / 2 - bh)
            } else {
                randint(&mut rng, h / 2 + bh, h - bh)
            };
            *slot = (
                quadrant,
                CropBox {
                    top: y - bh,
                    left: x - bw,
                    height: 2 * bh,
                    width: 2 * bw,
                },
            );
        }
        Ok(boxes)
    }
}

impl Augmentation for DistanceCrop {
    fn apply(&self, sample: Sample, seed: u64) -> Result<Sample> {
        let (_, h, w) = image_dims(&sample.image)?;
        let (_, b) = self.crop_boxes(seed, h, w)?[self.view];
        let size = (b.height, b.width);
        transform(sample, &Geometric::crop(b.top, b.left, size, size, false))
    }
}
