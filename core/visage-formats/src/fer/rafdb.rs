//! RAF-DB (basic) reader: `EmoLabel/list_patition_label.txt` (sic) with
//! lines `train_00001.jpg 5`, images `Image/aligned/train_00001_aligned.jpg`,
//! split by the `train_` / `test_` prefix.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetContext, Split};
use visage_core::labels;
use visage_core::Result;

use super::{expression_info, RAF_LABEL};
use crate::table::{Entry, Label, Pixels, Table};
use crate::text::{read_text, Line};

/// Parameters of the `rafdb` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RafDbParams {
    /// The RAF-DB `basic` folder (holding `EmoLabel/` and `Image/`).
    pub root: PathBuf,
}

/// One line of the label list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RafRecord {
    /// The aligned image.
    pub image: PathBuf,
    /// The split its name's prefix says.
    pub split: Split,
    /// The expression, an index into [`labels::EXPRESSIONS`].
    pub expression: usize,
}

/// The label list's path under `root`.
pub const LIST: &str = "EmoLabel/list_patition_label.txt";

/// Our expression index of RAF-DB label `raf` (1-7), the inverse of
/// [`RAF_LABEL`]: surprise 3, fear 4, disgust 5, happiness 1, sadness 2,
/// anger 6, neutral 0.
pub fn from_raf(raf: u8) -> Option<usize> {
    RAF_LABEL.iter().position(|&r| r == raf)
}

/// Every line of the label list (both splits), images checked to exist.
pub fn read(root: &Path) -> Result<Vec<RafRecord>> {
    let path = root.join(LIST);
    let text = read_text(&path, "RAF-DB's label list (`train_00001.jpg 5` lines)")?;
    Line::all(&path, &text).map(|line| record(root, &line)).collect()
}

/// One `train_00001.jpg 5` line.
fn record(root: &Path, line: &Line) -> Result<RafRecord> {
    let f = line.fields(None, 2, "image name, label 1-7")?;
    let stem = f[0]
        .strip_suffix(".jpg")
        .ok_or_else(|| line.error("an image name ending in .jpg"))?;
    let split = if stem.starts_with("train_") {
        Split::Train
    } else if stem.starts_with("test_") {
        Split::Test
    } else {
        return Err(line.error("an image name starting with `train_` or `test_`"));
    };
    if stem.contains(['/', '\\']) {
        return Err(line.error("a plain image name"));
    }
    let raf: u8 = line.parse(f[1], "the label")?;
    let expression = from_raf(raf).ok_or_else(|| line.error(format_args!("a label 1-7, found {raf}")))?;
    let image = root.join(format!("Image/aligned/{stem}_aligned.jpg"));
    if !image.is_file() {
        return Err(line.error(format_args!("an image at {}, which is missing", image.display())));
    }
    Ok(RafRecord {
        image,
        split,
        expression,
    })
}

/// The `rafdb` dataset: the split's lines in list order, with `expression`.
pub fn dataset(p: RafDbParams, ctx: &DatasetContext) -> Result<Table> {
    let entries = read(&p.root)?
        .into_iter()
        .filter(|r| r.split == ctx.split)
        .map(|r| Entry {
            pixels: Pixels::File(r.image),
            labels: vec![(labels::EXPRESSION, Label::Int(r.expression as i64))],
        })
        .collect();
    Ok(Table::new(entries, expression_info(labels::EXPRESSIONS.len())))
}
