//! The CelebAMask-HQ reader and the dataset `celebamask`:
//! `CelebA-HQ-img/<id>.jpg`, one binary part mask per part present
//! `CelebAMask-HQ-mask-anno/<id / 2000>/<id:05>_<part>.png`, painted in
//! [`CELEBAMASK_CLASSES`]' order (later parts overwrite earlier ones) into
//! a map of those 19 class ids; the split from
//! `CelebA-HQ-to-CelebA-mapping.txt` (`idx orig_idx orig_file`) and
//! `list_eval_partition.txt` (`orig_file 0|1|2`: train, val, test).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;
use visage_core::data::decode::load_image;
use visage_core::dataset::{Dataset, DatasetInfo, Split};
use visage_core::{labels, Result, Sample};

use super::mask::read_grey;
use crate::error::{bail, ensure};
use crate::files::read_text;

/// CelebAMask-HQ's 19 classes: background, then the parts in paint order.
pub const CELEBAMASK_CLASSES: [&str; 19] = [
    "background",
    "neck",
    "skin",
    "cloth",
    "l_ear",
    "r_ear",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "nose",
    "mouth",
    "l_lip",
    "u_lip",
    "hair",
    "eye_g",
    "hat",
    "ear_r",
    "neck_l",
];

/// `id -> orig_file` from the mapping file.
pub fn read_mapping(path: &Path) -> Result<Vec<(usize, String)>> {
    let text = read_text(path)?;
    let mut rows = vec![];
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let id = fields.first().and_then(|f| f.parse::<usize>().ok());
        let (Some(id), 3) = (id, fields.len()) else {
            bail!(
                "{}:{}: expected `idx orig_idx orig_file`, found `{}`",
                path.display(),
                n + 1,
                line.trim()
            )
        };
        rows.push((id, fields[2].to_string()));
    }
    Ok(rows)
}

/// `orig_file -> partition` (0 train, 1 val, 2 test).
pub fn read_partition(path: &Path) -> Result<HashMap<String, u8>> {
    let text = read_text(path)?;
    let mut parts = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [file, p @ ("0" | "1" | "2")] => {
                parts.insert(file.to_string(), p.as_bytes()[0] - b'0');
            }
            _ => bail!(
                "{}:{}: expected `<file> 0|1|2` (train, val, test), found `{}`",
                path.display(),
                n + 1,
                line.trim()
            ),
        }
    }
    Ok(parts)
}

/// The part mask files of face `id` under `root`, in paint order.
pub fn part_paths(root: &Path, id: usize) -> Vec<(u8, PathBuf)> {
    let folder = root.join("CelebAMask-HQ-mask-anno").join((id / 2000).to_string());
    CELEBAMASK_CLASSES
        .iter()
        .enumerate()
        .skip(1)
        .map(|(c, part)| (c as u8, folder.join(format!("{id:05}_{part}.png"))))
        .collect()
}

/// Paints the part masks of face `id` (a pixel above 127 is in the part):
/// `(height, width, class ids)`. At least one part must exist, and all
/// must have one size.
pub fn paint(root: &Path, id: usize) -> Result<(usize, usize, Vec<u8>)> {
    let mut map: Option<(usize, usize, Vec<u8>)> = None;
    for (class, path) in part_paths(root, id) {
        if !path.is_file() {
            continue;
        }
        let (h, w, mask) = read_grey(&path)?;
        let (mh, mw, ids) = map.get_or_insert_with(|| (h, w, vec![0; h * w]));
        ensure!(
            (h, w) == (*mh, *mw),
            "{}: {h}x{w}, expected {mh}x{mw} as the other parts of face {id}",
            path.display()
        );
        for (id, &m) in ids.iter_mut().zip(&mask) {
            if m > 127 {
                *id = class;
            }
        }
    }
    match map {
        Some(map) => Ok(map),
        None => bail!(
            "face {id}: no part mask found (expected at least {})",
            part_paths(root, id)[1].1.display()
        ),
    }
}

/// Parameters of the dataset `celebamask`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CelebAMaskParams {
    /// The folder holding `CelebA-HQ-img/`, `CelebAMask-HQ-mask-anno/` and
    /// the two list files.
    pub root: PathBuf,
    /// Whether the train split also takes the val faces (partition 1).
    #[serde(default)]
    pub train_with_val: bool,
}

/// The faces of one split: label `parsing` (ids into
/// [`CELEBAMASK_CLASSES`]). The image is resized to its masks' size when
/// they differ (the real images are 1024, the masks 512).
pub struct CelebAMask {
    root: PathBuf,
    ids: Vec<usize>,
}

impl CelebAMask {
    /// The faces of `split`, in id order.
    pub fn new(p: &CelebAMaskParams, split: Split) -> Result<CelebAMask> {
        let mapping = read_mapping(&p.root.join("CelebA-HQ-to-CelebA-mapping.txt"))?;
        let partition_path = p.root.join("list_eval_partition.txt");
        let partition = read_partition(&partition_path)?;
        let wanted = |part: u8| match split {
            Split::Train => part == 0 || (p.train_with_val && part == 1),
            Split::Test => part == 2,
        };
        let mut ids = vec![];
        for (id, orig) in mapping {
            let Some(&part) = partition.get(&orig) else {
                bail!(
                    "{}: no line for `{orig}` (CelebA-HQ face {id})",
                    partition_path.display()
                )
            };
            if wanted(part) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        ensure!(!ids.is_empty(), "{}: no face in this split", p.root.display());
        Ok(CelebAMask {
            root: p.root.clone(),
            ids,
        })
    }

    fn image(&self, id: usize) -> PathBuf {
        self.root.join("CelebA-HQ-img").join(format!("{id}.jpg"))
    }
}

impl Dataset for CelebAMask {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let Some(&id) = self.ids.get(index) else {
            bail!("index {index} is out of range (0..{})", self.ids.len())
        };
        let (h, w, map) = paint(&self.root, id)?;
        let image = load_image(&self.image(id), Some((h as u32, w as u32)), false)?;
        let map: Vec<i64> = map.iter().map(|&c| c as i64).collect();
        Ok(Sample::new(image).with_label(labels::PARSING, Tensor::from_slice(&map).f_view([h as i64, w as i64])?))
    }

    fn source(&self, index: usize) -> Option<PathBuf> {
        self.ids.get(index).map(|&id| self.image(id))
    }

    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec![labels::PARSING.into()],
            parsing_classes: Some(CELEBAMASK_CLASSES.iter().map(|c| c.to_string()).collect()),
            ..Default::default()
        }
    }
}
