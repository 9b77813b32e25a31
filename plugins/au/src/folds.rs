//! Subject-exclusive cross-validation folds: every sample of a subject
//! lies in one fold, so that no face is both trained on and scored.

use std::collections::BTreeMap;

use visage_core::metric::Metrics;
use visage_core::rng::Rng;
use visage_core::{Error, Result};

/// Stream of the subject permutation, apart from data order and the
/// validation split.
const FOLD_STREAM: u64 = 0x666f_6c64;

/// The fold (`0..k`) of each sample, given each sample's subject: the
/// distinct subjects, shuffled by `seed`, are dealt to the folds in turn,
/// so that fold sizes in subjects differ by at most one. An error when
/// there are fewer than `k` subjects.
pub fn assign(subjects: &[i64], k: usize, seed: u64) -> Result<Vec<usize>> {
    let mut distinct = subjects.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if k == 0 || distinct.len() < k {
        return Err(Error::msg(format!(
            "au: folds: {k} needs at least {k} subjects, but the train split has {}",
            distinct.len()
        )));
    }
    let order = Rng::new(&[seed, FOLD_STREAM]).permutation(distinct.len());
    let fold_of: BTreeMap<i64, usize> = order
        .iter()
        .enumerate()
        .map(|(turn, &index)| (distinct[index], turn % k))
        .collect();
    Ok(subjects.iter().map(|s| fold_of[s]).collect())
}

/// The sample indices trained on and scored in fold `i`: the samples of
/// the other folds, and its own.
pub fn rows(folds: &[usize], i: usize) -> (Vec<usize>, Vec<usize>) {
    (0..folds.len()).partition(|&r| folds[r] != i)
}

/// The mean over folds of each metric, beside each fold's own values as
/// `fold_<i>/<metric>`. A metric missing from some fold is averaged over
/// the folds that have it.
pub fn average(per_fold: &[Metrics]) -> Metrics {
    let mut sums: Metrics = Metrics::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut all = Metrics::new();
    for (i, metrics) in per_fold.iter().enumerate() {
        for (key, value) in metrics {
            *sums.entry(key.clone()).or_default() += value;
            *counts.entry(key.clone()).or_default() += 1;
            all.insert(format!("fold_{i}/{key}"), *value);
        }
    }
    for (key, sum) in sums {
        let n = counts[&key] as f64;
        all.insert(key, sum / n);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_lies_in_one_fold_and_folds_share_subjects_evenly() {
        // Subjects 7, 3, 9, 5, 1 with 2, 1, 3, 1, 2 samples.
        let subjects = [7, 7, 3, 9, 9, 9, 5, 1, 1];
        let folds = assign(&subjects, 3, 11).unwrap();
        for (a, b) in subjects.iter().zip(&folds) {
            for (c, d) in subjects.iter().zip(&folds) {
                if a == c {
                    assert_eq!(b, d, "subject {a} is split over folds");
                }
            }
        }
        // Five subjects in three folds: 2, 2 and 1 subjects.
        let mut per_fold = [
            std::collections::BTreeSet::new(),
            Default::default(),
            Default::default(),
        ];
        for (s, &f) in subjects.iter().zip(&folds) {
            per_fold[f].insert(*s);
        }
        let mut sizes: Vec<usize> = per_fold.iter().map(|s| s.len()).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 2, 2]);
        assert_eq!(assign(&subjects, 3, 11).unwrap(), folds, "seeded");
        let err = assign(&subjects, 6, 11).unwrap_err().to_string();
        assert!(
            err.contains("folds: 6 needs at least 6 subjects, but the train split has 5"),
            "{err}"
        );
    }

    #[test]
    fn rows_leave_one_fold_out_and_average_means_each_metric() {
        assert_eq!(rows(&[0, 1, 0, 2], 0), (vec![1, 3], vec![0, 2]));
        let fold = |f1: f64, auc: f64| Metrics::from([("f1_mean".to_string(), f1), ("auc_mean".to_string(), auc)]);
        let m = average(&[fold(40.0, 70.0), fold(50.0, 80.0), fold(60.0, 75.0)]);
        assert_eq!(m["f1_mean"], 50.0);
        assert_eq!(m["auc_mean"], 75.0);
        assert_eq!((m["fold_0/f1_mean"], m["fold_2/auc_mean"]), (40.0, 75.0));
        assert_eq!(m.len(), 8);
    }
}
