//! Augmentations: random, seeded transforms of one sample.

use crate::guard::Guarded;
use crate::sample::Sample;
use crate::Result;

/// A transform of one sample. All randomness must come from `seed`, which
/// the pipeline derives from (experiment seed, epoch, index, view).
pub trait Augmentation: Send + Sync {
    /// Transforms `sample`.
    fn apply(&self, sample: Sample, seed: u64) -> Result<Sample>;
}

impl<A: Augmentation> Augmentation for Guarded<A> {
    fn apply(&self, sample: Sample, seed: u64) -> Result<Sample> {
        self.run(|a| a.apply(sample, seed))
    }
}
