//! The WFLW list reader and the dataset `wflw`: lines of 196 coordinates
//! (0-based pixel centres: we add 0.5), the box `x_min y_min x_max y_max`
//! (read as is, as [`super::wflw_line`] writes it), 6 attribute flags and
//! the image path.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetInfo, LandmarkLayout};
use visage_core::{labels, Result};

use super::WFLW_POINTS;
use crate::error::ensure;
use crate::files::{non_empty, number, read_text, ImageFiles, Item, Label};

/// One WFLW face.
#[derive(Debug, Clone, PartialEq)]
pub struct WflwFace {
    /// The 98 points, our pixel convention.
    pub landmarks: Vec<[f64; 2]>,
    /// The box `x0, y0, x1, y1`.
    pub face_box: [f64; 4],
    /// Pose, expression, illumination, make-up, occlusion, blur.
    pub attributes: [bool; 6],
    /// The image path, relative to `WFLW_images/`.
    pub image: String,
}

/// The WFLW layout: 98 points, inter-ocular 60 and 72, pupils 96 and 97,
/// a box.
pub fn wflw98() -> LandmarkLayout {
    LandmarkLayout {
        name: "wflw98".into(),
        count: WFLW_POINTS,
        inter_ocular: Some([60, 72]),
        pupils: Some([vec![96], vec![97]]),
        has_box: true,
    }
}

/// Reads a `list_98pt_rect_attr_*.txt`.
pub fn read_wflw_list(path: &Path) -> Result<Vec<WflwFace>> {
    let text = read_text(path)?;
    let fields_per_line = 2 * WFLW_POINTS + 4 + 6 + 1;
    let mut faces = vec![];
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            fields.len() == fields_per_line,
            "{}:{n}: {} fields, expected {fields_per_line} (196 coordinates, 4 box values, 6 flags, the image path)",
            path.display(),
            fields.len()
        );
        let mut values = Vec::with_capacity(200);
        for (i, f) in fields[..200].iter().enumerate() {
            let what = if i < 196 {
                format!("coordinate {} of point {}", if i % 2 == 0 { "x" } else { "y" }, i / 2)
            } else {
                format!("box value {}", i - 195)
            };
            values.push(number(f, path, n, &format!("a number ({what})"))?);
        }
        let mut attributes = [false; 6];
        for (k, f) in fields[200..206].iter().enumerate() {
            ensure!(
                *f == "0" || *f == "1",
                "{}:{n}: attribute flag {} is `{f}`, expected 0 or 1",
                path.display(),
                k + 1
            );
            attributes[k] = *f == "1";
        }
        faces.push(WflwFace {
            landmarks: values[..196].chunks(2).map(|p| [p[0] + 0.5, p[1] + 0.5]).collect(),
            face_box: [values[196], values[197], values[198], values[199]],
            attributes,
            image: fields[206].to_string(),
        });
    }
    Ok(faces)
}

/// Parameters of the dataset `wflw`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WflwParams {
    /// The list of the train split.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The list of the test split.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// The images folder (default: `WFLW_images/` beside the list).
    #[serde(default)]
    pub images: Option<PathBuf>,
}

/// The faces of a WFLW list: labels `landmarks` (98 points) and `box`.
pub fn wflw_dataset(list: &Path, images: Option<&Path>) -> Result<ImageFiles> {
    let base = match images {
        Some(dir) => dir.to_path_buf(),
        None => list.parent().unwrap_or(Path::new(".")).join("WFLW_images"),
    };
    let mut items = vec![];
    for (i, face) in read_wflw_list(list)?.into_iter().enumerate() {
        let image = base.join(&face.image);
        ensure!(
            image.is_file(),
            "{}: face {}: image {} not found",
            list.display(),
            i + 1,
            image.display()
        );
        items.push(Item {
            image,
            labels: vec![
                (labels::LANDMARKS, Label::points(&face.landmarks)),
                (labels::BOX, Label::vector(&face.face_box)),
            ],
        });
    }
    let info = DatasetInfo {
        landmarks: Some(wflw98()),
        ..Default::default()
    };
    Ok(ImageFiles::new(non_empty(items, list, "faces")?, info))
}
