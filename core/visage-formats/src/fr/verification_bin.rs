//! Verification `.bin` reader: a Python pickle of `(list of JPEG/PNG
//! byte strings, list of bools)`, images `2i` and `2i+1` forming pair `i`
//! (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW of the MS1M/WebFace packs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::DatasetContext;
use visage_core::nn::pickle::{read_pickle, Value};
use visage_core::{Error, Result};

use super::pairs_table;
use crate::table::{Entry, Pixels, Table};
use crate::text::read;

/// Parameters of the `verification_bin` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationBinParams {
    /// The folder holding the `.bin` files.
    pub root: PathBuf,
    /// The set: the file is `<root>/<name>.bin` (`lfw`, `cfp_fp`,
    /// `agedb_30`, `calfw`, `cplfw`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Cross-validation folds: pair `i` is in fold `i / (pairs / folds)`.
    #[serde(default = "default_folds")]
    pub folds: usize,
}

fn default_name() -> String {
    "lfw".into()
}

pub(crate) fn default_folds() -> usize {
    10
}

/// The content of a `.bin`: two encoded images per pair, and whether each
/// pair is one identity.
#[derive(Debug, Clone)]
pub struct VerificationBin {
    /// The encoded images, pair `i` at `2i` and `2i + 1`.
    pub images: Vec<Arc<[u8]>>,
    /// Whether pair `i` shows one identity.
    pub same: Vec<bool>,
}

/// Reads a `.bin`. A file that is not the expected pickle is an error
/// naming the file and what is wrong (e.g. the byte where it is truncated).
pub fn read_bin(path: &Path) -> Result<VerificationBin> {
    let at = |what: String| Error::msg(format!("{}: {what}", path.display()));
    let bytes = read(path, "a verification .bin (a pickle of images and same flags)")?;
    let value = read_pickle(&bytes).map_err(|e| at(format!("not a readable pickle: {e}")))?;
    let (Value::Tuple(items) | Value::List(items)) = value else {
        return Err(at(
            "expected a pickled pair (images, same flags), found another object".into()
        ));
    };
    let [Value::List(bins), Value::List(flags)] = items.as_slice() else {
        return Err(at(format!(
            "expected a pickled pair of two lists (images, same flags), found {} items",
            items.len()
        )));
    };
    let images = bins
        .iter()
        .enumerate()
        .map(|(i, b)| match b {
            Value::Bytes(b) => Ok(Arc::from(b.as_slice())),
            _ => Err(at(format!("image {i}: expected a byte string (JPEG or PNG)"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let same = flags
        .iter()
        .enumerate()
        .map(|(i, f)| match f {
            Value::Bool(b) => Ok(*b),
            Value::Int(v @ (0 | 1)) => Ok(*v == 1),
            _ => Err(at(format!("pair {i}: expected a bool same flag"))),
        })
        .collect::<Result<Vec<bool>>>()?;
    if images.len() != 2 * same.len() {
        return Err(at(format!(
            "expected two images per pair: {} images for {} pairs",
            images.len(),
            same.len()
        )));
    }
    Ok(VerificationBin { images, same })
}

/// The `verification_bin` dataset: samples `2i`, `2i + 1` are pair `i`,
/// each with `same` and `fold`. The file is one evaluation set: every
/// split reads it.
pub fn dataset(p: VerificationBinParams, _ctx: &DatasetContext) -> Result<Table> {
    if p.name.is_empty() || p.name.contains(['/', '\\']) {
        return Err(Error::msg(format!(
            "verification_bin: `name` must be a file name without `.bin`, got `{}`",
            p.name
        )));
    }
    let path = p.root.join(format!("{}.bin", p.name));
    let bin = read_bin(&path)?;
    let file = path.display().to_string();
    let images = bin.images.into_iter().enumerate().map(|(i, bytes)| Pixels::Encoded {
        bytes,
        origin: format!("{file}: image {i}"),
    });
    let entries: Vec<Entry> = images.map(|pixels| Entry { pixels, labels: vec![] }).collect();
    pairs_table(entries, &bin.same, p.folds, &file)
}
