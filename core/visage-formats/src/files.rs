//! What the readers share: a [`Dataset`] of image files whose labels were
//! read up front ([`ImageFiles`]), the split's path from a dataset's
//! `train`/`test` parameters, and checked reads of text files and numbers
//! with errors naming the file and line.

use std::path::{Path, PathBuf};

use tch::Tensor;
use visage_core::data::decode::load_image;
use visage_core::dataset::{Dataset, DatasetInfo, Split};
use visage_core::{Error, Result, Sample};

use crate::error::{bail, io_error};
use crate::split_name;

/// One label's values (f32, as the generators' labels) and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// The tensor's shape.
    pub shape: Vec<i64>,
    /// The values, row-major.
    pub values: Vec<f32>,
}

impl Label {
    /// A vector label (`pose`, `box`, `landmarks_visible`).
    pub fn vector(values: &[f64]) -> Label {
        Label {
            shape: vec![values.len() as i64],
            values: values.iter().map(|&v| v as f32).collect(),
        }
    }

    /// A `[K, 2]` landmarks label.
    pub fn points(points: &[[f64; 2]]) -> Label {
        Label {
            shape: vec![points.len() as i64, 2],
            values: points.iter().flatten().map(|&v| v as f32).collect(),
        }
    }

    /// The label as a tensor.
    pub fn tensor(&self) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.values).f_view(self.shape.as_slice())?)
    }
}

/// One sample: the image file and its labels.
#[derive(Debug, Clone)]
pub struct Item {
    /// The image file.
    pub image: PathBuf,
    /// The labels by name (`visage_core::labels`).
    pub labels: Vec<(&'static str, Label)>,
}

/// A dataset of image files with labels read up front: `get` decodes the
/// image and attaches the labels.
pub struct ImageFiles {
    items: Vec<Item>,
    info: DatasetInfo,
}

impl ImageFiles {
    /// A dataset of `items`; `info.labels` is filled from the first item.
    pub fn new(items: Vec<Item>, mut info: DatasetInfo) -> Self {
        if let Some(first) = items.first() {
            info.labels = first.labels.iter().map(|(n, _)| n.to_string()).collect();
        }
        ImageFiles { items, info }
    }

    /// The samples, in index order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }
}

impl Dataset for ImageFiles {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let Some(item) = self.items.get(index) else {
            bail!("index {index} is out of range (0..{})", self.items.len())
        };
        let mut sample = Sample::new(load_image(&item.image, None, false)?);
        for (name, label) in &item.labels {
            sample = sample.with_label(*name, label.tensor()?);
        }
        Ok(sample)
    }

    fn source(&self, index: usize) -> Option<PathBuf> {
        self.items.get(index).map(|i| i.image.clone())
    }

    fn info(&self) -> DatasetInfo {
        self.info.clone()
    }
}

/// The path of `split`: `train` or `test`, whichever the split reads; an
/// error naming the dataset and the parameter when it is not set.
pub fn split_path<'a>(
    dataset: &str,
    split: Split,
    train: Option<&'a Path>,
    test: Option<&'a Path>,
) -> Result<&'a Path> {
    let (path, key) = match split {
        Split::Train => (train, "train"),
        Split::Test => (test, "test"),
    };
    match path {
        Some(p) => Ok(p),
        None => bail!(
            "dataset `{dataset}`: the {} split is read from the parameter `{key}`, which is not set",
            split_name(split)
        ),
    }
}

/// The text of `path`, or an error naming it.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, "cannot read", e))
}

/// The bytes of `path`, or an error naming it.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_error(path, "cannot read", e))
}

/// `field` as a finite number, or an error
/// ``<path>:<line>: expected <what>, found `<field>` ``.
pub fn number(field: &str, path: &Path, line: usize, what: &str) -> Result<f64> {
    match field.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => bail!("{}:{line}: expected {what}, found `{field}`", path.display()),
    }
}

/// Every file under `root` (any depth) whose name ends with `suffix`,
/// sorted; an error naming `root` when it cannot be listed.
pub fn find(root: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| io_error(&dir, "cannot list the folder", e))?;
        for entry in entries {
            let path = entry.map_err(|e| io_error(&dir, "cannot list the folder", e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(suffix)) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// An error unless `items` holds at least one sample.
pub fn non_empty(items: Vec<Item>, root: &Path, what: &str) -> Result<Vec<Item>> {
    if items.is_empty() {
        return Err(Error::msg(format!("{}: no {what} found", root.display())));
    }
    Ok(items)
}
