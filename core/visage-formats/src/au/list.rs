//! What the two AU list readers share: the parameters (a root and one list
//! file per split), the records and the dataset they make.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetContext, DatasetInfo, Split};
use visage_core::labels;
use visage_core::Result;

use crate::table::{Entry, Label, Pixels, Table};
use crate::text::{read_text, Line};

/// Parameters of the `disfa` and `bp4d` datasets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuListParams {
    /// The folder the lists' image paths are relative to.
    pub root: PathBuf,
    /// The train list under `root` (default `train.csv` for `disfa`,
    /// `train.txt` for `bp4d`).
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The test list under `root` (default `test.csv` / `test.txt`).
    #[serde(default)]
    pub test: Option<PathBuf>,
}

/// One image and its AU occurrences.
#[derive(Debug, Clone, PartialEq)]
pub struct AuRecord {
    /// The image.
    pub image: PathBuf,
    /// 1.0 (present) or 0.0 (absent) per unit, in the list's unit order.
    pub au: Vec<f32>,
}

/// A list's unit names (`AU1`, ...) and records.
pub type AuList = (Vec<String>, Vec<AuRecord>);

/// The list of `split`: `p.train` / `p.test` or `<split>.<ext>`.
pub fn list_path(p: &AuListParams, split: Split, ext: &str) -> PathBuf {
    let chosen = match split {
        Split::Train => p.train.clone(),
        Split::Test => p.test.clone(),
    };
    p.root
        .join(chosen.unwrap_or_else(|| format!("{}.{ext}", crate::split_name(split)).into()))
}

/// Reads a list with `parse` (which gets the non-empty lines, numbered).
pub fn read_with(path: &Path, what: &str, parse: impl FnOnce(Vec<Line>) -> Result<AuList>) -> Result<AuList> {
    let text = read_text(path, what)?;
    parse(Line::all(path, &text).collect())
}

/// The image at `relative` under `root`, checked to exist.
pub fn image(root: &Path, relative: &str, line: &Line) -> Result<PathBuf> {
    let path = crate::text::under(root, relative, line)?;
    if !path.is_file() {
        return Err(line.error(format_args!("an image at {}, which is missing", path.display())));
    }
    Ok(path)
}

/// The dataset of a list: `au` float `[K]` in the list's unit order,
/// `info().action_units` the units.
pub fn table((units, records): AuList) -> Table {
    let entries = records
        .into_iter()
        .map(|r| Entry {
            pixels: Pixels::File(r.image),
            labels: vec![(labels::AU, Label::Floats(r.au))],
        })
        .collect();
    let info = DatasetInfo {
        labels: vec![labels::AU.into()],
        action_units: Some(units),
        ..Default::default()
    };
    Table::new(entries, info)
}

/// Reads the split's list with `read` and makes its dataset.
pub fn dataset(
    p: &AuListParams,
    ctx: &DatasetContext,
    ext: &str,
    read: impl Fn(&Path, &Path) -> Result<AuList>,
) -> Result<Table> {
    Ok(table(read(&p.root, &list_path(p, ctx.split, ext))?))
}
