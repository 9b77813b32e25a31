//! A seeded validation split carved from a training split.

use std::sync::Arc;

use visage_core::dataset::{Dataset, DatasetInfo};
use visage_core::rng::Rng;
use visage_core::{Result, Sample};

/// Stream of the validation permutation, apart from data order.
const VALIDATION_STREAM: u64 = 0x7661_6c69;

/// The indices of `0..len` kept for training and held out for validation:
/// `round(fraction * len)` samples chosen by `seed` (at least one each
/// when `fraction > 0` and `len >= 2`), both sorted.
pub fn carve(len: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    if fraction <= 0.0 || len < 2 {
        return ((0..len).collect(), vec![]);
    }
    let held = ((fraction * len as f64).round() as usize).clamp(1, len - 1);
    let order = Rng::new(&[seed, VALIDATION_STREAM]).permutation(len);
    let (mut val, mut train) = (order[..held].to_vec(), order[held..].to_vec());
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

/// The samples `indices` of a dataset, in that order.
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// A view of `inner` through `indices` (each `< inner.len()`).
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Self {
        Subset { inner, indices }
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        self.inner.get(self.indices[index])
    }
    fn source(&self, index: usize) -> Option<std::path::PathBuf> {
        self.inner.source(*self.indices.get(index)?)
    }
    fn info(&self) -> DatasetInfo {
        self.inner.info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_seeded_disjoint_and_complete() {
        let (train, val) = carve(100, 0.1, 7);
        assert_eq!((train.len(), val.len()), (90, 10));
        let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(carve(100, 0.1, 7), (train.clone(), val.clone()));
        assert_ne!(carve(100, 0.1, 8).1, val);
        assert_eq!(carve(5, 0.0, 7), ((0..5).collect(), vec![]));
        assert_eq!(carve(3, 0.01, 7).1.len(), 1);
    }
}
