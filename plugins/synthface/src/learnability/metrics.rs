//! The papers' metrics, on whole test tensors.

use tch::{Kind, Tensor};

/// Top-1 accuracy of class indices, percent.
pub fn accuracy(predicted: &Tensor, target: &Tensor) -> f64 {
    100.0
        * predicted
            .eq_tensor(target)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
}

/// Per-column binary F1 of boolean predictions `[N, K]` against 0/1
/// targets `[N, K]`, `[K]` in 0..1.
pub fn f1_per_column(predicted: &Tensor, target: &Tensor) -> Tensor {
    let p = predicted.to_kind(Kind::Double);
    let t = target.to_kind(Kind::Double);
    let (not_p, not_t): (Tensor, Tensor) = (1.0 - &p, 1.0 - &t);
    let tp = (&p * &t).sum_dim_intlist(0, false, Kind::Double);
    let fp = (&p * not_t).sum_dim_intlist(0, false, Kind::Double);
    let fn_ = (not_p * &t).sum_dim_intlist(0, false, Kind::Double);
    (&tp * 2.0) / (&tp * 2.0 + fp + fn_).clamp_min(1e-9)
}

/// Mean over AUs of the per-AU F1 of boolean predictions, percent.
pub fn mean_f1(predicted: &Tensor, target: &Tensor) -> f64 {
    100.0 * f1_per_column(predicted, target).mean(Kind::Double).double_value(&[])
}

/// Mean over AUs of the ROC AUC of scores `[N, K]` against 0/1 targets
/// `[N, K]`, percent: the chance that a random positive scores above a
/// random negative (ties count half), so it needs no decision threshold and
/// any constant scores 50. Columns with no positive or no negative are
/// left out.
pub fn mean_auc(scores: &Tensor, target: &Tensor) -> f64 {
    let k = scores.size()[1];
    let column = |t: &Tensor, j: i64| Vec::<f64>::try_from(t.select(1, j).to_kind(Kind::Double)).unwrap_or_default();
    let aucs: Vec<f64> = (0..k)
        .filter_map(|j| auc(&column(scores, j), &column(target, j)))
        .collect();
    100.0 * aucs.iter().sum::<f64>() / aucs.len().max(1) as f64
}

/// ROC AUC by the rank-sum (Mann-Whitney) formula with average ranks for
/// ties; `None` without both classes.
fn auc(scores: &[f64], labels: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        for &o in &order[i..=j] {
            ranks[o] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    let positives = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let rank_sum: f64 = ranks.iter().zip(labels).filter(|(_, &y)| y > 0.5).map(|(r, _)| r).sum();
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// NME over visible points `[N, 68, 2]`, normalised by the size `sqrt(w h)`
/// of the ground-truth landmark box (AFLW2000's "box" NME: unlike the
/// inter-ocular distance it does not vanish at large yaw), percent.
pub fn nme(predicted: &Tensor, landmarks: &Tensor, visible: &Tensor) -> f64 {
    let extent = landmarks.amax(&[1i64][..], false) - landmarks.amin(&[1i64][..], false);
    let size = (extent.select(1, 0) * extent.select(1, 1)).sqrt().clamp_min(1.0);
    let error = (predicted - landmarks)
        .square()
        .sum_dim_intlist(2, false, Kind::Float)
        .sqrt();
    let per_sample = (error * visible).sum_dim_intlist(1, false, Kind::Float)
        / visible.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
    100.0 * (per_sample / size).mean(Kind::Float).double_value(&[])
}

/// Face-parsing F1 as the papers report it: per class, true and false
/// positives and negatives accumulated over every pixel of the test set,
/// then the mean over the foreground classes (background, class 0,
/// excluded), percent. `predicted` and `target` are int64 `[N, H, W]`.
pub fn parsing_f1(predicted: &Tensor, target: &Tensor, classes: i64) -> f64 {
    let p = predicted.flatten(0, -1).one_hot(classes);
    let t = target.flatten(0, -1).one_hot(classes);
    let f1 = f1_per_column(&p, &t);
    100.0 * f1.narrow(0, 1, classes - 1).mean(Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_counts_true_and_false_positives() {
        // One column: predictions 1,1,0,0 against 1,0,1,0 -> tp 1, fp 1, fn 1.
        let p = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0]).view([4, 1]).gt(0.5);
        let t = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 0.0]).view([4, 1]);
        assert!((mean_f1(&p, &t) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn auc_ranks_positives_above_negatives_and_counts_ties_half() {
        // Column 0 perfectly separated; column 1 reversed; column 2 all tied.
        let scores = Tensor::from_slice(&[0.9f32, 0.1, 0.5, 0.8, 0.2, 0.5, 0.1, 0.9, 0.5, 0.2, 0.7, 0.5]).view([4, 3]);
        let target = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]).view([4, 3]);
        // Column 0: positives 0.9, 0.8 above negatives 0.1, 0.2 -> 1.
        // Column 1: positives 0.1, 0.2 below negatives 0.9, 0.7 -> 0.
        // Column 2: every score 0.5 -> 0.5.
        assert!((mean_auc(&scores, &target) - 50.0).abs() < 1e-9);
        assert_eq!(auc(&[0.3, 0.3], &[1.0, 1.0]), None);
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]), Some(0.75));
    }

    #[test]
    fn parsing_f1_ignores_background_and_accumulates_over_the_set() {
        // Image 1: class 1 right on two pixels; image 2: class 2 predicted as 1.
        let target = Tensor::from_slice(&[0i64, 1, 1, 0, 2, 0]).view([2, 1, 3]);
        let predicted = Tensor::from_slice(&[0i64, 1, 1, 0, 1, 0]).view([2, 1, 3]);
        // Class 1: tp 2, fp 1 -> 0.8; class 2: tp 0 -> 0; mean 40%.
        assert!((parsing_f1(&predicted, &target, 3) - 40.0).abs() < 1e-9);
    }
}
