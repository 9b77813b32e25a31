//! Face verification as LAFS evaluates it (`tasks.md`): pairs of
//! embeddings (images `2i`, `2i+1`, flip-summed by the task), L2-normalised,
//! scored by squared L2 distance; 10 folds without shuffling, each fold's
//! threshold the best of 0, 0.01, ..., 3.99 on the other nine; "same" when
//! the distance is below the threshold. Also PCL's fixed-threshold cosine
//! accuracy, and IJB's TAR at FAR for template scores.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;
use visage_core::metric::{label, Labels, Metric, Metrics};
use visage_core::{Error, Registry, Result};

use super::{doubles, longs, shape};

/// Folds of the protocol.
pub const FOLDS: usize = 10;

/// The FARs at which IJB-B/C report TAR; the headline is `1e-4`.
pub const FARS: [f64; 6] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

/// The candidate thresholds on the squared distance: 0, 0.01, ..., 3.99
/// (numpy's `arange(0, 4, 0.01)`, element `i` being `i * 0.01`).
pub fn thresholds() -> Vec<f64> {
    (0..400).map(|i| i as f64 * 0.01).collect()
}

/// Rows of `embeddings` `[M, D]` divided by their L2 norm (rows of norm 0
/// stay 0, as scikit-learn's `normalize`), as `M` vectors of `f64`.
fn normalised_rows(embeddings: &Tensor) -> Result<Vec<Vec<f64>>> {
    let size = shape(embeddings, &[None, None], "embeddings [2P, D]")?;
    let d = size[1] as usize;
    let values = doubles(embeddings)?;
    Ok(values
        .chunks(d.max(1))
        .take(size[0] as usize)
        .map(|row| {
            let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
            let scale = if norm == 0.0 { 1.0 } else { 1.0 / norm };
            row.iter().map(|x| x * scale).collect()
        })
        .collect())
}

/// `score` of the L2-normalised embeddings of each pair `(2i, 2i+1)` of
/// `embeddings` `[2P, D]`; an error for an odd count.
fn per_pair_score(embeddings: &Tensor, score: impl Fn(&[f64], &[f64]) -> f64) -> Result<Vec<f64>> {
    let rows = normalised_rows(embeddings)?;
    if rows.len() % 2 != 0 {
        return Err(Error::msg(format!(
            "verification: {} embeddings, expected pairs (images 2i and 2i+1)",
            rows.len()
        )));
    }
    Ok(rows.chunks(2).map(|p| score(&p[0], &p[1])).collect())
}

/// The squared L2 distance, in `[0, 4]`, between the L2-normalised
/// embeddings of each pair: `[P]` for embeddings `[2P, D]`.
pub fn pair_distances(embeddings: &Tensor) -> Result<Vec<f64>> {
    per_pair_score(embeddings, |a, b| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum())
}

/// The cosine similarity of each pair: `[P]` for embeddings `[2P, D]`.
pub fn pair_cosines(embeddings: &Tensor) -> Result<Vec<f64>> {
    per_pair_score(embeddings, |a, b| a.iter().zip(b).map(|(x, y)| x * y).sum())
}

/// The fold of each of `pairs` pairs when they are cut into `folds`
/// contiguous folds without shuffling, as scikit-learn's `KFold`: the first
/// `pairs % folds` folds hold one pair more.
pub fn contiguous_folds(pairs: usize, folds: usize) -> Vec<i64> {
    let folds = folds.max(1);
    let (base, extra) = (pairs / folds, pairs % folds);
    (0..folds)
        .flat_map(|f| std::iter::repeat_n(f as i64, base + usize::from(f < extra)))
        .collect()
}

/// The k-fold verification result.
#[derive(Debug, Clone, PartialEq)]
pub struct KFoldAccuracy {
    /// Mean over folds of the test-fold accuracy, percent.
    pub accuracy: f64,
    /// Standard deviation (population, numpy's `std`) over folds, percent.
    pub std: f64,
    /// The accuracy of each fold, percent, in fold order.
    pub fold_accuracies: Vec<f64>,
    /// The threshold chosen for each fold on the other folds.
    pub fold_thresholds: Vec<f64>,
}

/// Correct decisions ("same" when distance < threshold) among `pairs`.
fn correct(threshold: f64, distances: &[f64], same: &[bool], pairs: &[usize]) -> usize {
    pairs.iter().filter(|&&i| (distances[i] < threshold) == same[i]).count()
}

/// LAFS's k-fold accuracy of squared `distances` `[P]` against `same`
/// `[P]`: for each fold (the distinct values of `folds` `[P]`, in order),
/// the first threshold of [`thresholds`] with the most correct decisions on
/// the other folds is applied to the fold.
pub fn k_fold_accuracy(distances: &[f64], same: &[bool], folds: &[i64]) -> Result<KFoldAccuracy> {
    if distances.len() != same.len() || folds.len() != same.len() {
        return Err(Error::msg(format!(
            "verification: {} distances, {} same labels and {} folds; expected one of each per pair",
            distances.len(),
            same.len(),
            folds.len()
        )));
    }
    let mut names: Vec<i64> = folds.to_vec();
    names.sort_unstable();
    names.dedup();
    if names.len() < 2 {
        return Err(Error::msg(format!(
            "verification: {} fold(s) among {} pairs; k-fold accuracy needs at least 2",
            names.len(),
            same.len()
        )));
    }
    let candidates = thresholds();
    let (mut fold_accuracies, mut fold_thresholds) = (Vec::new(), Vec::new());
    for fold in names {
        let (test, train): (Vec<usize>, Vec<usize>) = (0..same.len()).partition(|&i| folds[i] == fold);
        // The first best, as numpy's argmax.
        let mut best = (0, candidates[0]);
        for &t in &candidates {
            let hits = correct(t, distances, same, &train);
            if hits > best.0 {
                best = (hits, t);
            }
        }
        fold_thresholds.push(best.1);
        fold_accuracies.push(100.0 * correct(best.1, distances, same, &test) as f64 / test.len() as f64);
    }
    let k = fold_accuracies.len() as f64;
    let accuracy = fold_accuracies.iter().sum::<f64>() / k;
    let variance = fold_accuracies.iter().map(|a| (a - accuracy).powi(2)).sum::<f64>() / k;
    Ok(KFoldAccuracy {
        accuracy,
        std: variance.sqrt(),
        fold_accuracies,
        fold_thresholds,
    })
}

/// Accuracy, percent, of deciding "same" where the cosine similarity of a
/// pair exceeds `threshold` (PCL's fixed-threshold evaluation).
pub fn cosine_accuracy(cosines: &[f64], same: &[bool], threshold: f64) -> Result<f64> {
    if cosines.len() != same.len() || same.is_empty() {
        return Err(Error::msg(format!(
            "cosine accuracy: {} similarities for {} pairs",
            cosines.len(),
            same.len()
        )));
    }
    let hits = cosines.iter().zip(same).filter(|(&c, &s)| (c > threshold) == s).count();
    Ok(100.0 * hits as f64 / same.len() as f64)
}

/// The ROC of `scores` (higher = more alike) against `same`, as
/// scikit-learn's `roc_curve` (with its default `drop_intermediate`): one
/// point per distinct score, points collinear with both neighbours dropped,
/// `(0, 0)` first. Returns `(fpr, tpr)`.
pub fn roc(scores: &[f64], same: &[bool]) -> Result<(Vec<f64>, Vec<f64>)> {
    if scores.len() != same.len() {
        return Err(Error::msg(format!(
            "ROC: {} scores for {} labels",
            scores.len(),
            same.len()
        )));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut fps, mut tps) = (Vec::new(), Vec::new());
    let (mut fp, mut tp) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        if same[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_score = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_score {
            fps.push(fp);
            tps.push(tp);
        }
    }
    if tp == 0 || fp == 0 {
        return Err(Error::msg(format!(
            "ROC: {tp} genuine and {fp} impostor pairs; both are needed"
        )));
    }
    let keep: Vec<usize> = (0..fps.len())
        .filter(|&i| {
            let second = |v: &[usize]| v[i + 1] as i64 - 2 * v[i] as i64 + v[i - 1] as i64;
            i == 0 || i + 1 == fps.len() || second(&fps) != 0 || second(&tps) != 0
        })
        .collect();
    let fpr = std::iter::once(0.0)
        .chain(keep.iter().map(|&i| fps[i] as f64 / fp as f64))
        .collect();
    let tpr = std::iter::once(0.0)
        .chain(keep.iter().map(|&i| tps[i] as f64 / tp as f64))
        .collect();
    Ok((fpr, tpr))
}

/// TAR, percent, at each of `fars`: the TPR of the [`roc`] point whose FPR
/// is nearest the FAR, without interpolation, as LAFS's IJB evaluation
/// (`IJB_evaluation.py`). On a tie the last such point wins (in increasing
/// FPR): of the two ends of a vertical step, the larger TPR, as the
/// official code, which flips the curve before its `min` ("select largest
/// tpr at same fpr").
pub fn tar_at_far(scores: &[f64], same: &[bool], fars: &[f64]) -> Result<Vec<f64>> {
    let (fpr, tpr) = roc(scores, same)?;
    Ok(fars
        .iter()
        .map(|&far| {
            let mut nearest = 0;
            for (i, f) in fpr.iter().enumerate() {
                if (f - far).abs() <= (fpr[nearest] - far).abs() {
                    nearest = i;
                }
            }
            100.0 * tpr[nearest]
        })
        .collect())
}

/// Parameters of `verification`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationParams {
    /// The label saying whether a sample's pair is one identity (both
    /// samples of a pair carry it).
    #[serde(default = "same_label")]
    pub same: String,
    /// The label giving a pair's fold; when the task passes no such label
    /// the pairs are cut into `folds` contiguous folds.
    #[serde(default = "fold_label")]
    pub fold: String,
    /// Contiguous folds when there is no fold label.
    #[serde(default = "ten")]
    pub folds: usize,
    /// Also report `accuracy_cosine`: "same" when the cosine similarity
    /// exceeds this fixed threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosine_threshold: Option<f64>,
}

impl Default for VerificationParams {
    fn default() -> Self {
        Self {
            same: same_label(),
            fold: fold_label(),
            folds: ten(),
            cosine_threshold: None,
        }
    }
}

fn same_label() -> String {
    visage_core::labels::SAME.into()
}

fn fold_label() -> String {
    visage_core::labels::FOLD.into()
}

fn ten() -> usize {
    FOLDS
}

/// The value of a per-sample label for each pair (from sample `2i`),
/// checked to agree between the two samples of every pair.
fn per_pair(values: &Tensor, samples: i64, name: &str) -> Result<Vec<i64>> {
    shape(
        values,
        &[Some(samples)],
        &format!("verification label `{name}` (one per image)"),
    )?;
    let v = longs(values)?;
    if let Some(i) = (0..v.len() / 2).find(|&i| v[2 * i] != v[2 * i + 1]) {
        return Err(Error::msg(format!(
            "verification: label `{name}` of pair {i} differs between images {} and {}",
            2 * i,
            2 * i + 1
        )));
    }
    Ok(v.iter().step_by(2).copied().collect())
}

/// LAFS's verification of flip-summed embeddings `[2P, D]`: the values
/// `accuracy`, `accuracy_std` (percent), `threshold` (the mean of the
/// folds' thresholds), and `accuracy_cosine` when a cosine threshold is set.
pub struct Verification(pub VerificationParams);

impl Metric for Verification {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let samples = shape(outputs, &[None, None], "verification embeddings [2P, D]")?[0];
        let same: Vec<bool> = per_pair(label(labels, &self.0.same, "verification")?, samples, &self.0.same)?
            .iter()
            .map(|&s| s == 1)
            .collect();
        let folds = match labels.get(&self.0.fold) {
            Some(fold) => per_pair(fold, samples, &self.0.fold)?,
            None => contiguous_folds(same.len(), self.0.folds),
        };
        let result = k_fold_accuracy(&pair_distances(outputs)?, &same, &folds)?;
        let threshold = result.fold_thresholds.iter().sum::<f64>() / result.fold_thresholds.len() as f64;
        let mut values: Metrics = [
            ("accuracy".to_string(), result.accuracy),
            ("accuracy_std".to_string(), result.std),
            ("threshold".to_string(), threshold),
        ]
        .into();
        if let Some(t) = self.0.cosine_threshold {
            values.insert(
                "accuracy_cosine".into(),
                cosine_accuracy(&pair_cosines(outputs)?, &same, t)?,
            );
        }
        Ok(values)
    }
}

/// Registers `verification`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("verification", |p: VerificationParams, _| Ok(Verification(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_contiguous_and_the_first_ones_take_the_remainder() {
        assert_eq!(contiguous_folds(7, 3), [0, 0, 0, 1, 1, 2, 2]);
        assert_eq!(contiguous_folds(20, 10).iter().filter(|&&f| f == 9).count(), 2);
        assert_eq!(thresholds().len(), 400);
        assert_eq!(thresholds()[399], 3.99);
    }

    #[test]
    fn distances_are_squared_l2_of_normalised_embeddings() {
        // Pair 0: (3, 4) and (6, 8) point the same way -> 0. Pair 1: (1, 0)
        // and (0, 2) are orthogonal -> |(1, -1)|^2 = 2, cosine 0.
        let e = Tensor::from_slice2(&[[3.0f32, 4.0], [6.0, 8.0], [1.0, 0.0], [0.0, 2.0]]);
        let d = pair_distances(&e).unwrap();
        assert!(d[0].abs() < 1e-12 && (d[1] - 2.0).abs() < 1e-12, "{d:?}");
        let c = pair_cosines(&e).unwrap();
        assert!((c[0] - 1.0).abs() < 1e-12 && c[1].abs() < 1e-12);
        assert!(pair_distances(&e.narrow(0, 0, 3)).is_err());
    }

    #[test]
    fn each_fold_takes_the_best_threshold_of_the_others() {
        // Four pairs in two folds. Fold 0 = pairs 0, 1 (same, d 0.5; not, d 1.5);
        // fold 1 = pairs 2, 3 (same, d 1.0; not, d 1.2).
        let d = [0.5, 1.5, 1.0, 1.2];
        let same = [true, false, true, false];
        let r = k_fold_accuracy(&d, &same, &[0, 0, 1, 1]).unwrap();
        // Fold 0 trains on fold 1: thresholds in (1.0, 1.2] are right on both;
        // the first is 1.01. On fold 0: 0.5 < 1.01 same, 1.5 not -> 100%.
        // Fold 1 trains on fold 0: the first threshold above 0.5 is 0.51; on
        // fold 1: 1.0 >= 0.51 says "not" (wrong), 1.2 "not" (right) -> 50%.
        let t = &r.fold_thresholds;
        assert!((t[0] - 1.01).abs() < 1e-12 && (t[1] - 0.51).abs() < 1e-12, "{t:?}");
        assert_eq!(r.fold_accuracies, [100.0, 50.0]);
        assert_eq!((r.accuracy, r.std), (75.0, 25.0));
        assert!(k_fold_accuracy(&d, &same, &[0, 0, 0, 0]).is_err());
    }

    #[test]
    fn the_component_reads_pairs_and_folds_and_can_add_a_cosine_threshold() {
        // Pairs: identical (d 0, same), orthogonal (d 2, not), opposite (d 4, not),
        // identical (d 0, same); folds 0, 0, 1, 1. Any threshold in (0, 2] is
        // perfect on either half; the first is 0.01 -> 100% on both folds.
        let e = Tensor::from_slice2(&[
            [1.0f32, 0.0],
            [2.0, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, 0.0],
            [-1.0, 0.0],
            [0.0, 1.0],
            [0.0, 3.0],
        ]);
        let labels: Labels = [
            ("same".to_string(), Tensor::from_slice(&[1i64, 1, 0, 0, 0, 0, 1, 1])),
            ("fold".to_string(), Tensor::from_slice(&[0i64, 0, 0, 0, 1, 1, 1, 1])),
        ]
        .into();
        let m = Verification(VerificationParams {
            cosine_threshold: Some(0.5),
            ..VerificationParams::default()
        });
        let v = m.compute(&e, &labels).unwrap();
        assert_eq!((v["accuracy"], v["accuracy_std"], v["threshold"]), (100.0, 0.0, 0.01));
        // Cosines 1, 0, -1, 1 against 0.5: all right.
        assert_eq!(v["accuracy_cosine"], 100.0);
        let mut broken = labels;
        broken.insert("same".into(), Tensor::from_slice(&[1i64, 0, 0, 0, 0, 0, 1, 1]));
        let err = m.compute(&e, &broken).unwrap_err();
        assert!(err.to_string().contains("pair 0"), "{err}");
    }

    #[test]
    fn tar_is_read_at_the_roc_point_nearest_the_far() {
        // Scores (label): 0.9 (same), 0.8 (not), 0.7 (same), 0.6 (not), 0.5 (not), 0.4 (same).
        // Thresholds in order give (fpr, tpr) after (0, 0): (0, 1/3), (1/3, 1/3),
        // (1/3, 2/3), (2/3, 2/3), (1, 2/3), (1, 1). (2/3, 2/3) lies between
        // (1/3, 2/3) and (1, 2/3) on one line: dropped.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let same = [true, false, true, false, false, true];
        let (fpr, tpr) = roc(&scores, &same).unwrap();
        let (third, two_thirds) = (1.0 / 3.0, 2.0 / 3.0);
        assert_eq!(fpr, [0.0, 0.0, third, third, 1.0, 1.0]);
        assert_eq!(tpr, [0.0, third, third, two_thirds, two_thirds, 1.0]);
        // FAR 0.1 is nearest FPR 0 (the last such point: TPR 1/3); FAR 0.3
        // nearest 1/3 (last: TPR 2/3); FAR 0.9 nearest 1 (last: TPR 1).
        let tar = tar_at_far(&scores, &same, &[0.1, 0.3, 0.9]).unwrap();
        assert_eq!(tar, [100.0 * third, 100.0 * two_thirds, 100.0]);
        assert!(roc(&[0.1], &[true]).is_err());
    }
}
