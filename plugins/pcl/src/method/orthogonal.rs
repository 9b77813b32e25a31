//! PCL's orthogonal loss between face-aware and pose features of one
//! batch: each centred over the batch, rows divided by their (detached)
//! L2 norm + 1e-6, then the mean of the squared entries of `X_e^T X_p`
//! (`d_e x d_p`).

use visage_core::tch::Tensor;

/// Rows centred over the batch and divided by their detached norm + 1e-6.
fn centred_rows(x: &Tensor) -> Tensor {
    let centred = x - x.mean_dim(0, true, None::<visage_core::tch::Kind>);
    let norm = centred.norm_scalaropt_dim(2, [1], true).detach();
    centred / (norm + 1e-6)
}

/// The loss of one pair `face`, `pose` `[B, d_e]`, `[B, d_p]`.
///
/// `sum((X_e^T X_p)^2) = sum((X_e X_e^T) * (X_p X_p^T))`: two `B x B` Gram
/// matrices instead of a `d_e x d_p` product, the same number.
pub fn orthogonal_loss(face: &Tensor, pose: &Tensor) -> Tensor {
    let (e, p) = (centred_rows(face), centred_rows(pose));
    let entries = (e.size()[1] * p.size()[1]) as f64;
    (e.matmul(&e.tr()) * p.matmul(&p.tr())).sum(None::<visage_core::tch::Kind>) / entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_core::tch::{Device, Kind};

    #[test]
    fn by_hand_and_against_the_product() {
        // B = 2: centred rows are +-(x0 - x1)/2, unit after division.
        let e = Tensor::from_slice(&[1f32, 0., -1., 0.]).view([2, 2]);
        let p = Tensor::from_slice(&[3f32, 4., -3., -4.]).view([2, 2]);
        // e rows (+-1, 0), p rows +-(0.6, 0.8): X_e^T X_p = [[1.2, 1.6],
        // [0, 0]], squares 1.44 + 2.56 = 4 over 4 entries (1e-6 aside).
        let got = orthogonal_loss(&e, &p).double_value(&[]);
        assert!((got - 1.0).abs() < 1e-5, "{got}");

        let e = Tensor::randn([5, 7], (Kind::Float, Device::Cpu));
        let p = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
        let (ce, cp) = (centred_rows(&e), centred_rows(&p));
        let direct = ce.tr().matmul(&cp).square().mean(Kind::Float).double_value(&[]);
        let got = orthogonal_loss(&e, &p).double_value(&[]);
        assert!((got - direct).abs() < 1e-6, "{got} vs {direct}");
    }
}
