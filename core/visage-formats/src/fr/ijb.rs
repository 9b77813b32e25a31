//! IJB-B and IJB-C in insightface's evaluation layout, the one LAFS's
//! `IJB_evaluation.py` reads. Under `root` (e.g. `IJB_release/IJBC`):
//!
//! - `meta/<set>_face_tid_mid.txt`: `image template media`, one line per
//!   image (`<set>` is `ijbb` or `ijbc`);
//! - `meta/<set>_name_5pts_score.txt`: `image x1 y1 ... x5 y5 faceness`,
//!   the same images in the same order (insightface's detector's five
//!   points and score);
//! - `meta/<set>_template_pair_label.txt`: `template1 template2 label`
//!   (label 1: one identity), read by the `fr` task ([`read_template_pairs`]);
//! - `loose_crop/<image>`: the images.
//!
//! The `ijb` dataset holds every image, in the lists' order, with the
//! labels [`TEMPLATE`], [`MEDIA`] (int64) and [`FACENESS`] (float `[1]`).
//! Visage has no alignment by five points: the images are read as they
//! are, so the `images` folder must hold crops already aligned as the
//! backbone expects (insightface aligns `loose_crop` to 112x112 with a
//! similarity transform onto its five reference points); the points are
//! checked to be numbers and not used. `ijb_benchmark` pairs a training
//! record file with an IJB set, as `fr_benchmark` does with a `.bin`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetContext, DatasetInfo, Split};
use visage_core::{Error, Result};

use super::mxrec::{self, MxRecParams};
use crate::table::{Entry, Label, Pixels, Table};
use crate::text::{read_text, under, Line};

/// The label giving an image's template id.
pub const TEMPLATE: &str = "template";
/// The label giving an image's media id (a photo, or a video's frames).
pub const MEDIA: &str = "media";
/// The label giving the detector's faceness score of an image (float `[1]`).
pub const FACENESS: &str = "faceness";

/// Which IJB set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IjbSet {
    /// IJB-B (meta files `ijbb_*`).
    Ijbb,
    /// IJB-C (meta files `ijbc_*`).
    Ijbc,
}

impl IjbSet {
    /// The meta files' prefix: `ijbb` or `ijbc`.
    pub fn prefix(self) -> &'static str {
        match self {
            IjbSet::Ijbb => "ijbb",
            IjbSet::Ijbc => "ijbc",
        }
    }
}

/// Parameters of the `ijb` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IjbParams {
    /// The set's folder (insightface's `IJB_release/IJBB` or `IJBC`).
    pub root: PathBuf,
    /// `ijbb` or `ijbc`: the prefix of the meta files.
    pub which: IjbSet,
    /// The meta folder under `root`.
    #[serde(default = "default_meta")]
    pub meta: String,
    /// The image folder under `root`. Images are read as they are (Visage
    /// does not align by the five points): it must hold crops already
    /// aligned as the backbone expects, under the lists' names (insightface's
    /// `loose_crop` holds unaligned crops).
    #[serde(default = "default_images")]
    pub images: String,
}

fn default_meta() -> String {
    "meta".into()
}

fn default_images() -> String {
    "loose_crop".into()
}

impl IjbParams {
    /// `<root>/<meta>/<set>_<name>`.
    fn meta_file(&self, name: &str) -> PathBuf {
        self.root
            .join(&self.meta)
            .join(format!("{}_{name}", self.which.prefix()))
    }

    /// The template pair list, `<root>/<meta>/<set>_template_pair_label.txt`.
    pub fn pairs_file(&self) -> PathBuf {
        self.meta_file("template_pair_label.txt")
    }
}

/// One image of `face_tid_mid.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct IjbFace {
    /// The image file (under the image folder).
    pub file: PathBuf,
    /// Its template.
    pub template: i64,
    /// Its media.
    pub media: i64,
    /// Its faceness score (from `name_5pts_score.txt`).
    pub faceness: f32,
}

/// A template pair of `template_pair_label.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplatePair {
    /// The first template.
    pub first: i64,
    /// The second template.
    pub second: i64,
    /// Whether the two show one identity (label 1).
    pub same: bool,
}

/// The images of `face_tid_mid.txt`, checked to exist under `images`,
/// with their faceness from `name_5pts_score.txt`: both lists must name
/// the same images in the same order (insightface's evaluation reads them
/// row by row).
pub fn read_faces(tid_mid: &Path, scores: &Path, images: &Path) -> Result<Vec<IjbFace>> {
    let text = read_text(tid_mid, "IJB's face_tid_mid list (image template media)")?;
    let score_text = read_text(scores, "IJB's name_5pts_score list (image, 5 points, faceness)")?;
    let mut score_lines = Line::all(scores, &score_text);
    let mut faces = vec![];
    for line in Line::all(tid_mid, &text) {
        let f = line.fields(None, 3, "image name, template id, media id")?;
        let file = under(images, f[0], &line)?;
        if !file.is_file() {
            return Err(line.error(format_args!("an image at {}, which is missing", file.display())));
        }
        let score_line = score_lines.next().ok_or_else(|| {
            Error::msg(format!(
                "{}: ends before image `{}` (line {} of {}); expected one line per image, in the same order",
                scores.display(),
                f[0],
                line.number,
                tid_mid.display()
            ))
        })?;
        faces.push(IjbFace {
            file,
            template: line.parse(f[1], "the template id")?,
            media: line.parse(f[2], "the media id")?,
            faceness: score(&score_line, f[0])?,
        });
    }
    if let Some(extra) = score_lines.next() {
        return Err(extra.error(format_args!(
            "no more lines: {} lists {} images",
            tid_mid.display(),
            faces.len()
        )));
    }
    if faces.is_empty() {
        return Err(Error::msg(format!("{}: no images", tid_mid.display())));
    }
    Ok(faces)
}

/// The faceness of one `name_5pts_score.txt` line for `image`.
fn score(line: &Line, image: &str) -> Result<f32> {
    let f = line.fields(None, 12, "image name, 10 point coordinates, faceness score")?;
    if f[0] != image {
        return Err(line.error(format_args!(
            "image `{image}` (the same image as the same line of face_tid_mid.txt)"
        )));
    }
    for (k, v) in f[1..11].iter().enumerate() {
        let c: f64 = line.parse(v, &format!("point coordinate {}", k + 1))?;
        if !c.is_finite() {
            return Err(line.error(format_args!("a finite point coordinate {}", k + 1)));
        }
    }
    let score: f32 = line.parse(f[11], "the faceness score")?;
    if !score.is_finite() {
        return Err(line.error("a finite faceness score"));
    }
    Ok(score)
}

/// The pairs of a `template_pair_label.txt`: `template1 template2 label`,
/// label 0 or 1.
pub fn read_template_pairs(path: &Path) -> Result<Vec<TemplatePair>> {
    let text = read_text(path, "IJB's template pair list (template1 template2 label)")?;
    let pairs = Line::all(path, &text)
        .map(|line| {
            let f = line.fields(None, 3, "template 1, template 2, label 0 or 1")?;
            let same = match f[2] {
                "1" => true,
                "0" => false,
                _ => return Err(line.error("the label 0 or 1 as the third field")),
            };
            Ok(TemplatePair {
                first: line.parse(f[0], "template 1's id")?,
                second: line.parse(f[1], "template 2's id")?,
                same,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if pairs.is_empty() {
        return Err(Error::msg(format!("{}: no template pairs", path.display())));
    }
    Ok(pairs)
}

/// The 1-based line of `path` holding pair `index` (0-based, blank lines
/// skipped), for messages about a pair read by [`read_template_pairs`].
pub fn pair_line(path: &Path, index: usize) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let number = Line::all(path, &text).nth(index).map(|l| l.number);
    number
}

/// The `ijb` dataset: every image of the lists, in their order, each with
/// [`TEMPLATE`], [`MEDIA`] and [`FACENESS`]; images checked to exist. One
/// evaluation set: every split reads it.
pub fn dataset(p: IjbParams, _ctx: &DatasetContext) -> Result<Table> {
    let faces = read_faces(
        &p.meta_file("face_tid_mid.txt"),
        &p.meta_file("name_5pts_score.txt"),
        &p.root.join(&p.images),
    )?;
    let templates: BTreeSet<i64> = faces.iter().map(|f| f.template).collect();
    tracing::info!(
        images = faces.len(),
        templates = templates.len(),
        set = p.which.prefix(),
        "ijb: read the image lists"
    );
    let entries = faces
        .into_iter()
        .map(|face| Entry {
            pixels: Pixels::File(face.file),
            labels: vec![
                (TEMPLATE, Label::Int(face.template)),
                (MEDIA, Label::Int(face.media)),
                (FACENESS, Label::Floats(vec![face.faceness])),
            ],
        })
        .collect();
    let info = DatasetInfo {
        labels: vec![TEMPLATE.into(), MEDIA.into(), FACENESS.into()],
        ..Default::default()
    };
    Ok(Table::new(entries, info))
}

/// Parameters of `ijb_benchmark`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IjbBenchmarkParams {
    /// The training set (`root` required): an MXNet record file.
    pub train: MxRecParams,
    /// The IJB set to verify on (`root` and `which` required).
    pub test: IjbParams,
}

/// `ijb_benchmark`: the record file for the train split, the IJB set for
/// the test split (LAFS fine-tunes on WebFace4M, then scores IJB-B/C).
pub fn benchmark(p: IjbBenchmarkParams, ctx: &DatasetContext) -> Result<Table> {
    match ctx.split {
        Split::Train => mxrec::dataset(p.train, ctx),
        Split::Test => dataset(p.test, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTS: &str = "38.3 51.7 73.5 51.5 56.0 71.7 41.5 92.4 70.7 92.2";

    /// `root/meta/ijbb_*` with `tid_mid` and `scores`, and empty files for
    /// the images `a.jpg`, `b.jpg` (never decoded here).
    fn fixture(root: &Path, tid_mid: &str, scores: &str, pairs: &str) -> IjbParams {
        std::fs::create_dir_all(root.join("meta")).unwrap();
        std::fs::create_dir_all(root.join("loose_crop")).unwrap();
        for image in ["a.jpg", "b.jpg"] {
            std::fs::write(root.join("loose_crop").join(image), b"").unwrap();
        }
        std::fs::write(root.join("meta/ijbb_face_tid_mid.txt"), tid_mid).unwrap();
        std::fs::write(root.join("meta/ijbb_name_5pts_score.txt"), scores).unwrap();
        std::fs::write(root.join("meta/ijbb_template_pair_label.txt"), pairs).unwrap();
        IjbParams {
            root: root.into(),
            which: IjbSet::Ijbb,
            meta: default_meta(),
            images: default_images(),
        }
    }

    fn read(p: &IjbParams) -> Result<Vec<IjbFace>> {
        read_faces(
            &p.meta_file("face_tid_mid.txt"),
            &p.meta_file("name_5pts_score.txt"),
            &p.root.join(&p.images),
        )
    }

    fn says(err: Error, parts: &[&str]) {
        let text = err.to_string();
        for part in parts {
            assert!(text.contains(part), "`{text}` lacks `{part}`");
        }
    }

    #[test]
    fn lists_give_templates_media_faceness_and_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let scores = format!("a.jpg {POINTS} 0.9\nb.jpg {POINTS} 0.5\n");
        let p = fixture(dir.path(), "a.jpg 7 70\n\nb.jpg 8 81\n", &scores, "7 8 0\n8 8 1\n");
        let faces = read(&p).unwrap();
        assert_eq!(faces.len(), 2);
        assert_eq!((faces[1].template, faces[1].media, faces[1].faceness), (8, 81, 0.5));
        assert!(faces[0].file.ends_with("loose_crop/a.jpg"));
        let pairs = read_template_pairs(&p.pairs_file()).unwrap();
        assert_eq!(
            pairs[1],
            TemplatePair {
                first: 8,
                second: 8,
                same: true
            }
        );
        assert_eq!(pair_line(&p.pairs_file(), 1), Some(2));
    }

    #[test]
    fn every_malformed_line_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let good = format!("a.jpg {POINTS} 0.9\nb.jpg {POINTS} 0.5\n");
        let p = fixture(root, "a.jpg 7 70\nb.jpg 8\n", &good, "");
        says(
            read(&p).unwrap_err(),
            &[
                "ijbb_face_tid_mid.txt, line 2",
                "3 fields (image name, template id, media id), found 2",
            ],
        );
        let p = fixture(root, "a.jpg 7 x\n", &good, "");
        says(
            read(&p).unwrap_err(),
            &["face_tid_mid.txt, line 1", "the media id as a number, found `x`"],
        );
        let p = fixture(root, "a.jpg 7 70\nc.jpg 8 81\n", &good, "");
        says(
            read(&p).unwrap_err(),
            &["face_tid_mid.txt, line 2", "c.jpg, which is missing"],
        );
        let p = fixture(root, "a.jpg 7 70\nb.jpg 8 81\n", &format!("b.jpg {POINTS} 0.9\n"), "");
        says(
            read(&p).unwrap_err(),
            &["name_5pts_score.txt, line 1", "image `a.jpg` (the same image"],
        );
        let p = fixture(root, "a.jpg 7 70\nb.jpg 8 81\n", "a.jpg 1 2 3 0.9\n", "");
        says(
            read(&p).unwrap_err(),
            &[
                "name_5pts_score.txt, line 1",
                "12 fields (image name, 10 point coordinates, faceness score), found 5",
            ],
        );
        let p = fixture(root, "a.jpg 7 70\nb.jpg 8 81\n", &format!("a.jpg {POINTS} 0.9\n"), "");
        says(
            read(&p).unwrap_err(),
            &["name_5pts_score.txt: ends before image `b.jpg` (line 2 of"],
        );
        let p = fixture(root, "a.jpg 7 70\n", &good, "");
        says(read(&p).unwrap_err(), &["name_5pts_score.txt, line 2", "no more lines"]);
        let p = fixture(
            root,
            "a.jpg 7 70\n",
            &format!("a.jpg {POINTS} high\n"),
            "7 7 1\n7 7 2\n",
        );
        says(
            read(&p).unwrap_err(),
            &["line 1", "the faceness score as a number, found `high`"],
        );
        says(
            read_template_pairs(&p.pairs_file()).unwrap_err(),
            &["ijbb_template_pair_label.txt, line 2", "the label 0 or 1"],
        );
        let p = fixture(root, "a.jpg 7 70\n", &good, "7 7\n");
        says(
            read_template_pairs(&p.pairs_file()).unwrap_err(),
            &[
                "template_pair_label.txt, line 1",
                "3 fields (template 1, template 2, label 0 or 1), found 2",
            ],
        );
        let p = fixture(root, "../a.jpg 7 70\n", &good, "");
        says(
            read(&p).unwrap_err(),
            &["face_tid_mid.txt, line 1", "a relative path inside"],
        );
    }
}
