//! The AFLW-19 reader and the dataset `aflw19`: `AFLWinfo_release.mat`
//! with `bbox` (N x 4: left, right, top, bottom), `data` (N x 38: x1..x19
//! then y1..y19), `mask_new` (N x 19, 1 visible), `nameList` (N cells) and
//! `ra` (a 1-based permutation: its first `train_count` faces are the train
//! split, the rest the test split), all 1-based MATLAB pixel centres (we
//! subtract 0.5).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetInfo, LandmarkLayout, Split};
use visage_core::{labels, Result};

use crate::codec::mat::{self, Value};
use crate::error::{bail, ensure, Context};
use crate::files::{non_empty, read_bytes, ImageFiles, Item, Label};

/// AFLW-19's points.
pub const AFLW19_POINTS: usize = 19;

/// The train faces of the real file (`ra(1:20000)`).
pub const AFLW19_TRAIN: usize = 20000;

/// One AFLW face.
#[derive(Debug, Clone, PartialEq)]
pub struct AflwFace {
    /// The image path, relative to the images folder.
    pub name: String,
    /// The box `x0, y0, x1, y1`, our pixel convention.
    pub face_box: [f64; 4],
    /// The 19 points, our pixel convention.
    pub landmarks: Vec<[f64; 2]>,
    /// Whether each point is visible.
    pub visible: Vec<bool>,
}

/// The faces of `AFLWinfo_release.mat`, in file order, and `ra` as 0-based
/// indices.
#[derive(Debug, Clone)]
pub struct AflwInfo {
    /// The faces.
    pub faces: Vec<AflwFace>,
    /// `ra - 1`.
    pub order: Vec<usize>,
}

/// The AFLW-19 layout: inter-ocular 6 and 11, pupils 7 and 10, a box.
pub fn aflw19_layout() -> LandmarkLayout {
    LandmarkLayout {
        name: "aflw19".into(),
        count: AFLW19_POINTS,
        inter_ocular: Some([6, 11]),
        pupils: Some([vec![7], vec![10]]),
        has_box: true,
    }
}

/// A matrix variable with `cols` columns.
fn columns(file: &mat::MatFile, path: &Path, name: &str, cols: usize) -> Result<(usize, Vec<f64>)> {
    let (r, c, values) = file.matrix(name).with_context(|| path.display())?;
    ensure!(
        c == cols,
        "{}: `{name}` is {r}x{c}, expected N x {cols}",
        path.display()
    );
    Ok((r, values))
}

/// Reads `AFLWinfo_release.mat`.
pub fn read_aflw19(path: &Path) -> Result<AflwInfo> {
    let file = mat::read(&read_bytes(path)?).with_context(|| path.display())?;
    let (n, bbox) = columns(&file, path, "bbox", 4)?;
    let (rows, data) = columns(&file, path, "data", 2 * AFLW19_POINTS)?;
    let (masks, mask) = columns(&file, path, "mask_new", AFLW19_POINTS)?;
    ensure!(
        rows == n && masks == n,
        "{}: `bbox` has {n} rows, `data` {rows}, `mask_new` {masks}; expected one per face",
        path.display()
    );
    let names = match file.value("nameList").with_context(|| path.display())? {
        Value::Cell(items) if items.len() == n => items,
        other => bail!(
            "{}: `nameList` is a {other:?}, expected a cell array of {n} file names",
            path.display()
        ),
    };
    let (r, c, ra) = file.matrix("ra").with_context(|| path.display())?;
    ensure!(
        r * c == n,
        "{}: `ra` is {r}x{c}, expected 1 x {n} (a permutation of the faces)",
        path.display()
    );
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for (k, &v) in ra.iter().enumerate() {
        let i = v as usize;
        ensure!(
            v.fract() == 0.0 && v >= 1.0 && i <= n && !seen[i - 1],
            "{}: `ra` record {}: {v} is not an unused face number in 1..={n}",
            path.display(),
            k + 1
        );
        seen[i - 1] = true;
        order.push(i - 1);
    }
    let mut faces = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        let Value::Char(name) = name else {
            bail!(
                "{}: `nameList` record {}: a {name:?}, expected a file name",
                path.display(),
                i + 1
            )
        };
        faces.push(face(
            path,
            i,
            name,
            &bbox[4 * i..4 * i + 4],
            &data[38 * i..38 * i + 38],
            &mask[19 * i..19 * i + 19],
        )?);
    }
    Ok(AflwInfo { faces, order })
}

/// Face `i` from its rows.
fn face(path: &Path, i: usize, name: &str, bbox: &[f64], data: &[f64], mask: &[f64]) -> Result<AflwFace> {
    ensure!(
        bbox.iter().chain(data).all(|v| v.is_finite()) && bbox[0] <= bbox[1] && bbox[2] <= bbox[3],
        "{}: record {}: `bbox` {bbox:?} is not left <= right, top <= bottom (or a value is not finite)",
        path.display(),
        i + 1
    );
    let mut visible = Vec::with_capacity(AFLW19_POINTS);
    for (k, &m) in mask.iter().enumerate() {
        ensure!(
            m == 0.0 || m == 1.0,
            "{}: record {}: `mask_new` point {} is {m}, expected 0 or 1",
            path.display(),
            i + 1,
            k + 1
        );
        visible.push(m == 1.0);
    }
    Ok(AflwFace {
        name: name.to_string(),
        face_box: [bbox[0] - 0.5, bbox[2] - 0.5, bbox[1] - 0.5, bbox[3] - 0.5],
        landmarks: (0..AFLW19_POINTS)
            .map(|k| [data[k] - 0.5, data[19 + k] - 0.5])
            .collect(),
        visible,
    })
}

/// Parameters of the dataset `aflw19`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Aflw19Params {
    /// `AFLWinfo_release.mat`.
    pub file: PathBuf,
    /// The folder `nameList`'s paths are relative to (default: `flickr/`
    /// beside the file).
    #[serde(default)]
    pub images: Option<PathBuf>,
    /// How many faces of `ra` are the train split. Default: the number of
    /// names under `train/` when every name is under `train/` or `test/`
    /// (`runner export`), else 20000 (the real file).
    #[serde(default)]
    pub train_count: Option<usize>,
    /// Test split: only the "frontal" faces (all 19 points visible).
    #[serde(default)]
    pub frontal: bool,
}

/// The faces of `split`: labels `landmarks` (19), `landmarks_visible`, `box`.
pub fn aflw19_dataset(p: &Aflw19Params, split: Split) -> Result<ImageFiles> {
    let info = read_aflw19(&p.file)?;
    let exported = info
        .faces
        .iter()
        .all(|f| f.name.starts_with("train/") || f.name.starts_with("test/"));
    let train = p.train_count.unwrap_or(if exported {
        info.faces.iter().filter(|f| f.name.starts_with("train/")).count()
    } else {
        AFLW19_TRAIN
    });
    ensure!(
        train <= info.order.len(),
        "{}: train_count {train} is more than the {} faces",
        p.file.display(),
        info.order.len()
    );
    let base = match &p.images {
        Some(dir) => dir.clone(),
        None => p.file.parent().unwrap_or(Path::new(".")).join("flickr"),
    };
    let chosen = match split {
        Split::Train => &info.order[..train],
        Split::Test => &info.order[train..],
    };
    let mut items = vec![];
    for &i in chosen {
        let face = &info.faces[i];
        if split == Split::Test && p.frontal && face.visible.iter().any(|v| !v) {
            continue;
        }
        let visible: Vec<f64> = face.visible.iter().map(|&v| if v { 1.0 } else { 0.0 }).collect();
        items.push(Item {
            image: base.join(&face.name),
            labels: vec![
                (labels::LANDMARKS, Label::points(&face.landmarks)),
                (labels::LANDMARKS_VISIBLE, Label::vector(&visible)),
                (labels::BOX, Label::vector(&face.face_box)),
            ],
        });
    }
    let info = DatasetInfo {
        landmarks: Some(aflw19_layout()),
        ..Default::default()
    };
    Ok(ImageFiles::new(non_empty(items, &p.file, "faces in this split")?, info))
}
