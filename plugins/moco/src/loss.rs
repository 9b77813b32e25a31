//! The contrastive loss of MoCo v3: InfoNCE between the queries of one
//! view and the momentum keys of the other, in-batch negatives.

use visage_core::tch::{Kind, Tensor};
use visage_core::{Error, Result};

/// `ctr(q, k)` of the paper (Algorithm 1): `q` and `k` `[N, C]` are
/// L2-normalised, the logits `q k^T / tau` `[N, N]` are read as an
/// N-way classification whose class of row `i` is `i` (the key of the
/// same image), and the mean cross-entropy is scaled by `2 tau`, which
/// makes the gradient's scale independent of `tau`.
pub fn contrastive(q: &Tensor, k: &Tensor, tau: f64) -> Result<Tensor> {
    let (qs, ks) = (q.size(), k.size());
    if qs.len() != 2 || qs != ks {
        return Err(Error::msg(format!(
            "moco_v3: queries and keys must both be [N, C], got {qs:?} and {ks:?}"
        )));
    }
    if !(tau > 0.0 && tau.is_finite()) {
        return Err(Error::msg(format!("moco_v3: temperature must be positive, got {tau}")));
    }
    let q = normalize(q);
    let k = normalize(k);
    let logits = q.matmul(&k.transpose(0, 1)) / tau;
    let labels = Tensor::arange(qs[0], (Kind::Int64, q.device()));
    Ok(logits.cross_entropy_for_logits(&labels) * (2.0 * tau))
}

/// `symmetric(q1, q2, k1, k2) = ctr(q1, k2) + ctr(q2, k1)`: each view's
/// queries against the other view's keys.
pub fn symmetric(q: [&Tensor; 2], k: [&Tensor; 2], tau: f64) -> Result<Tensor> {
    Ok(contrastive(q[0], k[1], tau)? + contrastive(q[1], k[0], tau)?)
}

/// Rows divided by their L2 norm (at least 1e-12), as
/// `torch.nn.functional.normalize`.
fn normalize(x: &Tensor) -> Tensor {
    let norm = x.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
    x / norm
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).reshape([rows.len() as i64, 2])
    }

    /// Two images, keys along the axes, queries at 0 and 90 degrees of
    /// their positives (norms differ: normalisation removes them).
    /// Row 0: logits (1/tau, 0); row 1: logits (1/tau, 0) with label 1.
    /// At tau = 0.5: CE_0 = ln(1 + e^-2), CE_1 = ln(1 + e^2);
    /// loss = (CE_0 + CE_1) / 2 * 2 * 0.5.
    #[test]
    fn the_loss_of_a_tiny_batch_is_computed_by_hand() {
        let q = t(&[[3.0, 0.0], [2.0, 0.0]]);
        let k = t(&[[1.0, 0.0], [0.0, 5.0]]);
        let got = contrastive(&q, &k, 0.5).unwrap().double_value(&[]);
        let ce0 = (1.0 + (-2.0f64).exp()).ln();
        let ce1 = (1.0 + 2.0f64.exp()).ln();
        let want = (ce0 + ce1) / 2.0 * (2.0 * 0.5);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    /// Perfect alignment at a low temperature costs almost nothing; the
    /// symmetric loss adds both directions.
    #[test]
    fn aligned_views_cost_little_and_the_loss_is_symmetric() {
        let a = t(&[[1.0, 0.0], [0.0, 1.0]]);
        let b = t(&[[0.6, 0.8], [0.8, -0.6]]);
        // q = k: logits (1/tau, 0) per row, CE = ln(1 + e^(-1/tau)).
        let tau = 0.2;
        let got = contrastive(&a, &a, tau).unwrap().double_value(&[]);
        let want = (1.0 + (-5.0f64).exp()).ln() * 2.0 * tau;
        assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        let sym = symmetric([&a, &b], [&b, &a], tau).unwrap().double_value(&[]);
        let parts = contrastive(&a, &a, tau).unwrap().double_value(&[]) * 2.0;
        assert!((sym - parts).abs() < 1e-7, "{sym} vs {parts}");
    }

    #[test]
    fn mismatched_shapes_and_bad_temperatures_are_refused() {
        let a = t(&[[1.0, 0.0], [0.0, 1.0]]);
        let err = contrastive(&a, &a.narrow(0, 0, 1), 0.2).unwrap_err().to_string();
        assert!(err.contains("[2, 2] and [1, 2]"), "{err}");
        assert!(contrastive(&a, &a, 0.0).is_err());
    }
}
