//! The LaPa reader and the dataset `lapa`: `<split>/images/<stem>.jpg`,
//! `labels/<stem>.png` (grey ids 0-10) and `landmarks/<stem>.txt` (a count
//! line, then one `x y` line per point, 0-based pixel centres: we add 0.5).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;
use visage_core::data::decode::load_image;
use visage_core::dataset::{Dataset, DatasetInfo, LandmarkLayout, Split};
use visage_core::{labels, Result, Sample};

use super::mask::read_label_map;
use crate::error::{bail, ensure};
use crate::files::{number, read_text, Label};

/// Reads a LaPa landmarks file; the points in our pixel convention.
pub fn read_lapa_landmarks(path: &Path) -> Result<Vec<[f64; 2]>> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let count = match lines.next() {
        Some((_, l)) if l.trim().parse::<usize>().is_ok() => l.trim().parse::<usize>().unwrap_or(0),
        Some((n, l)) => bail!(
            "{}:{}: expected the point count, found `{}`",
            path.display(),
            n + 1,
            l.trim()
        ),
        None => bail!("{}: empty, expected the point count then `x y` lines", path.display()),
    };
    let mut points = Vec::with_capacity(count);
    for i in 0..count {
        let what = format!("point {} of {count} (`x y`)", i + 1);
        let Some((n, line)) = lines.next() else {
            bail!("{}: ends after {i} points, expected {what}", path.display())
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            fields.len() == 2,
            "{}:{}: expected {what}, found `{}`",
            path.display(),
            n + 1,
            line.trim()
        );
        points.push([
            number(fields[0], path, n + 1, &what)? + 0.5,
            number(fields[1], path, n + 1, &what)? + 0.5,
        ]);
    }
    if let Some((n, line)) = lines.next() {
        bail!(
            "{}:{}: `{}` after the {count} points the first line announces",
            path.display(),
            n + 1,
            line.trim()
        );
    }
    Ok(points)
}

/// Parameters of the dataset `lapa`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LapaParams {
    /// The folder holding `train/`, `val/` and `test/`.
    pub root: PathBuf,
    /// The folder the test split reads: `test` (default) or `val`.
    #[serde(default = "test_folder")]
    pub test_folder: String,
}

fn test_folder() -> String {
    "test".into()
}

/// One LaPa face's files and landmarks.
#[derive(Debug, Clone)]
struct Face {
    image: PathBuf,
    labels: PathBuf,
    landmarks: Vec<[f64; 2]>,
}

/// The faces of one LaPa split: labels `parsing` (LaPa's 11 classes) and
/// `landmarks`. Landmark files are read when the dataset is built; masks
/// and images when a sample is.
pub struct Lapa {
    faces: Vec<Face>,
    layout: LandmarkLayout,
}

impl Lapa {
    /// The faces of `split` (`train/`, or `test_folder` for the test split).
    pub fn new(p: &LapaParams, split: Split) -> Result<Lapa> {
        let dir = p.root.join(match split {
            Split::Train => "train",
            Split::Test => &p.test_folder,
        });
        let images = dir.join("images");
        let mut stems: Vec<String> = std::fs::read_dir(&images)
            .map_err(|e| crate::error::io_error(&images, "cannot list the folder", e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(".jpg").map(str::to_string))
            .collect();
        stems.sort();
        ensure!(!stems.is_empty(), "{}: no .jpg images", images.display());
        let mut faces = Vec::with_capacity(stems.len());
        for stem in stems {
            let labels = dir.join("labels").join(format!("{stem}.png"));
            ensure!(
                labels.is_file(),
                "{}: missing, expected the label map of images/{stem}.jpg",
                labels.display()
            );
            let landmarks = read_lapa_landmarks(&dir.join("landmarks").join(format!("{stem}.txt")))?;
            if let Some(first) = faces.first().map(|f: &Face| f.landmarks.len()) {
                ensure!(
                    landmarks.len() == first,
                    "{}: {} points, expected {first} as the other faces",
                    dir.join("landmarks").join(format!("{stem}.txt")).display(),
                    landmarks.len()
                );
            }
            faces.push(Face {
                image: images.join(format!("{stem}.jpg")),
                labels,
                landmarks,
            });
        }
        let layout = layout(faces[0].landmarks.len());
        Ok(Lapa { faces, layout })
    }
}

/// iBUG-68 for 68 points (`runner export`), else `lapa<N>` with no
/// normalisation points (LaPa's 106 points are not described here).
fn layout(count: usize) -> LandmarkLayout {
    if count == labels::IBUG68 {
        return LandmarkLayout::ibug68(false);
    }
    LandmarkLayout {
        name: format!("lapa{count}"),
        count,
        inter_ocular: None,
        pupils: None,
        has_box: false,
    }
}

impl Dataset for Lapa {
    fn len(&self) -> usize {
        self.faces.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let Some(face) = self.faces.get(index) else {
            bail!("index {index} is out of range (0..{})", self.faces.len())
        };
        let image = load_image(&face.image, None, false)?;
        let (h, w, ids) = read_label_map(&face.labels, labels::LAPA_CLASSES.len())?;
        let size = image.size();
        ensure!(
            size[1..] == [h as i64, w as i64],
            "{}: {h}x{w}, but its image {} is {}x{}",
            face.labels.display(),
            face.image.display(),
            size[1],
            size[2]
        );
        let ids: Vec<i64> = ids.iter().map(|&c| c as i64).collect();
        Ok(Sample::new(image)
            .with_label(labels::PARSING, Tensor::from_slice(&ids).f_view([h as i64, w as i64])?)
            .with_label(labels::LANDMARKS, Label::points(&face.landmarks).tensor()?))
    }

    fn source(&self, index: usize) -> Option<PathBuf> {
        self.faces.get(index).map(|f| f.image.clone())
    }

    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec![labels::PARSING.into(), labels::LANDMARKS.into()],
            landmarks: Some(self.layout.clone()),
            parsing_classes: Some(labels::LAPA_CLASSES.iter().map(|c| c.to_string()).collect()),
            ..Default::default()
        }
    }
}
