//! Action-unit detection (no official code in the three papers; the
//! field's convention, `tasks.md`): per-AU binary F1 at a probability
//! threshold of 0.5 and their mean, and the mean ROC AUC over AUs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;
use visage_core::labels::AU_NAMES;
use visage_core::metric::{label, Labels, Metric, Metrics};
use visage_core::{Error, Registry, Result};

use super::{doubles, shape};

/// Scores and targets by AU column.
struct Columns {
    /// The `N` scores of each AU.
    scores: Vec<Vec<f64>>,
    /// Whether each AU is present, for each of the `N` samples.
    present: Vec<Vec<bool>>,
}

/// The columns of `[N, K]` scores and `[N, K]` 0/1 targets, checked to
/// have one shape.
fn columns(scores: &Tensor, target: &Tensor) -> Result<Columns> {
    let size = shape(target, &[None, None], "AU targets [N, K]")?;
    shape(scores, &[Some(size[0]), Some(size[1])], "AU probabilities [N, K]")?;
    let (n, k) = (size[0] as usize, size[1] as usize);
    let (s, t) = (doubles(scores)?, doubles(target)?);
    let by_au = |j: usize| (0..n).map(move |i| i * k + j);
    Ok(Columns {
        scores: (0..k).map(|j| by_au(j).map(|i| s[i]).collect()).collect(),
        present: (0..k).map(|j| by_au(j).map(|i| t[i] > 0.5).collect()).collect(),
    })
}

/// Binary F1 of each AU, percent: an AU is predicted present where its
/// probability is `>= threshold`; F1 = 2TP / (2TP + FP + FN), 0 when an AU
/// is neither present nor predicted (scikit-learn's `zero_division=0`).
/// `probabilities` and `target` are `[N, K]`, `target` 0/1.
pub fn f1_per_au(probabilities: &Tensor, target: &Tensor, threshold: f64) -> Result<Vec<f64>> {
    let c = columns(probabilities, target)?;
    Ok(c.scores
        .iter()
        .zip(&c.present)
        .map(|(s, t)| {
            let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
            for (&score, &present) in s.iter().zip(t) {
                match (score >= threshold, present) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    (false, false) => {}
                }
            }
            let denominator = 2 * tp + fp + fn_;
            if denominator == 0 {
                0.0
            } else {
                100.0 * (2 * tp) as f64 / denominator as f64
            }
        })
        .collect())
}

/// ROC AUC of `scores` against `positive`, in 0..1: the chance that a
/// random positive scores above a random negative, ties counting half
/// (the Mann-Whitney statistic with average ranks). `None` without both
/// classes.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Sorted places i..=j (ranks i+1 ..= j+1) share their mean rank.
        for &o in &order[i..=j] {
            ranks[o] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    let positives = positive.iter().filter(|&&p| p).count() as f64;
    let negatives = positive.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let rank_sum: f64 = ranks.iter().zip(positive).filter(|(_, &p)| p).map(|(r, _)| r).sum();
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Mean over AUs of the ROC AUC of `scores` `[N, K]` (probabilities or
/// logits: only their order counts) against 0/1 `target` `[N, K]`,
/// percent. AUs whose targets hold one class only have no AUC: they are
/// left out, and named in a warning (`names[j]` names column `j`). An error
/// when no AU has both classes.
pub fn mean_auc(scores: &Tensor, target: &Tensor, names: &[String]) -> Result<f64> {
    let c = columns(scores, target)?;
    let k = c.scores.len();
    check_names(names, k)?;
    let mut aucs = Vec::with_capacity(k);
    for ((s, t), name) in c.scores.iter().zip(&c.present).zip(names) {
        match roc_auc(s, t) {
            Some(auc) => aucs.push(auc),
            None => tracing::warn!(au = %name, "AU has one class only in the targets: left out of the mean ROC AUC"),
        }
    }
    if aucs.is_empty() {
        return Err(Error::msg(format!(
            "mean ROC AUC: none of the {k} AUs has both present and absent samples"
        )));
    }
    Ok(100.0 * aucs.iter().sum::<f64>() / aucs.len() as f64)
}

fn check_names(names: &[String], k: usize) -> Result<()> {
    if names.len() != k {
        return Err(Error::msg(format!(
            "AU metrics: {} AU names [{}] for {k} AU columns",
            names.len(),
            names.join(", ")
        )));
    }
    Ok(())
}

/// Parameters of `au_f1` and `au_auc`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuParams {
    /// The label holding the 0/1 targets `[N, K]`.
    #[serde(default = "au_label")]
    pub label: String,
    /// The name of each AU column, in order (`f1/<name>`).
    #[serde(default = "au_names")]
    pub names: Vec<String>,
    /// Probability from which an AU counts as predicted present (F1 only).
    #[serde(default = "half")]
    pub threshold: f64,
}

impl Default for AuParams {
    fn default() -> Self {
        Self {
            label: au_label(),
            names: au_names(),
            threshold: half(),
        }
    }
}

fn au_label() -> String {
    visage_core::labels::AU.into()
}

fn au_names() -> Vec<String> {
    AU_NAMES.iter().map(|s| s.to_string()).collect()
}

fn half() -> f64 {
    0.5
}

/// Per-AU F1 of probabilities `[N, K]` (after the sigmoid): the values
/// `f1/<AU>` and their mean `f1_mean`, percent.
pub struct AuF1(pub AuParams);

impl Metric for AuF1 {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let target = label(labels, &self.0.label, "au_f1")?;
        let f1 = f1_per_au(outputs, target, self.0.threshold)?;
        check_names(&self.0.names, f1.len())?;
        let mut values: Metrics = self
            .0
            .names
            .iter()
            .zip(&f1)
            .map(|(name, &v)| (format!("f1/{name}"), v))
            .collect();
        values.insert("f1_mean".into(), f1.iter().sum::<f64>() / f1.len().max(1) as f64);
        Ok(values)
    }
}

/// Mean ROC AUC over AUs of scores `[N, K]`: the value `auc_mean`, percent.
pub struct AuAuc(pub AuParams);

impl Metric for AuAuc {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let target = label(labels, &self.0.label, "au_auc")?;
        Ok([("auc_mean".to_string(), mean_auc(outputs, target, &self.0.names)?)].into())
    }
}

/// Registers `au_f1` and `au_auc`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("au_f1", |p: AuParams, _| Ok(AuF1(p)))?;
    registry.metric("au_auc", |p: AuParams, _| Ok(AuAuc(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|j| format!("AU{j}")).collect()
    }

    #[test]
    fn f1_thresholds_probabilities_at_one_half() {
        // Column 0: probabilities 0.9, 0.5, 0.2, 0.1 -> predicted 1, 1, 0, 0
        // (0.5 counts as present) against 1, 0, 1, 0: TP 1, FP 1, FN 1 ->
        // 2 / (2 + 1 + 1) = 50%. Column 1: never present, never predicted -> 0.
        let p = Tensor::from_slice(&[0.9f32, 0.1, 0.5, 0.2, 0.2, 0.3, 0.1, 0.4]).view([4, 2]);
        let t = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]).view([4, 2]);
        assert_eq!(f1_per_au(&p, &t, 0.5).unwrap(), [50.0, 0.0]);
        let labels: Labels = [("au".to_string(), t)].into();
        let m = AuF1(AuParams {
            names: names(2),
            ..AuParams::default()
        });
        let v = m.compute(&p, &labels).unwrap();
        assert_eq!((v["f1/AU0"], v["f1/AU1"], v["f1_mean"]), (50.0, 0.0, 25.0));
        // The default names are the 12 AUs of the labels: 2 columns do not fit.
        assert!(AuF1(AuParams::default()).compute(&p, &labels).is_err());
    }

    #[test]
    fn auc_ranks_positives_above_negatives_and_counts_ties_half() {
        // Column 0 perfectly separated; column 1 reversed; column 2 all tied;
        // column 3 has no negative (left out).
        let scores = Tensor::from_slice2(&[
            [0.9f32, 0.1, 0.5, 0.3],
            [0.8, 0.2, 0.5, 0.3],
            [0.1, 0.9, 0.5, 0.3],
            [0.2, 0.7, 0.5, 0.3],
        ]);
        let target = Tensor::from_slice2(&[
            [1.0f32, 1.0, 1.0, 1.0],
            [1.0, 1.0, 0.0, 1.0],
            [0.0, 0.0, 1.0, 1.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        // (1 + 0 + 0.5) / 3 = 50%.
        assert!((mean_auc(&scores, &target, &names(4)).unwrap() - 50.0).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.3, 0.3], &[true, true]), None);
        // Positives 0.35, 0.8 against negatives 0.1, 0.4: 3 of 4 pairs ordered -> 0.75.
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
        // Positive 0.4 ties negative 0.4 (half) and beats 0.1: (1 + 0.5) / 2.
        assert_eq!(roc_auc(&[0.1, 0.4, 0.4], &[false, false, true]), Some(0.75));
        let none = Tensor::ones([3, 1], (tch::Kind::Float, tch::Device::Cpu));
        assert!(mean_auc(&none, &none, &names(1)).is_err());
    }
}
