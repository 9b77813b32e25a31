//! Datasets: indexed sources of samples.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::guard::Guarded;
use crate::sample::Sample;
use crate::Result;

/// Which part of a dataset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training data.
    Train,
    /// Held-out evaluation data.
    Test,
}

/// An indexed, thread-safe source of samples. `get` must be a pure function
/// of the index, so that data order and content are reproducible.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether the dataset has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample `index` (`0 <= index < len`).
    fn get(&self, index: usize) -> Result<Sample>;
    /// The file sample `index` is read from, when it comes from one, so that
    /// errors met after reading it (an image too small for an augmentation,
    /// or of another size than the rest of its batch) name the file.
    fn source(&self, _index: usize) -> Option<std::path::PathBuf> {
        None
    }
}

/// What a dataset constructor receives.
pub struct DatasetContext {
    /// The split to read.
    pub split: Split,
    /// The experiment's seed, for generated data.
    pub seed: u64,
}

impl<D: Dataset> Dataset for Guarded<D> {
    fn len(&self) -> usize {
        self.run(|d| Ok(d.len())).unwrap_or_else(|e| {
            tracing::error!("{e}");
            0
        })
    }
    fn get(&self, index: usize) -> Result<Sample> {
        self.run(|d| d.get(index))
    }
    fn source(&self, index: usize) -> Option<std::path::PathBuf> {
        self.run(|d| Ok(d.source(index))).ok().flatten()
    }
}
