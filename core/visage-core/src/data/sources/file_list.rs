//! `file_list`: images named in a text file.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{impl_dataset, resize_hw, split_path, Files, OnBadSample};
use crate::augment::Size;
use crate::dataset::Split;
use crate::{Error, Result};

/// Parameters of `file_list`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileListParams {
    /// The list of the train split: one `path [label]` per line, paths
    /// relative to the list's folder, `label` an integer (`class`, int64);
    /// blank lines and lines starting with `#` are ignored. Either every
    /// line has a label or none has. A path containing spaces is allowed
    /// when the line has no label or ends in one.
    pub file: PathBuf,
    /// The list of the test split; needed only where the test split is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<PathBuf>,
    /// Resize every image on decoding: one number (a square) or
    /// `[height, width]` (bilinear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<Size>,
    /// What to do with a file that cannot be read or decoded.
    #[serde(default)]
    pub on_bad_sample: OnBadSample,
}

/// Images named in a list file, in the list's order.
#[derive(Debug)]
pub struct FileList {
    files: Files,
}

impl FileList {
    /// Reads the list of `split`.
    pub fn new(p: FileListParams, split: Split) -> Result<Self> {
        let list = split_path(split, &p.file, p.test_file.as_deref(), "file", "test_file")?;
        let io = |e| Error::Io {
            path: list.to_path_buf(),
            source: e,
        };
        // A FIFO would block for ever, a device might never end.
        if !std::fs::metadata(list).map_err(io)?.is_file() {
            return Err(Error::msg(format!(
                "{}: the list is not a regular file",
                list.display()
            )));
        }
        let text = std::fs::read_to_string(list).map_err(io)?;
        let base = list.parent().map(PathBuf::from).unwrap_or_default();
        let mut paths = vec![];
        let mut labels = vec![];
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (path, label) = match line.rsplit_once(char::is_whitespace) {
                Some((path, last)) => match last.parse::<i64>() {
                    Ok(label) => (path.trim_end(), Some(label)),
                    Err(_) => (line, None),
                },
                None => (line, None),
            };
            if !paths.is_empty() && label.is_some() != (labels.len() == paths.len()) {
                return Err(Error::msg(format!(
                    "{}:{}: either every line has a label or none has",
                    list.display(),
                    n + 1
                )));
            }
            paths.push(base.join(path));
            labels.extend(label);
        }
        if paths.is_empty() {
            return Err(Error::msg(format!("{}: the list names no files", list.display())));
        }
        let labels = (labels.len() == paths.len()).then_some(labels);
        Ok(FileList {
            files: Files {
                paths,
                labels,
                resize: resize_hw(p.resize)?,
                skip: p.on_bad_sample == OnBadSample::Skip,
            },
        })
    }

    /// The image files in index order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.files.paths
    }
}

impl_dataset!(FileList);
