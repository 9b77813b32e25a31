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
    /// The identity (person, or video for frames) of sample `index`, when
    /// the dataset knows it without reading the sample; identity-grouped
    /// batches ([`crate::data::LoaderConfig::per_identity`]) need it. The
    /// default knows none.
    fn identity(&self, _index: usize) -> Option<usize> {
        None
    }
    /// What the dataset holds, so that a task can refuse it at build time
    /// (alignment on a dataset without landmarks) and name its classes.
    /// The default says nothing: no label is promised.
    fn info(&self) -> DatasetInfo {
        DatasetInfo::default()
    }
}

/// What a dataset holds: the labels every sample carries and what they
/// mean. A field is `None` (or empty) when the dataset does not hold it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DatasetInfo {
    /// The label names every sample carries (`crate::labels`).
    pub labels: Vec<String>,
    /// Expression (or other class) names, in label order.
    pub classes: Option<Vec<String>>,
    /// Action-unit names (`"AU1"`, ...), in the order of the `au` label.
    pub action_units: Option<Vec<String>>,
    /// The landmark layout of the `landmarks` label.
    pub landmarks: Option<LandmarkLayout>,
    /// Number of identities (`identity` label in `0..identities`).
    pub identities: Option<usize>,
    /// Verification pairs: samples `2i` and `2i+1` form pair `i`; each
    /// carries the pair's `same` (0/1) and `fold` labels.
    pub pairs: Option<PairLayout>,
    /// Whether samples carry a `subject` label (for subject-exclusive folds).
    pub subjects: bool,
    /// Parsing class names, in the order of the `parsing` label's ids.
    pub parsing_classes: Option<Vec<String>>,
}

/// A landmark layout and the points its NME normalisations use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LandmarkLayout {
    /// Layout name: `ibug68`, `wflw98`, `aflw19`, ...
    pub name: String,
    /// Points per face.
    pub count: usize,
    /// Outer eye corners, 0-based (inter-ocular normalisation).
    pub inter_ocular: Option<[usize; 2]>,
    /// The points whose means are the two pupil centres (inter-pupil
    /// normalisation): one point each where the layout has pupils.
    pub pupils: Option<[Vec<usize>; 2]>,
    /// Whether samples carry a face `box` label (box and diagonal units).
    pub has_box: bool,
}

impl LandmarkLayout {
    /// iBUG-68 (300W, synthface): eye corners 36 and 45, pupils the
    /// centres of 36..=41 and 42..=47.
    pub fn ibug68(has_box: bool) -> Self {
        LandmarkLayout {
            name: "ibug68".into(),
            count: 68,
            inter_ocular: Some([36, 45]),
            pupils: Some([(36..=41).collect(), (42..=47).collect()]),
            has_box,
        }
    }
}

/// How verification pairs are laid out (see [`DatasetInfo::pairs`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PairLayout {
    /// Cross-validation folds (`fold` label in `0..folds`).
    pub folds: usize,
}

impl DatasetInfo {
    /// An error naming `task` and what it needs unless the dataset carries
    /// every label of `needed`.
    ///
    /// ```
    /// # use visage_core::dataset::DatasetInfo;
    /// let info = DatasetInfo { labels: vec!["expression".into()], ..Default::default() };
    /// assert!(info.require("fer", &["expression"]).is_ok());
    /// let err = info.require("alignment", &["landmarks"]).unwrap_err().to_string();
    /// assert!(err.contains("alignment needs label `landmarks`"), "{err}");
    /// ```
    pub fn require(&self, task: &str, needed: &[&str]) -> Result<()> {
        for label in needed {
            if self.labels.is_empty() {
                return Err(crate::Error::msg(format!(
                    "{task} needs label `{label}`, but the dataset declares no labels (its `info()`)"
                )));
            }
            if !self.labels.iter().any(|l| l == label) {
                return Err(crate::Error::msg(format!(
                    "{task} needs label `{label}`, but the dataset holds only [{}]",
                    self.labels.join(", ")
                )));
            }
        }
        Ok(())
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
    fn identity(&self, index: usize) -> Option<usize> {
        self.run(|d| Ok(d.identity(index))).ok().flatten()
    }
    fn info(&self) -> DatasetInfo {
        self.run(|d| Ok(d.info())).unwrap_or_else(|e| {
            tracing::error!("{e}");
            DatasetInfo::default()
        })
    }
}
