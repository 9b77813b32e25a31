//! `image_folder`: every image under a folder, at any depth.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{impl_dataset, resize_hw, split_path, Files, OnBadSample};
use crate::augment::Size;
use crate::dataset::Split;
use crate::{Error, Result};

/// Parameters of `image_folder`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageFolderParams {
    /// Folder of the train split, read recursively (relative to the working
    /// directory).
    pub root: PathBuf,
    /// Folder of the test split; needed only where the test split is read
    /// (evaluations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_root: Option<PathBuf>,
    /// File extensions read, compared case-insensitively, without the dot.
    #[serde(default = "default_extensions")]
    pub extensions: Vec<String>,
    /// Where the `class` label comes from.
    #[serde(default)]
    pub label: LabelFrom,
    /// Resize every image on decoding: one number (a square) or
    /// `[height, width]` (bilinear). Needed when the images differ in size
    /// and no augmentation makes them equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<Size>,
    /// What to do with a file that cannot be read or decoded.
    #[serde(default)]
    pub on_bad_sample: OnBadSample,
}

/// Where a class label comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LabelFrom {
    /// No label.
    #[default]
    None,
    /// `class` (int64) is the index of the file's first-level folder among
    /// the first-level folders holding images, sorted by name.
    Folder,
}

fn default_extensions() -> Vec<String> {
    vec!["jpg".into(), "jpeg".into(), "png".into()]
}

/// Every image file under a folder, sorted by path (so indices do not
/// depend on the file system's listing order).
#[derive(Debug)]
pub struct ImageFolder {
    files: Files,
    classes: Vec<String>,
}

impl ImageFolder {
    /// Lists the folder of `split`.
    pub fn new(p: ImageFolderParams, split: Split) -> Result<Self> {
        let root = split_path(split, &p.root, p.test_root.as_deref(), "root", "test_root")?;
        let extensions: Vec<String> = p
            .extensions
            .iter()
            .map(|e| e.trim_start_matches('.').to_lowercase())
            .collect();
        let mut paths = vec![];
        walk(root, &extensions, &mut paths)?;
        paths.sort();
        if paths.is_empty() {
            return Err(Error::msg(format!(
                "{}: no files with extension {} (at any depth)",
                root.display(),
                extensions.join(", ")
            )));
        }
        let (labels, classes) = match p.label {
            LabelFrom::None => (None, vec![]),
            LabelFrom::Folder => {
                let class_of = |path: &Path| -> Result<String> {
                    let rel = path.strip_prefix(root).unwrap_or(path);
                    let mut parts = rel.components();
                    match (parts.next(), parts.next()) {
                        (Some(first), Some(_)) => Ok(first.as_os_str().to_string_lossy().into_owned()),
                        _ => Err(Error::msg(format!(
                            "{}: label: folder needs every image inside a class folder of {}",
                            path.display(),
                            root.display()
                        ))),
                    }
                };
                let names = paths.iter().map(|p| class_of(p)).collect::<Result<Vec<_>>>()?;
                let mut classes = names.clone();
                classes.sort();
                classes.dedup();
                let labels = names
                    .iter()
                    .map(|n| classes.binary_search(n).map(|i| i as i64).unwrap_or(0))
                    .collect();
                (Some(labels), classes)
            }
        };
        Ok(ImageFolder {
            files: Files {
                paths,
                labels,
                resize: resize_hw(p.resize)?,
                skip: p.on_bad_sample == OnBadSample::Skip,
            },
            classes,
        })
    }

    /// The class names (first-level folders) in label order; empty without labels.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The image files in index order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.files.paths
    }
}

impl_dataset!(ImageFolder);

fn walk(dir: &Path, extensions: &[String], out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |e| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        // Follows links; a link to a parent folder would loop, so folders
        // are entered only when they are real directories or link to files.
        let meta = std::fs::metadata(&path);
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        match meta {
            Ok(m) if m.is_dir() && !is_link => walk(&path, extensions, out)?,
            Ok(m) if m.is_dir() => {}
            _ => {
                // Broken links and unreadable entries are listed too: reading
                // them is then a bad sample, handled by `on_bad_sample`.
                let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
                if ext.is_some_and(|e| extensions.contains(&e)) {
                    out.push(path);
                }
            }
        }
    }
    Ok(())
}
