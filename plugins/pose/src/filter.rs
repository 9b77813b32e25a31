//! The head-pose protocol's angle filter: only samples whose three angles
//! lie within a limit are trained on and scored.

use std::sync::Arc;

use visage_core::task::{EvalContext, EvalSplit};
use visage_core::tch::Kind;
use visage_core::{Error, Result};
use visage_tasks::metrics::pose::within;
use visage_tasks::split::Subset;

use visage_tasks::labels::read_label;

/// `split` without the samples whose pose (label `name`, yaw, pitch, roll
/// in degrees) has an angle beyond `limit` degrees; `what` names the split
/// in logs and errors. An error when no sample is left.
pub fn keep_within(ctx: &EvalContext<'_>, split: &EvalSplit, name: &str, limit: f64, what: &str) -> Result<EvalSplit> {
    let pose = read_label(ctx, split, name)?.f_to_kind(Kind::Double)?;
    let keep = Vec::<bool>::try_from(&within(&pose, limit)?)?;
    let kept: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
    tracing::info!(
        split = what,
        kept = kept.len(),
        left_out = keep.len() - kept.len(),
        limit,
        "pose: angle filter"
    );
    if kept.is_empty() {
        return Err(Error::msg(format!(
            "pose: max_angle: {limit} leaves none of the {} samples of the {what} split",
            keep.len()
        )));
    }
    Ok(EvalSplit {
        dataset: Arc::new(Subset::new(split.dataset.clone(), kept)),
        augmentations: split.augmentations.clone(),
    })
}
