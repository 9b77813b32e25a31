//! Verification pairs for a dataset that has identities but no pairs
//! (synthface): balanced, seeded, in 10 folds as LFW's `pairs.txt` (each
//! fold its same-identity pairs, then as many different-identity ones).

use std::collections::BTreeMap;

use visage_core::metric::Labels;
use visage_core::rng::Rng;
use visage_core::tch::Tensor;
use visage_core::{Error, Result};

/// Stream of the pair draws, apart from data order and validation.
const PAIRS_STREAM: u64 = 0x7061_6972;

/// Pairs of sample indices with their labels, pair `i` being
/// `(first[i], second[i])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs {
    /// The first sample of each pair.
    pub first: Vec<usize>,
    /// The second sample of each pair.
    pub second: Vec<usize>,
    /// Whether the pair is one identity.
    pub same: Vec<bool>,
    /// The pair's fold.
    pub fold: Vec<i64>,
}

/// `pairs / folds` pairs per fold (the remainder dropped), the first half
/// (rounded down) of each fold same-identity, the rest different. A same
/// pair: an identity drawn uniformly among those with two samples or more,
/// then two distinct samples of it drawn uniformly; a different pair: two
/// distinct identities drawn uniformly, one sample of each drawn
/// uniformly. Draws are with replacement across pairs, from `seed`.
pub fn balanced_pairs(identities: &[i64], pairs: usize, folds: usize, seed: u64) -> Result<Pairs> {
    let mut by_identity: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &id) in identities.iter().enumerate() {
        by_identity.entry(id).or_default().push(i);
    }
    let all: Vec<&Vec<usize>> = by_identity.values().collect();
    let repeated: Vec<&Vec<usize>> = all.iter().copied().filter(|s| s.len() >= 2).collect();
    if all.len() < 2 || repeated.is_empty() {
        return Err(Error::msg(format!(
            "fr: building verification pairs needs two identities and one with two images; \
             the test split has {} identities, {} with two images or more",
            all.len(),
            repeated.len()
        )));
    }
    let per_fold = pairs / folds.max(1);
    let same_per_fold = per_fold / 2;
    let mut rng = Rng::new(&[seed, PAIRS_STREAM]);
    let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
    let mut out = Pairs {
        first: vec![],
        second: vec![],
        same: vec![],
        fold: vec![],
    };
    for fold in 0..folds {
        for k in 0..per_fold {
            let same = k < same_per_fold;
            let (a, b) = if same {
                let samples = repeated[pick(repeated.len())];
                let a = pick(samples.len());
                let b = (a + 1 + pick(samples.len() - 1)) % samples.len();
                (samples[a], samples[b])
            } else {
                let a = pick(all.len());
                let b = (a + 1 + pick(all.len() - 1)) % all.len();
                (all[a][pick(all[a].len())], all[b][pick(all[b].len())])
            };
            out.first.push(a);
            out.second.push(b);
            out.same.push(same);
            out.fold.push(fold as i64);
        }
    }
    Ok(out)
}

impl Pairs {
    /// The embeddings `[2P, D]` of the pairs (images `2i`, `2i+1` of pair
    /// `i`) picked from `embeddings` `[N, D]`, and the per-image labels
    /// `same` and `fold` under the names given.
    pub fn arrange(&self, embeddings: &Tensor, same: &str, fold: &str) -> (Tensor, Labels) {
        let index: Vec<i64> = self
            .first
            .iter()
            .zip(&self.second)
            .flat_map(|(&a, &b)| [a as i64, b as i64])
            .collect();
        let index = Tensor::from_slice(&index).to_device(embeddings.device());
        let twice = |v: Vec<i64>| Tensor::from_slice(&v.iter().flat_map(|&x| [x, x]).collect::<Vec<_>>());
        let labels = [
            (
                same.to_string(),
                twice(self.same.iter().map(|&s| i64::from(s)).collect()),
            ),
            (fold.to_string(), twice(self.fold.clone())),
        ]
        .into();
        (embeddings.index_select(0, &index), labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_balanced_per_fold_and_honest_about_identity() {
        // Identities 0 (samples 0, 1, 2), 1 (3), 2 (4, 5).
        let ids = [0, 0, 0, 1, 2, 2];
        let p = balanced_pairs(&ids, 45, 10, 3).unwrap();
        // 45 / 10 = 4 a fold: 2 same then 2 different.
        assert_eq!(p.same.len(), 40);
        assert_eq!(&p.same[..4], &[true, true, false, false]);
        assert_eq!(p.fold.iter().filter(|&&f| f == 9).count(), 4);
        for i in 0..40 {
            let (a, b) = (p.first[i], p.second[i]);
            assert_eq!(ids[a] == ids[b], p.same[i], "pair {i}: {a}, {b}");
            assert_ne!(a, b);
        }
        assert_eq!(balanced_pairs(&ids, 45, 10, 3).unwrap(), p);
        assert_ne!(balanced_pairs(&ids, 45, 10, 4).unwrap(), p);
        let err = balanced_pairs(&[0, 1, 2], 20, 10, 0).unwrap_err().to_string();
        assert!(err.contains("0 with two images"), "{err}");
    }

    #[test]
    fn arranged_pairs_put_each_pair_on_rows_2i_and_2i_plus_1() {
        let p = Pairs {
            first: vec![2, 0],
            second: vec![1, 2],
            same: vec![true, false],
            fold: vec![0, 1],
        };
        let e = Tensor::from_slice2(&[[0.0f32], [10.0], [20.0]]);
        let (rows, labels) = p.arrange(&e, "same", "fold");
        assert_eq!(
            Vec::<f32>::try_from(rows.flatten(0, -1)).unwrap(),
            [20.0, 10.0, 0.0, 20.0]
        );
        assert_eq!(Vec::<i64>::try_from(&labels["same"]).unwrap(), [1, 1, 0, 0]);
        assert_eq!(Vec::<i64>::try_from(&labels["fold"]).unwrap(), [0, 0, 1, 1]);
    }
}
