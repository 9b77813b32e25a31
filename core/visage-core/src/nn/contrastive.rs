//! MoCo v3's contrastive loss `ctr` (the paper's Algorithm 1), which MCF's
//! mask-contrastive term reuses: InfoNCE between queries and keys with
//! in-batch negatives; and SimSiam's collapse monitor, [`spread`].

use tch::{Kind, Tensor};

use crate::{Error, Result};

/// `ctr(q, k)`: `q` and `k` `[N, C]` are L2-normalised, the logits
/// `q k^T / tau` `[N, N]` are an N-way classification whose class of row
/// `i` is `i` (the key of the same image: MoCo's other view, MCF's other
/// mask), and the mean cross-entropy is scaled by `2 tau`, which makes the
/// gradient's scale independent of `tau`.
pub fn ctr(q: &Tensor, k: &Tensor, tau: f64) -> Result<Tensor> {
    let (qs, ks) = (q.size(), k.size());
    if qs.len() != 2 || qs != ks {
        return Err(Error::msg(format!(
            "ctr: queries and keys must both be [N, C], got {qs:?} and {ks:?}"
        )));
    }
    if !(tau > 0.0 && tau.is_finite()) {
        return Err(Error::msg(format!("ctr: temperature must be positive, got {tau}")));
    }
    let logits = l2_normalize(q, 1).matmul(&l2_normalize(k, 1).transpose(0, 1)) / tau;
    let labels = Tensor::arange(qs[0], (Kind::Int64, q.device()));
    Ok(logits.cross_entropy_for_logits(&labels) * (2.0 * tau))
}

/// `x` divided by its L2 norm along `dim` (at least 1e-12), as
/// `torch.nn.functional.normalize`.
pub fn l2_normalize(x: &Tensor, dim: i64) -> Tensor {
    let norm = x.norm_scalaropt_dim(2.0, [dim], true).clamp_min(1e-12);
    x / norm
}

/// SimSiam's collapse monitor (Chen and He, 2021, section 4.1): the
/// standard deviation over the batch of the L2-normalised rows of `z`
/// `[N, d]`, averaged over the `d` channels and multiplied by `sqrt(d)`.
/// About 1 when the embeddings are spread over the sphere (a Gaussian
/// cloud gives 1), 0 when every row points the same way (collapse).
/// Computed without gradient; 0 for fewer than two rows.
///
/// ```
/// use tch::{Kind, Tensor};
/// use visage_core::nn::contrastive::spread;
/// let cloud = Tensor::randn([512, 32], (Kind::Float, tch::Device::Cpu));
/// assert!((spread(&cloud) - 1.0).abs() < 0.1);
/// assert!(spread(&Tensor::ones([512, 32], (Kind::Float, tch::Device::Cpu))) < 1e-6);
/// ```
pub fn spread(z: &Tensor) -> f64 {
    let size = z.size();
    if size.len() != 2 || size[0] < 2 {
        return 0.0;
    }
    let _no_grad = tch::no_grad_guard();
    let unit = l2_normalize(&z.to_kind(Kind::Float), 1);
    let std = unit.std_dim(Some([0i64].as_slice()), false, false).mean(Kind::Float);
    std.double_value(&[]) * (size[1] as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).reshape([rows.len() as i64, 2])
    }

    /// Keys along the axes, queries at 0 degrees of key 0 (norms differ:
    /// normalisation removes them). Both rows have logits (1/tau, 0); row
    /// 1's label is 1. At tau = 0.5: CE_0 = ln(1 + e^-2),
    /// CE_1 = ln(1 + e^2); loss = (CE_0 + CE_1) / 2 * 2 * 0.5.
    #[test]
    fn the_loss_of_a_tiny_batch_is_computed_by_hand() {
        let q = t(&[[3.0, 0.0], [2.0, 0.0]]);
        let k = t(&[[1.0, 0.0], [0.0, 5.0]]);
        let got = ctr(&q, &k, 0.5).unwrap().double_value(&[]);
        let want = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + 2.0f64.exp()).ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn rows_are_normalised_and_bad_inputs_refused() {
        let x = t(&[[3.0, 4.0], [0.0, 0.0]]);
        let n = l2_normalize(&x, 1);
        assert!((n.double_value(&[0, 0]) - 0.6).abs() < 1e-7);
        assert!((n.double_value(&[0, 1]) - 0.8).abs() < 1e-7);
        assert_eq!(n.double_value(&[1, 1]), 0.0, "a zero row stays zero");
        let err = ctr(&x, &x.narrow(0, 0, 1), 0.2).unwrap_err().to_string();
        assert!(err.contains("[2, 2] and [1, 2]"), "{err}");
        assert!(ctr(&x, &x, 0.0).is_err());
    }

    #[test]
    fn spread_is_one_for_a_gaussian_cloud_and_falls_with_collapse() {
        tch::manual_seed(0);
        let cloud = Tensor::randn([4096, 64], (Kind::Float, tch::Device::Cpu));
        assert!((spread(&cloud) - 1.0).abs() < 0.02, "{}", spread(&cloud));
        // Every row near one direction: a common vector plus small noise.
        let common = Tensor::ones([1, 64], (Kind::Float, tch::Device::Cpu));
        let narrow = &common + &cloud * 0.01;
        assert!(spread(&narrow) < 0.02, "{}", spread(&narrow));
        // Two antipodal points: each coordinate is +-1/sqrt(d) half the time.
        let poles = Tensor::cat(&[&common, &(-&common)], 0);
        assert!((spread(&poles) - 1.0).abs() < 1e-6, "{}", spread(&poles));
        assert_eq!(spread(&common), 0.0, "one row");
    }
}
