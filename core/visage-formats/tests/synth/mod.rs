//! Shared by the pose, alignment and parsing tests: synthface faces
//! exported with a writer of the catalogue, and the faces the writer saw.
#![allow(dead_code)]

use std::path::PathBuf;

use synthface::dataset::SynthFace;
use synthface::{render, Face, SynthFaceParams};
use visage_core::dataset::{Dataset, DatasetContext, Split};
use visage_formats::{Job, Options, Source};

/// 48-pixel faces, 3 identities per split, 2 samples each.
pub fn params() -> SynthFaceParams {
    serde_json::from_value(serde_json::json!({
        "resolution": 48, "identities": 6, "test_identities": 3, "samples_per_identity": 2
    }))
    .unwrap()
}

/// The face exported as sample `index` of `split` (seed 0).
pub fn face(split: Split, index: usize) -> Face {
    render(&params(), 0, split, index).unwrap()
}

/// The synthface dataset of `split`.
pub fn synthface(split: Split) -> Box<dyn Dataset> {
    Box::new(SynthFace::new(params(), &DatasetContext { split, seed: 0 }).unwrap())
}

/// Writes the first `count` samples of each of `splits`, taken from
/// `dataset`, as `format` into a fresh folder.
pub fn export_from(
    format: &str,
    splits: &[Split],
    count: usize,
    dataset: impl Fn(Split) -> Box<dyn Dataset>,
) -> (tempfile::TempDir, PathBuf) {
    let writer = visage_formats::writer(format).unwrap_or_else(|| panic!("no writer `{format}`"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sources = splits
        .iter()
        .map(|&split| Source {
            split,
            dataset: dataset(split),
            count,
        })
        .collect();
    let job = Job::new(
        writer.name,
        "synthface",
        out.clone(),
        sources,
        writer.default_size,
        Options::default(),
    );
    (writer.write)(&job).unwrap();
    (dir, out)
}

/// [`export_from`] synthface.
pub fn export(format: &str, splits: &[Split], count: usize) -> (tempfile::TempDir, PathBuf) {
    export_from(format, splits, count, synthface)
}

/// The face's image as the writers store it: `round(255 x)`, `[3, H, W]`.
pub fn pixels(face: &Face) -> Vec<u8> {
    face.image
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// A tensor's values as f64.
pub fn values(t: &tch::Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(tch::Kind::Double).flatten(0, -1)).unwrap()
}

/// The error text of a result that must fail.
pub fn err<T>(r: visage_core::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}
