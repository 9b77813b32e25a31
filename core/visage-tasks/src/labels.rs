//! One label of every sample of a split, read without the split's
//! augmentations.

use std::sync::Arc;

use visage_core::task::{EvalContext, EvalSplit};
use visage_core::tch::{Device, Tensor};
use visage_core::{Error, Result};

/// Samples per batch while reading labels.
const BATCH: usize = 256;

/// Label `name` of every sample of `split`'s dataset, stacked `[N, ...]`
/// in sample order on the CPU. Reads the samples through the evaluation's
/// loader threads, without augmentations (they could move the label).
pub fn read_label(ctx: &EvalContext<'_>, split: &EvalSplit, name: &str) -> Result<Tensor> {
    let raw = EvalSplit {
        dataset: split.dataset.clone(),
        augmentations: Arc::from(vec![]),
    };
    let mut parts = vec![];
    for batch in ctx.batches(&raw, BATCH, None)? {
        parts.push(batch?.label(name)?.to_device(Device::Cpu));
    }
    if parts.is_empty() {
        return Err(Error::msg(format!("cannot read label `{name}`: the split is empty")));
    }
    Ok(Tensor::cat(&parts, 0))
}
