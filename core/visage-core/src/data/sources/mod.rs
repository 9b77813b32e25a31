//! Built-in image datasets: `image_folder` and `file_list`.

mod file_list;
mod image_folder;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use file_list::{FileList, FileListParams};
pub use image_folder::{ImageFolder, ImageFolderParams, LabelFrom};

use super::decode::load_image;
use crate::augment::Size;
use crate::{Error, Registry, Result, Sample};

/// Registers `image_folder` and `file_list`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.dataset("image_folder", |p: ImageFolderParams, ctx| {
        ImageFolder::new(p, ctx.split)
    })?;
    registry.dataset("file_list", |p: FileListParams, ctx| FileList::new(p, ctx.split))?;
    Ok(())
}

/// What a dataset does with a file it cannot read or decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnBadSample {
    /// Stop with an error naming the file and what is wrong.
    #[default]
    Error,
    /// Log the file (`warn`) and replace the sample (see [`crate::data`]);
    /// the loader logs the number skipped at the end of each epoch.
    Skip,
}

/// Image files with optional integer class labels, shared by both sources.
#[derive(Debug)]
pub(crate) struct Files {
    pub paths: Vec<PathBuf>,
    pub labels: Option<Vec<i64>>,
    pub resize: Option<(u32, u32)>,
    pub skip: bool,
}

impl Files {
    fn get(&self, index: usize) -> Result<Sample> {
        let path = self
            .paths
            .get(index)
            .ok_or_else(|| Error::msg(format!("index {index} is out of range (0..{})", self.paths.len())))?;
        let mut sample = Sample::new(load_image(path, self.resize, self.skip)?);
        if let Some(labels) = &self.labels {
            sample = sample.with_label("class", Tensor::from(labels[index]));
        }
        Ok(sample)
    }
}

/// `resize` as `(height, width)`: one number is a square.
fn resize_hw(size: Option<Size>) -> Result<Option<(u32, u32)>> {
    let Some(size) = size else { return Ok(None) };
    let (h, w) = match size {
        Size::Single(s) => (s, s),
        Size::HeightWidth([h, w]) => (h, w),
    };
    if h <= 0 || w <= 0 || h > 65535 || w > 65535 {
        return Err(crate::augment::bad(
            "resize",
            format!("must be 1..=65535 pixels, got {size:?}"),
        ));
    }
    Ok(Some((h as u32, w as u32)))
}

/// The split's path: `train` for the train split, `test` (when set) for the
/// test split.
fn split_path<'a>(
    split: crate::dataset::Split,
    train: &'a Path,
    test: Option<&'a Path>,
    train_field: &str,
    test_field: &str,
) -> Result<&'a Path> {
    match split {
        crate::dataset::Split::Train => Ok(train),
        crate::dataset::Split::Test => test.ok_or_else(|| {
            crate::augment::bad(
                test_field,
                format!("the test split is read here, but only `{train_field}` (the train split) is set"),
            )
        }),
    }
}

macro_rules! impl_dataset {
    ($t:ty) => {
        impl $crate::dataset::Dataset for $t {
            fn len(&self) -> usize {
                self.files.paths.len()
            }
            fn get(&self, index: usize) -> $crate::Result<$crate::Sample> {
                self.files.get(index)
            }
            fn source(&self, index: usize) -> Option<std::path::PathBuf> {
                self.files.paths.get(index).cloned()
            }
        }
    };
}
pub(crate) use impl_dataset;
