//! HRNet's 300W CSV (`image_name,scale,center_w,center_h,x0,y0,...`):
//! reader, writer and the dataset `hrnet_csv`. The face box is `centre +-
//! 100 * scale`. Coordinates are 0-based pixel centres (HRNet adds 1
//! before its MATLAB-style transform), so a value is our `x - 0.5`.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetInfo, LandmarkLayout};
use visage_core::{labels, Result};

use crate::alignment::zero_based;
use crate::error::{bail, ensure};
use crate::files::{non_empty, number, read_text, ImageFiles, Item, Label};
use crate::{io, split_name, Job};

/// One CSV row in our pixel convention.
#[derive(Debug, Clone, PartialEq)]
pub struct HrnetRow {
    /// The image path as written (relative to the images folder).
    pub image: String,
    /// The box side over 200.
    pub scale: f64,
    /// The box centre.
    pub centre: [f64; 2],
    /// The points.
    pub landmarks: Vec<[f64; 2]>,
}

impl HrnetRow {
    /// The face box `x0, y0, x1, y1`: `centre +- 100 * scale`.
    pub fn face_box(&self) -> [f64; 4] {
        let half = 100.0 * self.scale;
        [
            self.centre[0] - half,
            self.centre[1] - half,
            self.centre[0] + half,
            self.centre[1] + half,
        ]
    }
}

/// Reads an HRNet CSV; a first line whose `scale` field is not a number is
/// the header. Every row must have as many points as the first.
pub fn read_hrnet_csv(path: &Path) -> Result<Vec<HrnetRow>> {
    let text = read_text(path)?;
    let mut rows: Vec<HrnetRow> = vec![];
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if line.trim().is_empty() || (n == 1 && fields.get(1).is_some_and(|f| f.parse::<f64>().is_err())) {
            continue;
        }
        ensure!(
            fields.len() >= 6 && fields.len() % 2 == 0,
            "{}:{n}: expected `image,scale,center_w,center_h,x0,y0,...` (an even number of fields, at least 6), found {} fields",
            path.display(),
            fields.len()
        );
        let scale = number(fields[1], path, n, "the scale")?;
        if scale <= 0.0 {
            bail!("{}:{n}: the scale is {scale}, expected > 0", path.display());
        }
        let cx = number(fields[2], path, n, "center_w")?;
        let cy = number(fields[3], path, n, "center_h")?;
        let mut landmarks = vec![];
        for (i, xy) in fields[4..].chunks(2).enumerate() {
            let what = format!("point {i} (x, y)");
            landmarks.push([
                number(xy[0], path, n, &what)? + 0.5,
                number(xy[1], path, n, &what)? + 0.5,
            ]);
        }
        if let Some(first) = rows.first() {
            ensure!(
                landmarks.len() == first.landmarks.len(),
                "{}:{n}: {} points, expected {} as the first row",
                path.display(),
                landmarks.len(),
                first.landmarks.len()
            );
        }
        rows.push(HrnetRow {
            image: fields[0].to_string(),
            scale,
            centre: [cx + 0.5, cy + 0.5],
            landmarks,
        });
    }
    Ok(rows)
}

/// `<out>/face_landmarks_300w_{train,test}.csv` (HRNet's names) with the
/// header `image_name,scale,center_w,center_h,original_0_x,original_0_y,...`
/// and images under `<out>/images/` (`<split>/<split>_00001.jpg`, the
/// rows' paths). Box: the landmarks' bounds' centre, `scale` = the longer
/// side / 200; 6 decimals.
pub fn hrnet_csv(ex: &Job) -> Result<()> {
    for split in ex.splits() {
        let mut text = String::new();
        for item in ex.records(split) {
            let item = item?;
            let marks = item.landmarks()?;
            if text.is_empty() {
                text += "image_name,scale,center_w,center_h";
                for i in 0..marks.len() {
                    text += &format!(",original_{i}_x,original_{i}_y");
                }
                text += "\n";
            }
            let path = format!("{0}/{0}_{1:05}.jpg", split_name(split), item.number());
            let (lo, hi) = super::bounds(&marks);
            let scale = (hi[0] - lo[0]).max(hi[1] - lo[1]) / 200.0;
            let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
            let mut fields = vec![path.clone(), format!("{scale:.6}")];
            fields.extend(centre.iter().map(|&c| format!("{:.6}", zero_based(c))));
            fields.extend(marks.iter().flatten().map(|&v| format!("{:.6}", zero_based(v))));
            text += &(fields.join(",") + "\n");
            io::save_image(&ex.out.join("images").join(&path), &item.image_u8()?)?;
        }
        io::write_text(
            &ex.out.join(format!("face_landmarks_300w_{}.csv", split_name(split))),
            &text,
        )?;
    }
    Ok(())
}

/// Parameters of the dataset `hrnet_csv`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HrnetParams {
    /// The CSV of the train split.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The CSV of the test split.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// The folder the rows' image paths are relative to (default: `images/`
    /// beside the CSV).
    #[serde(default)]
    pub images: Option<PathBuf>,
}

/// The rows of an HRNet CSV: labels `landmarks` (iBUG-68) and `box`.
pub fn hrnet_dataset(csv: &Path, images: Option<&Path>) -> Result<ImageFiles> {
    let base = match images {
        Some(dir) => dir.to_path_buf(),
        None => csv.parent().unwrap_or(Path::new(".")).join("images"),
    };
    let mut items = vec![];
    for (i, row) in read_hrnet_csv(csv)?.into_iter().enumerate() {
        ensure!(
            row.landmarks.len() == labels::IBUG68,
            "{}: row {} has {} points, expected 68 (iBUG-68)",
            csv.display(),
            i + 1,
            row.landmarks.len()
        );
        let image = base.join(&row.image);
        ensure!(
            image.is_file(),
            "{}: row {}: image {} not found",
            csv.display(),
            i + 1,
            image.display()
        );
        items.push(Item {
            image,
            labels: vec![
                (labels::LANDMARKS, Label::points(&row.landmarks)),
                (labels::BOX, Label::vector(&row.face_box())),
            ],
        });
    }
    let info = DatasetInfo {
        landmarks: Some(LandmarkLayout::ibug68(true)),
        ..Default::default()
    };
    Ok(ImageFiles::new(non_empty(items, csv, "rows")?, info))
}
