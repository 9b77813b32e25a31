//! The 300W `.pts` reader and the dataset `pts300w`: `X.pts` beside `X.jpg`
//! (or `X.png`), 1-based MATLAB pixel centres (we subtract 0.5).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetInfo, LandmarkLayout};
use visage_core::{labels, Result};

use crate::error::{bail, ensure};
use crate::files::{find, non_empty, number, read_text, ImageFiles, Item, Label};

/// Reads a `.pts` file: `version: 1`, `n_points: N`, `{`, N lines `x y`,
/// `}`; the points in our pixel convention.
pub fn read_pts(path: &Path) -> Result<Vec<[f64; 2]>> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let mut next = |what: &str| match lines.next() {
        Some((n, l)) => Ok((n + 1, l.trim())),
        None => bail!("{}: the file ends early, expected {what}", path.display()),
    };
    let (n, version) = next("`version: 1`")?;
    ensure!(
        version.starts_with("version:"),
        "{}:{n}: expected `version: 1`, found `{version}`",
        path.display()
    );
    let (n, count) = next("`n_points: N`")?;
    let count = match count.strip_prefix("n_points:").map(|c| c.trim().parse::<usize>()) {
        Some(Ok(c)) => c,
        _ => bail!("{}:{n}: expected `n_points: N`, found `{count}`", path.display()),
    };
    let (n, open) = next("`{`")?;
    ensure!(open == "{", "{}:{n}: expected `{{`, found `{open}`", path.display());
    let mut points = Vec::with_capacity(count);
    for i in 0..count {
        let what = format!("point {} of {count} (`x y`)", i + 1);
        let (n, line) = next(&what)?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            fields.len() == 2,
            "{}:{n}: expected {what}, found `{line}`",
            path.display()
        );
        let x = number(fields[0], path, n, &what)?;
        let y = number(fields[1], path, n, &what)?;
        points.push([x - 0.5, y - 0.5]);
    }
    let (n, close) = next("`}`")?;
    ensure!(
        close == "}",
        "{}:{n}: expected `}}` after {count} points, found `{close}`",
        path.display()
    );
    Ok(points)
}

/// Parameters of the dataset `pts300w`: folders of `.pts` files beside
/// their images, at any depth (300W's `afw/`, `helen/trainset/`, ...).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PtsParams {
    /// The train folder.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The test folder.
    #[serde(default)]
    pub test: Option<PathBuf>,
}

/// The faces of a folder of `.pts` files: label `landmarks` (iBUG-68).
pub fn pts_dataset(root: &Path) -> Result<ImageFiles> {
    let mut items = vec![];
    for pts in find(root, ".pts")? {
        let points = read_pts(&pts)?;
        ensure!(
            points.len() == labels::IBUG68,
            "{}: {} points, expected 68 (iBUG-68)",
            pts.display(),
            points.len()
        );
        let image = ["jpg", "png"]
            .iter()
            .map(|e| pts.with_extension(e))
            .find(|p| p.is_file());
        let Some(image) = image else {
            bail!(
                "{}: no image beside it (expected .jpg or .png of the same name)",
                pts.display()
            )
        };
        items.push(Item {
            image,
            labels: vec![(labels::LANDMARKS, Label::points(&points))],
        });
    }
    let info = DatasetInfo {
        landmarks: Some(LandmarkLayout::ibug68(false)),
        ..Default::default()
    };
    Ok(ImageFiles::new(non_empty(items, root, ".pts files")?, info))
}
