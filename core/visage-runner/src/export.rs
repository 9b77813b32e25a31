//! `runner export`: writes the first samples of a registered dataset in the
//! on-disk layout of a real face benchmark (`shared/design/datasets.md`), so
//! that the task plugins' loaders can be tested end to end on synthetic
//! faces.
//!
//! ```text
//! runner export --dataset synthface --dataset-params '{resolution: 64}' \
//!     --format rafdb --out /tmp/raf --count 20
//! ```
//!
//! The writers, their layouts and the coordinate conventions live in
//! `visage-formats` (its crate docs); this module is the command line.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context};
use clap::{Args, ValueEnum};
use visage_core::dataset::{DatasetContext, Split};
use visage_formats::{Job, Options, Source, Splits, WRITERS};

use crate::host::Host;

/// Arguments of `runner export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The registered dataset to export.
    #[arg(long)]
    dataset: String,
    /// The dataset's parameters as YAML or JSON.
    #[arg(long)]
    dataset_params: Option<String>,
    /// Seed of generated datasets, and of the verification pairs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The benchmark layout to write (see the list in the error for an unknown one).
    #[arg(long)]
    format: String,
    /// The folder to write into (created; existing files of the same names are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Samples per split: the first N (default: all).
    #[arg(long)]
    count: Option<usize>,
    /// Splits to export (default: both, or `test` for the evaluation-only
    /// formats verification-bin, lfw-pairs and aflw2000, `train` for imagefolder and mxnet-rec).
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// Resize images to SIZE x SIZE (rafdb: 100 by default, as RAF-DB's
    /// aligned images; fer2013: 48, as FER-2013's).
    #[arg(long)]
    size: Option<i64>,
    /// imagefolder: the label that names the folders.
    #[arg(long, value_enum, default_value = "identity")]
    label: FolderLabel,
    /// verification-bin, lfw-pairs: cross-validation folds.
    #[arg(long, default_value_t = 10)]
    folds: usize,
    /// verification-bin, lfw-pairs: same-identity pairs per fold, and as many
    /// different-identity pairs (default: count / (2 * folds), at least 1).
    #[arg(long)]
    pairs: Option<usize>,
    /// verification-bin: the file is `<out>/<name>.bin`.
    #[arg(long, default_value = "lfw")]
    name: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitArg {
    Train,
    Test,
    Both,
}

/// What names the folders of `imagefolder`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FolderLabel {
    /// The identity index.
    Identity,
    /// The expression name.
    Expression,
}

impl From<FolderLabel> for visage_formats::FolderLabel {
    fn from(label: FolderLabel) -> Self {
        match label {
            FolderLabel::Identity => visage_formats::FolderLabel::Identity,
            FolderLabel::Expression => visage_formats::FolderLabel::Expression,
        }
    }
}

/// The largest `--size` of `runner export` and `runner embed`.
pub const MAX_SIZE: i64 = 8192;

/// Checks a `--size` (export and embed): 1..=[`MAX_SIZE`] pixels.
pub fn check_size(size: i64) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_SIZE).contains(&size),
        "--size must be 1..={MAX_SIZE}, got {size}"
    );
    Ok(())
}

/// Names of the known formats.
fn format_names() -> Vec<&'static str> {
    WRITERS.iter().map(|f| f.name).collect()
}

/// Runs `runner export`.
pub fn export(args: &ExportArgs, host: &Host) -> anyhow::Result<()> {
    let format = visage_formats::writer(&args.format).with_context(|| {
        format!(
            "unknown export format `{}`; known formats: {}",
            args.format,
            format_names().join(", ")
        )
    })?;
    let splits = match (args.split, format.splits) {
        (Some(SplitArg::Both), Splits::One) => bail!(
            "format `{}` writes one split per export: pass --split train or --split test",
            format.name
        ),
        (Some(SplitArg::Train), _) => vec![Split::Train],
        (Some(SplitArg::Test), _) => vec![Split::Test],
        (Some(SplitArg::Both), _) | (None, Splits::Both) => vec![Split::Train, Split::Test],
        (None, Splits::One) => vec![Split::Test],
        (None, Splits::TrainFirst) => vec![Split::Train],
    };
    let size = args.size.or(format.default_size);
    if let Some(s) = size {
        check_size(s)?;
    }
    ensure!(
        args.count != Some(0),
        "--count must be at least 1 (leave it out for every sample), got 0"
    );
    let params = match &args.dataset_params {
        Some(text) => serde_yaml::from_str::<serde_json::Value>(text)
            .with_context(|| format!("--dataset-params: not YAML or JSON: {text}"))?,
        None => serde_json::json!({}),
    };
    let mut sources = vec![];
    for &split in &splits {
        let ctx = DatasetContext { split, seed: args.seed };
        let dataset = host
            .registry
            .build_dataset(&args.dataset, &params.to_string(), &ctx)
            .with_context(|| format!("dataset `{}`", args.dataset))?;
        let count = args.count.map_or(dataset.len(), |c| c.min(dataset.len()));
        sources.push(Source { split, dataset, count });
    }
    ensure!(
        sources.iter().any(|s| s.count > 0),
        "dataset `{}` has no samples in the split(s) asked",
        args.dataset
    );
    // A missing label is reported before anything is written.
    let first = sources.iter().find(|s| s.count > 0).expect("checked above").split;
    let options = Options {
        seed: args.seed,
        label: args.label.into(),
        folds: args.folds,
        pairs: args.pairs,
        name: args.name.clone(),
    };
    let job = Job::new(format.name, &args.dataset, args.out.clone(), sources, size, options);
    let record = job.record(first, 0)?;
    for need in format.needs {
        record.label(need)?;
    }
    std::fs::create_dir_all(&job.out).with_context(|| format!("{}: cannot create the folder", job.out.display()))?;
    (format.write)(&job)?;
    let total: usize = job.splits().iter().map(|&s| job.count(s)).sum();
    println!(
        "exported {total} samples of `{}` as {} to {}",
        args.dataset,
        format.name,
        job.out.display()
    );
    Ok(())
}
