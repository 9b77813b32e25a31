//! Identity image folders: `<root>/<identity>/<image>` (one folder per
//! identity, as CASIA-WebFace or the MS1M image dumps), identities
//! numbered by their folder names in sorted order, as torchvision's
//! `ImageFolder` numbers its classes.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetContext, DatasetInfo};
use visage_core::{labels, Error, Result};

use crate::split_name;
use crate::table::{Entry, Label, Pixels, Table};

/// Parameters of the `identity_folder` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityFolderParams {
    /// The folder of identity folders.
    pub root: PathBuf,
    /// Read `<root>/train/` and `<root>/test/` by split (as `runner export
    /// --format imagefolder` writes both splits); by default every split
    /// reads `root`.
    #[serde(default)]
    pub split_folders: bool,
}

/// The image files read, by extension (case-insensitive).
const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The sorted entries of a folder, or an error naming it.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::msg(format!("{}: cannot list the identity folders: {e}", dir.display())))?;
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::msg(format!("{}: cannot list: {e}", dir.display())))?;
    paths.sort();
    Ok(paths)
}

/// Whether `path` is an image file by its extension.
fn is_image(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    path.is_file() && EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(ext))
}

/// Identity folders as read: the names (sorted folder names) and every
/// image with its identity index.
pub type Identities = (Vec<String>, Vec<(PathBuf, usize)>);

/// Reads the identity folders under `root`. A folder without images is an
/// error naming it.
pub fn read(root: &Path) -> Result<Identities> {
    let mut names = vec![];
    let mut images = vec![];
    for dir in list(root)?.into_iter().filter(|p| p.is_dir()) {
        let files: Vec<PathBuf> = list(&dir)?.into_iter().filter(|p| is_image(p)).collect();
        if files.is_empty() {
            return Err(Error::msg(format!(
                "{}: expected images ({}) of one identity, found none",
                dir.display(),
                EXTENSIONS.join(", ")
            )));
        }
        let id = names.len();
        names.push(
            dir.file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        );
        images.extend(files.into_iter().map(|f| (f, id)));
    }
    if names.is_empty() {
        return Err(Error::msg(format!(
            "{}: expected one folder per identity, found none",
            root.display()
        )));
    }
    Ok((names, images))
}

/// The `identity_folder` dataset: every image, sorted by path, with
/// `identity`; `info().classes` holds the folder names.
pub fn dataset(p: IdentityFolderParams, ctx: &DatasetContext) -> Result<Table> {
    let root = if p.split_folders {
        p.root.join(split_name(ctx.split))
    } else {
        p.root.clone()
    };
    let (names, images) = read(&root)?;
    let entries = images
        .into_iter()
        .map(|(f, id)| Entry {
            pixels: Pixels::File(f),
            labels: vec![(labels::IDENTITY, Label::Int(id as i64))],
        })
        .collect();
    let info = DatasetInfo {
        labels: vec![labels::IDENTITY.into()],
        identities: Some(names.len()),
        classes: Some(names),
        ..Default::default()
    };
    Ok(Table::new(entries, info))
}
