//! AffectNet: `training.csv` (train) and `validation.csv` (test) with the
//! header `subDirectory_filePath,face_x,face_y,face_width,face_height,
//! facial_landmarks,expression,valence,arousal`; images under
//! `Manually_Annotated_Images/<subDirectory_filePath>`. Expressions 0-7
//! (neutral, happy, sad, surprise, fear, disgust, anger, contempt): 0-6
//! are our [`labels::EXPRESSIONS`] in the same order; 8-10 (none,
//! uncertain, no face) are dropped, and contempt (7) unless asked for.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetContext, Split};
use visage_core::labels;
use visage_core::Result;

use super::{expression, expression_info};
use crate::table::{Entry, Label, Pixels, Table};
use crate::text::{read_text, under, Line};
use crate::{io, split_name, Job};

/// The CSV header.
pub const HEADER: &str =
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal";

/// The image folder under the root.
pub const IMAGES: &str = "Manually_Annotated_Images";

/// AffectNet's contempt, the eighth class.
pub const CONTEMPT: usize = 7;

/// Parameters of the `affectnet` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AffectNetParams {
    /// The folder holding `training.csv`, `validation.csv` and
    /// `Manually_Annotated_Images/`.
    pub root: PathBuf,
    /// Keep contempt as class 7 (AffectNet-8); by default its rows are
    /// dropped (AffectNet-7).
    #[serde(default)]
    pub contempt: bool,
}

/// One row of an AffectNet CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct AffectNetRecord {
    /// The image.
    pub image: PathBuf,
    /// The face box `x0, y0, x1, y1` in pixels (from `face_x`, `face_y`,
    /// `face_width`, `face_height`).
    pub face: [f32; 4],
    /// AffectNet's expression 0-10 (0-6 = our index).
    pub expression: usize,
}

/// The CSV of a split.
pub fn file(split: Split) -> &'static str {
    match split {
        Split::Train => "training.csv",
        Split::Test => "validation.csv",
    }
}

/// Every row of `<root>/<training|validation>.csv`, images checked to exist.
pub fn read(root: &Path, split: Split) -> Result<Vec<AffectNetRecord>> {
    let path = root.join(file(split));
    let text = read_text(&path, "an AffectNet CSV")?;
    let mut lines = Line::all(&path, &text);
    let header = lines
        .next()
        .ok_or_else(|| visage_core::Error::msg(format!("{}: empty; expected the header `{HEADER}`", path.display())))?;
    if header.text.trim() != HEADER {
        return Err(header.error(format_args!("the header `{HEADER}`")));
    }
    lines.map(|line| record(root, &line)).collect()
}

/// One CSV row.
fn record(root: &Path, line: &Line) -> Result<AffectNetRecord> {
    let f = line.fields(Some(','), 9, HEADER)?;
    let image = under(&root.join(IMAGES), f[0], line)?;
    let mut face = [0f32; 4];
    for (k, name) in ["face_x", "face_y", "face_width", "face_height"].iter().enumerate() {
        face[k] = line.parse(f[1 + k], name)?;
    }
    let face = [face[0], face[1], face[0] + face[2], face[1] + face[3]];
    let expression: usize = line.parse(f[6], "the expression")?;
    if expression > 10 {
        return Err(line.error(format_args!("an expression 0-10, found {expression}")));
    }
    if expression <= CONTEMPT && !image.is_file() {
        return Err(line.error(format_args!("an image at {}, which is missing", image.display())));
    }
    Ok(AffectNetRecord {
        image,
        face,
        expression,
    })
}

/// The `affectnet` dataset: the split's rows with an expression 0-6 (0-7
/// with `contempt`), in file order, with `expression` and the face `box`.
/// Images are the files as stored (crop with the `box` label).
pub fn dataset(p: AffectNetParams, ctx: &DatasetContext) -> Result<Table> {
    let last = if p.contempt { CONTEMPT } else { CONTEMPT - 1 };
    let entries = read(&p.root, ctx.split)?
        .into_iter()
        .filter(|r| r.expression <= last)
        .map(|r| Entry {
            pixels: Pixels::File(r.image),
            labels: vec![
                (labels::EXPRESSION, Label::Int(r.expression as i64)),
                (labels::BOX, Label::Floats(r.face.to_vec())),
            ],
        })
        .collect();
    let mut info = expression_info(last + 1);
    info.labels.push(labels::BOX.into());
    Ok(Table::new(entries, info))
}

/// `<out>/training.csv` (train) and `<out>/validation.csv` (test), images
/// `<out>/Manually_Annotated_Images/<split>/<split>_00001.jpg`. The face box
/// is the whole image; `facial_landmarks` holds the sample's landmarks as
/// `x;y;...` in our pixel-corner convention when it has them (AffectNet
/// does not document its convention) and is empty otherwise; valence and
/// arousal are -2, AffectNet's "not annotated" (Visage has no such labels).
pub fn write(ex: &Job) -> Result<()> {
    for split in ex.splits() {
        let mut text = format!("{HEADER}\n");
        for record in ex.records(split) {
            let record = record?;
            let e = expression(&record)?;
            let path = format!("{0}/{0}_{1:05}.jpg", split_name(split), record.number());
            let pixels = record.image_u8()?;
            let (h, w) = (pixels.size()[1], pixels.size()[2]);
            let marks = if record.has(labels::LANDMARKS) {
                let points = record.landmarks()?;
                let values: Vec<String> = points
                    .iter()
                    .flat_map(|p| [p[0], p[1]])
                    .map(|v| format!("{v:.2}"))
                    .collect();
                values.join(";")
            } else {
                String::new()
            };
            io::save_image(&ex.out.join(IMAGES).join(&path), &pixels)?;
            text += &format!("{path},0,0,{w},{h},{marks},{e},-2,-2\n");
        }
        io::write_text(&ex.out.join(file(split)), &text)?;
    }
    Ok(())
}
