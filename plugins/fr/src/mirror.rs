//! LAFS's flip-summed embedding, `f(x) + f(hflip x)`: the test split is
//! read twice, the second time mirrored after its own augmentations (so
//! the flip is of the very tensor the backbone reads), and the two halves
//! of the outputs are summed.

use std::sync::Arc;

use visage_core::augmentation::Augmentation;
use visage_core::dataset::{Dataset, DatasetInfo};
use visage_core::task::EvalSplit;
use visage_core::tch::Tensor;
use visage_core::{Error, Result, Sample};

/// The label that marks the mirrored half (removed before batching).
const MIRROR: &str = "__fr_mirror";

/// Samples `0..N` of `inner`, then the same `N` again marked for mirroring.
struct Doubled(Arc<dyn Dataset>);

impl Dataset for Doubled {
    fn len(&self) -> usize {
        2 * self.0.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let n = self.0.len();
        let sample = self.0.get(index % n.max(1))?;
        Ok(sample.with_label(MIRROR, Tensor::from(i64::from(index >= n))))
    }
    fn source(&self, index: usize) -> Option<std::path::PathBuf> {
        self.0.source(index % self.0.len().max(1))
    }
    fn info(&self) -> DatasetInfo {
        self.0.info()
    }
}

/// Mirrors the image (`[C, H, W]`, last axis) of marked samples; drops the
/// mark. The other labels stay as they are: verification reads only
/// identities and pair labels, which a mirror keeps.
struct MirrorMarked;

impl Augmentation for MirrorMarked {
    fn apply(&self, mut sample: Sample, _seed: u64) -> Result<Sample> {
        let mark = sample
            .labels
            .remove(MIRROR)
            .ok_or_else(|| Error::msg("fr: a test sample lost its mirror mark"))?;
        if mark.int64_value(&[]) == 1 {
            sample.image = sample.image.flip([-1]);
        }
        Ok(sample)
    }
}

/// `split` read twice: first as it is, then each sample mirrored after
/// the split's augmentations.
pub fn with_mirrors(split: &EvalSplit) -> EvalSplit {
    let own = split.augmentations.clone();
    let mut augmentations: Vec<Box<dyn Augmentation>> = (0..own.len())
        .map(|k| Box::new(Nth(own.clone(), k)) as Box<dyn Augmentation>)
        .collect();
    augmentations.push(Box::new(MirrorMarked));
    EvalSplit {
        dataset: Arc::new(Doubled(split.dataset.clone())),
        augmentations: Arc::from(augmentations),
    }
}

/// Augmentation `k` of the split's own (shared, not copied).
struct Nth(Arc<[Box<dyn Augmentation>]>, usize);

impl Augmentation for Nth {
    fn apply(&self, sample: Sample, seed: u64) -> Result<Sample> {
        self.0[self.1].apply(sample, seed)
    }
}

/// `f(x) + f(hflip x)`: the outputs `[2N, ...]` of a [`with_mirrors`]
/// split, flattened and summed by halves to `[N, D]`.
pub fn flip_sum(outputs: &Tensor) -> Result<Tensor> {
    let rows = outputs.size()[0];
    if rows % 2 != 0 {
        return Err(Error::msg(format!(
            "fr: {rows} outputs for a mirrored split; expected an even count (each image, then its mirror)"
        )));
    }
    let flat = outputs.flatten(1, -1);
    Ok(flat.narrow(0, 0, rows / 2) + flat.narrow(0, rows / 2, rows / 2))
}

/// The first half of each label of a [`with_mirrors`] split: the labels of
/// the `N` images.
pub fn first_half(labels: &visage_core::metric::Labels) -> visage_core::metric::Labels {
    labels
        .iter()
        .map(|(k, v)| (k.clone(), v.narrow(0, 0, v.size()[0] / 2)))
        .collect()
}
