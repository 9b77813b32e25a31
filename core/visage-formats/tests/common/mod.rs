//! Shared by the tests: synthetic faces (32 px) to write, a job over them,
//! and comparisons of what a reader gives back.

#![allow(dead_code)]

use std::path::Path;

use synthface::dataset::SynthFace;
use synthface::SynthFaceParams;
use tch::{Kind, Tensor};
use visage_core::dataset::{Dataset, DatasetContext, Split};
use visage_core::Sample;
use visage_formats::{Job, Options, Source};

/// 5 identities (2 in test) of 3 samples, 32 px: 9 train, 6 test samples.
pub fn synth(split: Split) -> SynthFace {
    let params: SynthFaceParams =
        serde_json::from_str(r#"{"identities": 5, "test_identities": 2, "samples_per_identity": 3, "resolution": 32}"#)
            .unwrap();
    SynthFace::new(params, &ctx(split)).unwrap()
}

/// The context of `split`, seed 0.
pub fn ctx(split: Split) -> DatasetContext {
    DatasetContext { split, seed: 0 }
}

/// Every synthetic sample of `split`.
pub fn samples(split: Split) -> Vec<Sample> {
    let d = synth(split);
    (0..d.len()).map(|i| d.get(i).unwrap()).collect()
}

/// Writes `splits` of the synthetic faces as `format` into `out`.
pub fn write(format: &str, out: &Path, splits: &[Split], options: Options) {
    let writer = visage_formats::writer(format).unwrap();
    let sources = splits
        .iter()
        .map(|&split| {
            let dataset = synth(split);
            let count = dataset.len();
            Source {
                split,
                dataset: Box::new(dataset),
                count,
            }
        })
        .collect();
    let job = Job::new(writer.name, "synthface", out.to_path_buf(), sources, None, options);
    (writer.write)(&job).unwrap();
}

/// An int64 scalar label.
pub fn int(sample: &Sample, name: &str) -> i64 {
    sample.labels[name].int64_value(&[])
}

/// A float label as a vector.
pub fn floats(sample: &Sample, name: &str) -> Vec<f32> {
    Vec::<f32>::try_from(sample.labels[name].to_kind(Kind::Float).flatten(0, -1)).unwrap()
}

/// The image as the writers quantise it: 0..255, rounded.
pub fn quantised(image: &Tensor) -> Tensor {
    (image.to_kind(Kind::Float).clamp(0.0, 1.0) * 255.0).round()
}

/// The mean absolute difference of two images in 0..255 (JPEG tolerance).
pub fn mean_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (quantised(a) - quantised(b)).abs().mean(Kind::Double).double_value(&[])
}

/// JPEG quality 90 on these small noisy faces stays within this mean
/// error (about 5 measured); two different faces differ by far more
/// (checked in `rafdb_round_trip`).
pub const JPEG_TOLERANCE: f64 = 8.0;

/// Asserts that `err` says every part of `parts`.
pub fn says(err: visage_core::Error, parts: &[&str]) {
    let text = err.to_string();
    for part in parts {
        assert!(text.contains(part), "`{part}` not in: {text}");
    }
}
