//! One sample being written: its image, labels, split and index, with the
//! typed label accessors the writers share.

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::{Kind, Tensor};
use visage_core::dataset::Split;
use visage_core::{Error, Result};

use crate::error::{ensure, Context};
use crate::io;
use crate::job::split_name;

/// One sample being written (a [`visage_core::sample::Sample`] with its place).
pub struct Record {
    /// Its split.
    pub split: Split,
    /// Its index in the split (0-based).
    pub index: usize,
    image: Tensor,
    labels: BTreeMap<String, Tensor>,
    format: &'static str,
    dataset: Arc<str>,
}

impl Record {
    /// Sample `index` of `split` with its image `[C, H, W]` (floats in 0..1)
    /// and labels; `format` and `dataset` name the export in messages.
    pub fn new(
        split: Split,
        index: usize,
        image: Tensor,
        labels: BTreeMap<String, Tensor>,
        format: &'static str,
        dataset: Arc<str>,
    ) -> Self {
        Record {
            split,
            index,
            image,
            labels,
            format,
            dataset,
        }
    }

    /// The labels.
    pub fn labels(&self) -> &BTreeMap<String, Tensor> {
        &self.labels
    }

    /// Where this sample is, for messages.
    pub fn what(&self) -> String {
        format!("{} sample {}", split_name(self.split), self.index)
    }

    /// The 1-based file number.
    pub fn number(&self) -> usize {
        self.index + 1
    }

    /// Label `name`, or an error naming it and the format that needs it.
    pub fn label(&self, name: &str) -> Result<&Tensor> {
        self.labels.get(name).with_context(|| {
            let have: Vec<&str> = self.labels.keys().map(String::as_str).collect();
            format!(
                "format `{}` needs the label `{name}`, which dataset `{}` does not provide (it has: {})",
                self.format,
                self.dataset,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            )
        })
    }

    /// The dataset's name.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// Whether the sample has label `name`.
    pub fn has(&self, name: &str) -> bool {
        self.labels.contains_key(name)
    }

    /// Label `name` as floats, with its shape.
    pub fn floats(&self, name: &str) -> Result<(Vec<i64>, Vec<f64>)> {
        let t = self.label(name)?;
        let values = t
            .f_to_kind(Kind::Double)
            .and_then(|t| t.f_flatten(0, -1))
            .and_then(|t| Vec::<f64>::try_from(&t))
            .with_context(|| format!("label `{name}` of {}: not numeric", self.what()))?;
        ensure!(
            values.iter().all(|v| v.is_finite()),
            "label `{name}` of {} has a non-finite value",
            self.what()
        );
        Ok((t.size(), values))
    }

    /// A scalar integer label.
    pub fn int(&self, name: &str) -> Result<i64> {
        let (shape, values) = self.floats(name)?;
        ensure!(
            values.len() == 1,
            "label `{name}` of {}: expected a scalar, got shape {shape:?}",
            self.what()
        );
        ensure!(
            values[0].fract() == 0.0 && values[0].abs() < 1e15,
            "label `{name}` of {}: expected an integer, got {}",
            self.what(),
            values[0]
        );
        Ok(values[0] as i64)
    }

    /// A vector label of `len` values.
    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f64>> {
        let (shape, values) = self.floats(name)?;
        ensure!(
            values.len() == len,
            "format `{}` needs label `{name}` with {len} values; {} has shape {shape:?}",
            self.format,
            self.what()
        );
        Ok(values)
    }

    /// The landmarks `[K, 2]` as `(x, y)` in our pixel convention.
    pub fn landmarks(&self) -> Result<Vec<[f64; 2]>> {
        let (shape, values) = self.floats(visage_core::labels::LANDMARKS)?;
        ensure!(
            shape.len() == 2 && shape[1] == 2,
            "label `landmarks` of {}: expected shape [K, 2], got {shape:?}",
            self.what()
        );
        Ok(values.chunks(2).map(|p| [p[0], p[1]]).collect())
    }

    /// The visibility of each landmark (all visible when the dataset has no
    /// `landmarks_visible`).
    pub fn visible(&self, points: usize) -> Result<Vec<bool>> {
        if !self.has(visage_core::labels::LANDMARKS_VISIBLE) {
            return Ok(vec![true; points]);
        }
        let v = self.vector(visage_core::labels::LANDMARKS_VISIBLE, points)?;
        Ok(v.iter().map(|&v| v > 0.5).collect())
    }

    /// The parsing mask: `(height, width, class ids)`, ids checked to fit
    /// `classes`.
    pub fn parsing(&self, classes: usize) -> Result<(usize, usize, Vec<u8>)> {
        let (shape, values) = self.floats(visage_core::labels::PARSING)?;
        ensure!(
            shape.len() == 2,
            "label `parsing` of {}: expected shape [H, W], got {shape:?}",
            self.what()
        );
        let ids = values
            .iter()
            .map(|&v| {
                if v >= 0.0 && v < classes as f64 && v.fract() == 0.0 {
                    Ok(v as u8)
                } else {
                    Err(Error::msg(format!(
                        "label `parsing` of {}: class id {v} is not one of 0..{classes}",
                        self.what()
                    )))
                }
            })
            .collect::<Result<Vec<u8>>>()?;
        Ok((shape[0] as usize, shape[1] as usize, ids))
    }

    /// The image as uint8 `[3, H, W]`.
    pub fn image_u8(&self) -> Result<Tensor> {
        io::to_u8(&self.image).with_context(|| format!("the image of {}", self.what()))
    }

    /// Resizes the image to `size x size` and scales the geometric labels
    /// with it: landmarks by the size ratio (exact in the pixel-corner
    /// convention), the parsing mask by nearest neighbour.
    pub(crate) fn resize(&mut self, size: i64) -> Result<()> {
        let shape = self.image.size();
        ensure!(
            shape.len() == 3,
            "the image of {} has shape {shape:?}, expected [C, H, W]",
            self.what()
        );
        let (h, w) = (shape[1], shape[2]);
        if (h, w) == (size, size) {
            return Ok(());
        }
        self.image = self
            .image
            .f_to_kind(Kind::Float)
            .and_then(|t| t.f_unsqueeze(0))
            .and_then(|t| t.f_internal_upsample_bilinear2d_aa([size, size], false, None, None))
            .and_then(|t| t.f_squeeze_dim(0))
            .with_context(|| format!("resizing the image of {}", self.what()))?;
        if let Some(marks) = self.labels.get(visage_core::labels::LANDMARKS) {
            let scale = Tensor::from_slice(&[size as f64 / w as f64, size as f64 / h as f64]);
            let scaled = marks
                .f_to_kind(Kind::Double)
                .and_then(|m| m.f_mul(&scale))
                .and_then(|m| m.f_to_kind(marks.kind()))
                .with_context(|| format!("label `landmarks` of {}: expected shape [K, 2]", self.what()))?;
            self.labels.insert(visage_core::labels::LANDMARKS.into(), scaled);
        }
        if let Some(mask) = self.labels.get(visage_core::labels::PARSING) {
            ensure!(
                mask.size() == [h, w],
                "label `parsing` of {} has shape {:?}, the image {h}x{w}",
                self.what(),
                mask.size()
            );
            // Output pixel centre (i + 0.5) * h / size, in source pixels.
            let rows: Vec<i64> = (0..size).map(|i| ((2 * i + 1) * h / (2 * size)).min(h - 1)).collect();
            let cols: Vec<i64> = (0..size).map(|j| ((2 * j + 1) * w / (2 * size)).min(w - 1)).collect();
            let resized = mask
                .f_index_select(0, &Tensor::from_slice(&rows))
                .and_then(|m| m.f_index_select(1, &Tensor::from_slice(&cols)))?;
            self.labels.insert(visage_core::labels::PARSING.into(), resized);
        }
        Ok(())
    }
}
