//! `tar_at_far`: TAR at fixed FARs on the verification pairs' cosine
//! scores. LAFS reads it on IJB-B/C template scores (the task's
//! `templates` path, [`crate::templates`], through [`tar_metrics`]); on a
//! pairs dataset it is read on the pairs (images `2i`, `2i+1`), with
//! LAFS's rule ([`visage_tasks::metrics::verification::tar_at_far`]: the
//! ROC point whose FAR is nearest, no interpolation). With fewer than
//! `1 / FAR` different-identity pairs the nearest point is the ROC's
//! origin and the TAR reads 0: the pairs cannot resolve that FAR.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::labels;
use visage_core::metric::{label, Labels, Metric, Metrics};
use visage_core::tch::Tensor;
use visage_core::{Error, Registry, Result};
use visage_tasks::metrics::verification::{pair_cosines, tar_at_far};

/// Parameters of `tar_at_far`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TarParams {
    /// The pair label (1 = same identity), carried by both images.
    #[serde(default = "same_label")]
    pub same: String,
    /// The FARs (LAFS's headline 1e-4, and 1e-3).
    #[serde(default = "default_fars")]
    pub fars: Vec<f64>,
}

fn same_label() -> String {
    labels::SAME.into()
}

fn default_fars() -> Vec<f64> {
    vec![1e-4, 1e-3]
}

impl Default for TarParams {
    fn default() -> Self {
        TarParams {
            same: same_label(),
            fars: default_fars(),
        }
    }
}

/// TAR (percent) at each FAR: `tar_at_far_<far>` (e.g. `tar_at_far_1e-4`).
pub struct TarAtFar(pub TarParams);

impl Metric for TarAtFar {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let same_per_image = Vec::<i64>::try_from(
            &label(labels, &self.0.same, "tar_at_far")?
                .flatten(0, -1)
                .to_kind(visage_core::tch::Kind::Int64),
        )?;
        let scores = pair_cosines(outputs)?;
        if same_per_image.len() != 2 * scores.len() {
            return Err(Error::msg(format!(
                "tar_at_far: {} `{}` labels for {} pairs; expected one per image",
                same_per_image.len(),
                self.0.same,
                scores.len()
            )));
        }
        let same: Vec<bool> = same_per_image.iter().step_by(2).map(|&s| s == 1).collect();
        tar_metrics(&scores, &same, &self.0.fars)
    }
}

/// TAR (percent) at each of `fars` on pair `scores` (`same[i]`: pair `i`
/// is one identity), by LAFS's rule, keyed `tar_at_far_<far>`: the pairs'
/// path ([`TarAtFar`]) and IJB's templates ([`crate::templates`]) share it.
pub fn tar_metrics(scores: &[f64], same: &[bool], fars: &[f64]) -> Result<Metrics> {
    let tars = tar_at_far(scores, same, fars)?;
    Ok(fars
        .iter()
        .zip(tars)
        .map(|(far, tar)| (format!("tar_at_far_{far:e}"), tar))
        .collect())
}

/// Registers `tar_at_far`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("tar_at_far", |p: TarParams, _| {
        if p.fars.is_empty() || p.fars.iter().any(|f| !(*f > 0.0 && *f < 1.0)) {
            return Err(Error::msg(format!(
                "tar_at_far.fars: expected FARs in (0, 1), got {:?}",
                p.fars
            )));
        }
        Ok(TarAtFar(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_is_read_on_pair_cosines() {
        // Pairs (cosine, same): (1, yes), (0, no), (-1, no), (0.6, yes).
        let e = Tensor::from_slice2(&[
            [1.0f32, 0.0],
            [2.0, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, 0.0],
            [-1.0, 0.0],
            [0.6, 0.8],
            [1.0, 0.0],
        ]);
        let labels: Labels = [("same".to_string(), Tensor::from_slice(&[1i64, 1, 0, 0, 0, 0, 1, 1]))].into();
        let m = TarAtFar(TarParams {
            fars: vec![0.01, 0.5],
            ..TarParams::default()
        });
        let v = m.compute(&e, &labels).unwrap();
        // Both genuine pairs score above both impostors: the ROC is
        // (0,0), (0,1/2), (0,1), (1,1) ((1/2,1) is collinear, dropped).
        // FAR 0.01 is nearest FPR 0, whose last point is (0, 1): TAR 100
        // (LAFS's rule; the origin would read 0); FAR 0.5 ties FPR 0 and 1,
        // and the last of the tied points, (1, 1), wins.
        assert_eq!(v["tar_at_far_1e-2"], 100.0);
        assert_eq!(v["tar_at_far_5e-1"], 100.0);
        let m = TarAtFar(TarParams {
            fars: vec![0.9],
            ..TarParams::default()
        });
        // FAR 0.9 is nearest FPR 1: TAR 100.
        assert_eq!(m.compute(&e, &labels).unwrap()["tar_at_far_9e-1"], 100.0);
    }
}
