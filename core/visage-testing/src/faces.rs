//! Tiny synthface splits for the task tests.

use std::sync::Arc;

use synthface::dataset::SynthFace;
use synthface::SynthFaceParams;
use visage_core::dataset::{Dataset, DatasetContext, Split};

/// A tiny synthface dataset at 32 x 32 px: `train_identities` identities in
/// the train split and `test_identities` others in the test split,
/// `per_identity` faces each, generated with `seed`; every other parameter
/// is synthface's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TinySynthFace {
    /// Identities of the train split.
    pub train_identities: usize,
    /// Identities of the test split.
    pub test_identities: usize,
    /// Faces per identity.
    pub per_identity: usize,
    /// The dataset seed.
    pub seed: u64,
}

impl TinySynthFace {
    /// `train_identities` train and 2 test identities, `per_identity` faces
    /// each, seed 0.
    pub const fn new(train_identities: usize, per_identity: usize) -> Self {
        TinySynthFace {
            train_identities,
            test_identities: 2,
            per_identity,
            seed: 0,
        }
    }

    /// The synthface parameters this describes.
    pub fn params(&self) -> SynthFaceParams {
        SynthFaceParams {
            identities: self.train_identities + self.test_identities,
            test_identities: self.test_identities,
            samples_per_identity: self.per_identity,
            resolution: 32,
            ..SynthFaceParams::default()
        }
    }

    /// One split.
    ///
    /// # Panics
    /// When synthface refuses the parameters (a test's own mistake).
    pub fn split(&self, split: Split) -> Arc<dyn Dataset> {
        let ctx = DatasetContext { split, seed: self.seed };
        match SynthFace::new(self.params(), &ctx) {
            Ok(dataset) => Arc::new(dataset),
            Err(e) => panic!("synthface refused {self:?}: {e}"),
        }
    }

    /// The train and the test split.
    pub fn splits(&self) -> (Arc<dyn Dataset>, Arc<dyn Dataset>) {
        (self.split(Split::Train), self.split(Split::Test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_splits_hold_their_identities_times_the_faces_of_each() {
        let faces = TinySynthFace::new(3, 4);
        let (train, test) = faces.splits();
        assert_eq!((train.len(), test.len()), (12, 8));
        let image = test.get(0).unwrap().image;
        assert_eq!(image.size(), [3, 32, 32]);
        let other = TinySynthFace { seed: 1, ..faces };
        assert_eq!(other.params(), faces.params());
        assert_eq!(other.split(Split::Test).len(), 8);
    }
}
