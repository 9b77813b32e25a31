//! One export in progress: the datasets of the asked splits, the output
//! folder and the writers' options. The writers read their samples from a
//! [`Job`] as [`Record`]s, one at a time.

use std::path::PathBuf;
use std::sync::Arc;

use visage_core::dataset::{Dataset, Split};
use visage_core::Result;

use crate::error::Context;
use crate::record::Record;

/// What names the folders of `imagefolder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FolderLabel {
    /// The identity index.
    #[default]
    Identity,
    /// The expression name.
    Expression,
}

/// The options of the writers that have some.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seed of the verification pairs and of AFLW's `ra` permutation.
    pub seed: u64,
    /// imagefolder: the label that names the folders.
    pub label: FolderLabel,
    /// verification-bin, lfw-pairs: cross-validation folds.
    pub folds: usize,
    /// verification-bin, lfw-pairs: same-identity pairs per fold, and as
    /// many different-identity pairs (default: count / (2 * folds), at
    /// least 1).
    pub pairs: Option<usize>,
    /// verification-bin: the file is `<out>/<name>.bin`.
    pub name: String,
}

impl Default for Options {
    /// Seed 0, identity folders, LFW's 10 folds, `lfw.bin`.
    fn default() -> Self {
        Options {
            seed: 0,
            label: FolderLabel::Identity,
            folds: 10,
            pairs: None,
            name: "lfw".into(),
        }
    }
}

/// The samples of one split: the dataset and how many of its first samples
/// are written.
pub struct Source {
    /// The split.
    pub split: Split,
    /// The dataset of that split.
    pub dataset: Box<dyn Dataset>,
    /// The number of samples written (the first `count`).
    pub count: usize,
}

/// One export: what a writer reads.
pub struct Job {
    /// The format's name, for messages.
    pub format: &'static str,
    /// The dataset's name, for messages.
    pub dataset: Arc<str>,
    /// The output folder.
    pub out: PathBuf,
    /// The writers' options.
    pub options: Options,
    sources: Vec<Source>,
    size: Option<i64>,
}

impl Job {
    /// An export of `sources` (train first) as `format` into `out`, images
    /// resized to `size x size` when given.
    pub fn new(
        format: &'static str,
        dataset: &str,
        out: PathBuf,
        sources: Vec<Source>,
        size: Option<i64>,
        options: Options,
    ) -> Self {
        Job {
            format,
            dataset: Arc::from(dataset),
            out,
            options,
            sources,
            size,
        }
    }

    /// The splits exported, in order (train first).
    pub fn splits(&self) -> Vec<Split> {
        self.sources.iter().map(|s| s.split).collect()
    }

    /// Number of samples exported from `split`.
    pub fn count(&self, split: Split) -> usize {
        self.sources.iter().find(|s| s.split == split).map_or(0, |s| s.count)
    }

    /// Sample `index` of `split`, resized when asked.
    pub fn record(&self, split: Split, index: usize) -> Result<Record> {
        let source = self
            .sources
            .iter()
            .find(|s| s.split == split)
            .context("split not exported")?;
        let sample = source
            .dataset
            .get(index)
            .with_context(|| format!("dataset `{}`, {} sample {index}", self.dataset, split_name(split)))?;
        let mut record = Record::new(
            split,
            index,
            sample.image,
            sample.labels,
            self.format,
            self.dataset.clone(),
        );
        if let Some(size) = self.size {
            record.resize(size)?;
        }
        Ok(record)
    }

    /// Every exported sample of `split`, in order.
    pub fn records(&self, split: Split) -> impl Iterator<Item = Result<Record>> + '_ {
        (0..self.count(split)).map(move |i| self.record(split, i))
    }
}

/// `train` or `test`.
pub fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "test",
    }
}
