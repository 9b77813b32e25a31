//! LFW's raw layout: `pairs.txt` (a header `folds<TAB>pairs`, then per fold
//! the same pairs `name n1 n2` and the different pairs `name1 n1 name2
//! n2`) beside the image tree `name/name_%04d.jpg`.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::DatasetContext;
use visage_core::{Error, Result};

use super::pairs_table;
use crate::table::{Entry, Pixels, Table};
use crate::text::{read_text, Line};

/// Parameters of the `lfw_pairs` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LfwPairsParams {
    /// The folder holding `pairs.txt`.
    pub root: PathBuf,
    /// The image tree (`name/name_0001.jpg`), relative to `root`; default
    /// `root` itself.
    #[serde(default)]
    pub images: Option<PathBuf>,
    /// The pairs file under `root`.
    #[serde(default = "default_pairs")]
    pub pairs: String,
}

fn default_pairs() -> String {
    "pairs.txt".into()
}

/// One pair of `pairs.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfwPair {
    /// The two images.
    pub images: [PathBuf; 2],
    /// Whether the two are one person (a 3-field line).
    pub same: bool,
}

/// The pairs of a `pairs.txt` and its folds: `(folds, pairs)`. The header
/// is `folds<TAB>n` (View 2: `10 300`: each fold has `n` same then `n`
/// different pairs) or `n` alone (View 1: one fold).
pub fn read_pairs(path: &Path, images: &Path) -> Result<(usize, Vec<LfwPair>)> {
    let text = read_text(path, "LFW's pairs.txt")?;
    let mut lines = Line::all(path, &text);
    let header = lines.next().ok_or_else(|| {
        Error::msg(format!(
            "{}: empty; expected the header `folds<TAB>pairs`",
            path.display()
        ))
    })?;
    let numbers: Vec<&str> = header.text.split_whitespace().collect();
    let (folds, per_fold) = match numbers.as_slice() {
        [n] => (1, header.parse::<usize>(n, "the pair count")?),
        [f, n] => (
            header.parse::<usize>(f, "the fold count")?,
            header.parse::<usize>(n, "the pairs per fold")?,
        ),
        _ => return Err(header.error("the header `folds<TAB>pairs` (or `pairs`)")),
    };
    if folds == 0 || per_fold == 0 {
        return Err(header.error("positive fold and pair counts"));
    }
    let pairs = lines.map(|l| pair(images, &l)).collect::<Result<Vec<_>>>()?;
    if pairs.len() != 2 * folds * per_fold {
        return Err(Error::msg(format!(
            "{}: the header promises {folds} folds of {per_fold} same and {per_fold} different pairs ({}), the file has {}",
            path.display(),
            2 * folds * per_fold,
            pairs.len()
        )));
    }
    Ok((folds, pairs))
}

/// One pair line, images checked to exist.
fn pair(images: &Path, line: &Line) -> Result<LfwPair> {
    let f: Vec<&str> = line.text.split_whitespace().collect();
    let (a, na, b, nb, same) = match f.as_slice() {
        [name, n1, n2] => (*name, *n1, *name, *n2, true),
        [a, n1, b, n2] => (*a, *n1, *b, *n2, false),
        _ => {
            return Err(line.error(format_args!(
                "3 fields `name n1 n2` or 4 fields `name1 n1 name2 n2`, found {}",
                f.len()
            )))
        }
    };
    let mut files = vec![];
    for (name, n) in [(a, na), (b, nb)] {
        let n: usize = line.parse(n, "an image number")?;
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(line.error("a person's name"));
        }
        let file = images.join(name).join(format!("{name}_{n:04}.jpg"));
        if !file.is_file() {
            return Err(line.error(format_args!("an image at {}, which is missing", file.display())));
        }
        files.push(file);
    }
    let [a, b]: [PathBuf; 2] = files.try_into().map_err(|_| line.error("two images"))?;
    Ok(LfwPair { images: [a, b], same })
}

/// The `lfw_pairs` dataset: samples `2i`, `2i + 1` are pair `i` with
/// `same` and `fold` (pair `i` is in fold `i / (2 * pairs per fold)`). One
/// evaluation set: every split reads it.
pub fn dataset(p: LfwPairsParams, _ctx: &DatasetContext) -> Result<Table> {
    let path = p.root.join(&p.pairs);
    let images = p.images.as_ref().map_or(p.root.clone(), |i| p.root.join(i));
    let (folds, pairs) = read_pairs(&path, &images)?;
    let same: Vec<bool> = pairs.iter().map(|p| p.same).collect();
    let entries = pairs
        .into_iter()
        .flat_map(|p| p.images)
        .map(|f| Entry {
            pixels: Pixels::File(f),
            labels: vec![],
        })
        .collect();
    pairs_table(entries, &same, folds, &path.display().to_string())
}
