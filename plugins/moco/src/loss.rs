//! The symmetrised contrastive loss of MoCo v3: `ctr`
//! ([`visage_core::nn::contrastive::ctr`]) of each view's queries against
//! the other view's momentum keys.

use visage_core::nn::contrastive::ctr;
use visage_core::tch::Tensor;
use visage_core::Result;

/// `symmetric(q1, q2, k1, k2) = ctr(q1, k2) + ctr(q2, k1)`: each view's
/// queries against the other view's keys.
pub fn symmetric(q: [&Tensor; 2], k: [&Tensor; 2], tau: f64) -> Result<Tensor> {
    Ok(ctr(q[0], k[1], tau)? + ctr(q[1], k[0], tau)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).reshape([rows.len() as i64, 2])
    }

    /// Perfect alignment at a low temperature costs almost nothing; the
    /// symmetric loss adds both directions.
    #[test]
    fn aligned_views_cost_little_and_the_loss_is_symmetric() {
        let a = t(&[[1.0, 0.0], [0.0, 1.0]]);
        let b = t(&[[0.6, 0.8], [0.8, -0.6]]);
        // q = k: logits (1/tau, 0) per row, CE = ln(1 + e^(-1/tau)).
        let tau = 0.2;
        let got = ctr(&a, &a, tau).unwrap().double_value(&[]);
        let want = (1.0 + (-5.0f64).exp()).ln() * 2.0 * tau;
        assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        let sym = symmetric([&a, &b], [&b, &a], tau).unwrap().double_value(&[]);
        let parts = ctr(&a, &a, tau).unwrap().double_value(&[]) * 2.0;
        assert!((sym - parts).abs() < 1e-7, "{sym} vs {parts}");
    }
}
