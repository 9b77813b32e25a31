//! Mixup (Zhang et al., 2018) of fine-tuning's batches, in LAFS's setting
//! (timm's `Mixup` in `batch` mode, no cutmix, no label smoothing): with
//! probability `prob` a step's batch is mixed with itself reversed,
//! `x <- lam x + (1 - lam) x.flip(0)`, `lam ~ Beta(alpha, alpha)`, and the
//! target becomes `lam onehot(y) + (1 - lam) onehot(y.flip(0))`. The margin
//! classifier then takes the soft target ([`crate::margin::soft_margin_logits`]),
//! as LAFS's CosFace does when handed mixed labels.
//!
//! The draws are a pure function of `(seed, step)`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::rng::Rng;
use visage_core::tch::Tensor;
use visage_core::{Batch, Error, Result};

/// Label of a mixed batch: the partner identity of each image.
pub const MIX_PARTNER: &str = "mixup/partner";
/// Label of a mixed batch: `lam` `[N]`, the weight of the image's own
/// identity.
pub const MIX_LAMBDA: &str = "mixup/lambda";

/// Mixup's parameters (LAFS: `alpha: 0.2, prob: 0.1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MixupParams {
    /// `alpha` of the `Beta(alpha, alpha)` the mixing weight is drawn from.
    pub alpha: f64,
    /// Probability that a step's batch is mixed.
    pub prob: f64,
}

impl MixupParams {
    /// Refuses a non-positive `alpha` or a `prob` outside [0, 1].
    pub fn check(&self) -> Result<()> {
        if !(self.alpha.is_finite() && self.alpha > 0.0 && (0.0..=1.0).contains(&self.prob)) {
            return Err(Error::msg(format!(
                "fr.mixup: expected alpha > 0 and prob in [0, 1], got alpha {} and prob {}",
                self.alpha, self.prob
            )));
        }
        Ok(())
    }

    /// The mixing weight of `step` under `seed`: `None` when the step is
    /// not mixed.
    pub fn draw(&self, seed: u64, step: u64) -> Option<f64> {
        let mut rng = Rng::new(&[seed, step, 0x6d69_7875]);
        if rng.uniform() >= self.prob {
            return None;
        }
        Some(beta(&mut rng, self.alpha, self.alpha))
    }
}

/// A draw of `Beta(a, b)` by Johnk's method (exact for every `a, b > 0`,
/// fast for the small `alpha` of mixup).
pub fn beta(rng: &mut Rng, a: f64, b: f64) -> f64 {
    loop {
        let x = rng.uniform().powf(1.0 / a);
        let y = rng.uniform().powf(1.0 / b);
        if x + y <= 1.0 && x + y > 0.0 {
            return x / (x + y);
        }
    }
}

/// `batch` mixed with itself reversed at weight `lam`, with the labels
/// [`MIX_PARTNER`] (the reversed `identity`) and [`MIX_LAMBDA`].
pub fn mix(batch: &Batch, identity: &str, lam: f64) -> Result<Batch> {
    let ids = batch.label(identity)?;
    let images = &batch.images * lam + batch.images.flip([0]) * (1.0 - lam);
    let mut labels: std::collections::BTreeMap<String, Tensor> = batch
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect();
    labels.insert(MIX_PARTNER.into(), ids.flip([0]));
    labels.insert(
        MIX_LAMBDA.into(),
        Tensor::full([batch.len()], lam, (visage_core::tch::Kind::Float, ids.device())),
    );
    Ok(Batch {
        images,
        labels,
        views: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use visage_core::tch::{Device, Kind};

    #[test]
    fn a_mixed_batch_blends_each_image_with_its_mirror_in_the_batch() {
        let images = Tensor::from_slice(&[1.0f32, 2.0, 4.0]).view([3, 1, 1, 1]);
        let ids = Tensor::from_slice(&[7i64, 8, 9]);
        let batch = Batch {
            images,
            labels: BTreeMap::from([("identity".to_string(), ids)]),
            views: vec![],
        };
        let mixed = mix(&batch, "identity", 0.75).unwrap();
        // 0.75 * 1 + 0.25 * 4 = 1.75; 0.75 * 2 + 0.25 * 2 = 2; 0.75 * 4 + 0.25 * 1 = 3.25.
        let pixels: Vec<f32> = mixed.images.view([-1]).try_into().unwrap();
        assert_eq!(pixels, [1.75, 2.0, 3.25]);
        let partner: Vec<i64> = mixed.labels[MIX_PARTNER].shallow_clone().try_into().unwrap();
        assert_eq!(partner, [9, 8, 7]);
        let lam: Vec<f32> = mixed.labels[MIX_LAMBDA].shallow_clone().try_into().unwrap();
        assert_eq!(lam, [0.75; 3]);
        assert_eq!(mixed.labels["identity"].kind(), Kind::Int64);
        assert_eq!(mixed.images.device(), Device::Cpu);
    }

    #[test]
    fn draws_follow_prob_and_the_beta_mean() {
        let p = MixupParams { alpha: 0.2, prob: 0.1 };
        let draws: Vec<Option<f64>> = (0..20_000).map(|s| p.draw(3, s)).collect();
        let mixed: Vec<f64> = draws.iter().flatten().copied().collect();
        let rate = mixed.len() as f64 / draws.len() as f64;
        assert!((rate - 0.1).abs() < 0.01, "{rate}");
        // Beta(0.2, 0.2): mean 1/2, variance 1 / (4 (2a + 1)) = 1/5.6.
        let mean = mixed.iter().sum::<f64>() / mixed.len() as f64;
        let var = mixed.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / mixed.len() as f64;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
        assert!((var - 1.0 / 5.6).abs() < 0.015, "{var}");
        assert_eq!(p.draw(3, 17), p.draw(3, 17));
        assert!(MixupParams { alpha: 0.0, prob: 0.1 }.check().is_err());
        assert!(MixupParams { alpha: 0.2, prob: 1.5 }.check().is_err());
    }
}
