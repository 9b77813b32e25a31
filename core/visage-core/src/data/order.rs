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

/// Identity-grouped shuffling (P x K sampling, as in person
/// re-identification): each epoch's order is made of runs of
/// `per_identity` samples of one identity, so that a batch of `B` holds
/// about `B / per_identity` people, several pictures of each.
///
/// The permutation of epoch `e` draws from `Rng::new(&[seed, e, GROUPED])`:
/// the members of each identity (in identity order) are shuffled and cut
/// into runs of `per_identity` (an identity's last run may be shorter);
/// the runs are then shuffled and laid end to end. Every sample still
/// appears once per epoch, so [`Sampling`] reads it like the uniform
/// permutation.
#[derive(Debug, Clone)]
pub(crate) struct IdentityRuns {
    /// The sample indices of each identity, ascending.
    pub members: Arc<Vec<Vec<usize>>>,
    /// Samples of one identity in a row.
    pub per_identity: usize,
}

/// Stream of the grouped permutations' seeds.
const GROUPED: u64 = 0x6772_6f75;

impl IdentityRuns {
    /// Groups `identities` (the identity of each sample, in index order).
    pub fn new(identities: &[usize], per_identity: usize) -> Self {
        let mut by_identity = std::collections::BTreeMap::<usize, Vec<usize>>::new();
        for (index, &identity) in identities.iter().enumerate() {
            by_identity.entry(identity).or_default().push(index);
        }
        IdentityRuns {
            members: Arc::new(by_identity.into_values().collect()),
            per_identity,
        }
    }

    /// The order of epoch `epoch` (see the type's docs).
    pub fn permutation(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut rng = Rng::new(&[seed, epoch, GROUPED]);
        let mut runs: Vec<Vec<usize>> = Vec::new();
        for members in self.members.iter() {
            let shuffled: Vec<usize> = rng.permutation(members.len()).into_iter().map(|i| members[i]).collect();
            runs.extend(shuffled.chunks(self.per_identity).map(<[usize]>::to_vec));
        }
        rng.permutation(runs.len())
            .into_iter()
            .flat_map(|r| runs[r].clone())
            .collect()
    }
}

/// The `(epoch, index)` pairs of each batch.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub seed: u64,
    pub len: usize,
    pub batch_size: usize,
    pub sampling: Sampling,
    /// Shuffle by identity runs instead of uniformly.
    pub identity_runs: Option<IdentityRuns>,
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
                    (epoch, cache.get(self, epoch)[p % self.len])
                })
                .collect(),
            Sampling::Epoch { epoch, shuffle, .. } => {
                let end = (start + self.batch_size).min(self.len);
                if shuffle {
                    let perm = cache.get(self, epoch);
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
    fn get(&mut self, plan: &Plan, epoch: u64) -> Arc<Vec<usize>> {
        if let Some((_, p)) = self.0.iter().find(|(e, _)| *e == epoch) {
            return p.clone();
        }
        let p = Arc::new(match &plan.identity_runs {
            Some(runs) => runs.permutation(plan.seed, epoch),
            None => permutation(plan.seed, epoch, plan.len),
        });
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
                identity_runs: None,
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
                identity_runs: None,
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

    #[test]
    fn identity_runs_cover_every_sample_in_runs_of_one_person() {
        // 7 people, interleaved in index order; person 6 has 3 more pictures.
        let identities: Vec<usize> = (0..63).map(|i| i % 7).chain([6, 6, 6]).collect();
        let runs = IdentityRuns::new(&identities, 4);
        for epoch in 0..3 {
            let order = runs.permutation(5, epoch);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..identities.len()).collect::<Vec<_>>(), "a permutation");
            // People 0-5 have runs of 4, 4, 1 and person 6 of 4, 4, 4: 21 runs,
            // so at most 20 changes of person along the order (fewer when two
            // runs of one person meet).
            let changes = order
                .windows(2)
                .filter(|w| identities[w[0]] != identities[w[1]])
                .count();
            assert!((10..=20).contains(&changes), "{changes} changes of person");
        }
        assert_ne!(runs.permutation(5, 0), runs.permutation(5, 1), "a new order each epoch");
        assert_ne!(runs.permutation(5, 0), runs.permutation(6, 0), "the seed moves it");
    }

    #[test]
    fn identity_runs_fill_a_batch_with_batch_size_over_per_identity_people() {
        // 6 people x 8 pictures, runs of 4, batches of 8: two runs a batch.
        let identities: Vec<usize> = (0..48).map(|i| i % 6).collect();
        let plan = Plan {
            seed: 1,
            len: 48,
            batch_size: 8,
            sampling: Sampling::Stream { consumed: 0 },
            identity_runs: Some(IdentityRuns::new(&identities, 4)),
        };
        let mut cache = PermutationCache::default();
        let mut pairs = 0;
        for b in 0..12 {
            let batch = plan.batch(b, &mut cache).unwrap();
            let mut people: Vec<usize> = batch.iter().map(|&(_, i)| identities[i]).collect();
            assert!(people[..4].iter().all(|&p| p == people[0]), "batch {b}: {people:?}");
            assert!(people[4..].iter().all(|&p| p == people[4]), "batch {b}: {people:?}");
            people.dedup();
            pairs += (people.len() == 2) as usize;
        }
        assert!(pairs >= 6, "most batches hold two people: {pairs} of 12");
    }
}
