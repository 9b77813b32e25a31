//! Which samples a batch holds: shuffled endless streams (pre-training) and
//! single epochs (evaluation), as pure functions of the batch number.

use std::sync::Arc;

use crate::rng::Rng;

/// Sample order of an endless shuffled stream: a fresh permutation per
/// epoch, derived from `(seed, epoch)`. Position `p` of the stream is
/// sample `permutation(seed, p / len)[p % len]` of epoch `p / len`.
///
/// ```
/// use visage_core::data::DataOrder;
/// let mut order = DataOrder::at(7, 10, 0);
/// let first: Vec<_> = (0..12).map(|_| order.next()).collect();
/// // Resuming after 5 samples continues where the first order was.
/// let mut resumed = DataOrder::at(7, 10, 5);
/// assert_eq!(resumed.next(), first[5]);
/// assert_eq!(first[10].0, 1); // the 11th sample is in epoch 1
/// ```
pub struct DataOrder {
    seed: u64,
    epoch: u64,
    position: usize,
    permutation: Vec<usize>,
}

impl DataOrder {
    /// The order of a dataset of `len` samples after `consumed` samples
    /// have been drawn. `len` must be positive.
    pub fn at(seed: u64, len: usize, consumed: usize) -> Self {
        let (epoch, position) = ((consumed / len) as u64, consumed % len);
        DataOrder {
            seed,
            epoch,
            position,
            permutation: permutation(seed, epoch, len),
        }
    }

    /// The next `(epoch, index)`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> (u64, usize) {
        if self.position == self.permutation.len() {
            self.epoch += 1;
            self.position = 0;
            self.permutation = permutation(self.seed, self.epoch, self.permutation.len());
        }
        self.position += 1;
        (self.epoch, self.permutation[self.position - 1])
    }
}

/// The permutation of epoch `epoch`: `Rng::new(&[seed, epoch]).permutation(len)`.
pub fn permutation(seed: u64, epoch: u64, len: usize) -> Vec<usize> {
    Rng::new(&[seed, epoch]).permutation(len)
}

/// How a loader walks a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// An endless shuffled stream (the order of [`DataOrder`]), starting
    /// after `consumed` samples; batches run across epoch boundaries, so
    /// micro-batch `b` holds stream positions `consumed + b * batch_size ..`.
    /// This is pre-training's order: a run resumed at step `s` starts at
    /// `consumed = s * batch_size * accumulate`.
    Stream {
        /// Samples drawn before the first batch.
        consumed: usize,
    },
    /// One epoch, then the loader ends: shuffled with the permutation of
    /// `(seed, epoch)`, or in index order (evaluation). With `drop_last` a
    /// last, partial batch is left out.
    Epoch {
        /// The epoch number (permutation and augmentation seeds).
        epoch: u64,
        /// Shuffle, or read `0..len` in order.
        shuffle: bool,
        /// Leave out a last batch smaller than `batch_size`.
        drop_last: bool,
    },
}

/// The `(epoch, index)` pairs of each batch.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub seed: u64,
    pub len: usize,
    pub batch_size: usize,
    pub sampling: Sampling,
}

impl Plan {
    /// Number of batches; `None` for an endless stream.
    pub fn batches(&self) -> Option<usize> {
        match self.sampling {
            Sampling::Stream { .. } => None,
            Sampling::Epoch { drop_last: true, .. } => Some(self.len / self.batch_size),
            Sampling::Epoch { drop_last: false, .. } => Some(self.len.div_ceil(self.batch_size)),
        }
    }

    /// The samples of batch `b`, or `None` past the end.
    pub fn batch(&self, b: usize, cache: &mut PermutationCache) -> Option<Vec<(u64, usize)>> {
        if self.batches().is_some_and(|n| b >= n) {
            return None;
        }
        let start = b * self.batch_size;
        Some(match self.sampling {
            Sampling::Stream { consumed } => (0..self.batch_size)
                .map(|j| {
                    let p = consumed + start + j;
                    let epoch = (p / self.len) as u64;
                    (epoch, cache.get(self.seed, epoch, self.len)[p % self.len])
                })
                .collect(),
            Sampling::Epoch { epoch, shuffle, .. } => {
                let end = (start + self.batch_size).min(self.len);
                if shuffle {
                    let perm = cache.get(self.seed, epoch, self.len);
                    (start..end).map(|p| (epoch, perm[p])).collect()
                } else {
                    (start..end).map(|p| (epoch, p)).collect()
                }
            }
        })
    }
}

/// The permutations of the last two epochs a worker needed.
#[derive(Default)]
pub(crate) struct PermutationCache(Vec<(u64, Arc<Vec<usize>>)>);

impl PermutationCache {
    fn get(&mut self, seed: u64, epoch: u64, len: usize) -> Arc<Vec<usize>> {
        if let Some((_, p)) = self.0.iter().find(|(e, _)| *e == epoch) {
            return p.clone();
        }
        let p = Arc::new(permutation(seed, epoch, len));
        if self.0.len() == 2 {
            self.0.remove(0);
        }
        self.0.push((epoch, p.clone()));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_batches_follow_the_data_order_across_epochs() {
        let (seed, len, bs) = (3, 10, 4);
        for consumed in [0, 7, 23] {
            let plan = Plan {
                seed,
                len,
                batch_size: bs,
                sampling: Sampling::Stream { consumed },
            };
            let mut order = DataOrder::at(seed, len, consumed);
            let mut cache = PermutationCache::default();
            for b in 0..8 {
                let expected: Vec<_> = (0..bs).map(|_| order.next()).collect();
                assert_eq!(plan.batch(b, &mut cache).unwrap(), expected);
            }
        }
    }

    #[test]
    fn an_epoch_covers_every_sample_once() {
        let mut cache = PermutationCache::default();
        for (shuffle, drop_last, batches, seen) in [(false, false, 3, 10), (true, true, 2, 8), (true, false, 3, 10)] {
            let plan = Plan {
                seed: 1,
                len: 10,
                batch_size: 4,
                sampling: Sampling::Epoch {
                    epoch: 2,
                    shuffle,
                    drop_last,
                },
            };
            assert_eq!(plan.batches(), Some(batches));
            let mut all: Vec<usize> = (0..batches)
                .flat_map(|b| plan.batch(b, &mut cache).unwrap())
                .map(|(e, i)| {
                    assert_eq!(e, 2);
                    i
                })
                .collect();
            assert!(plan.batch(batches, &mut cache).is_none());
            assert_eq!(all.len(), seen);
            if !shuffle {
                assert_eq!(all, (0..10).collect::<Vec<_>>());
            }
            all.sort();
            all.dedup();
            assert_eq!(all.len(), seen);
        }
    }
}
