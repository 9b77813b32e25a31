//! The size of the images a task's head will see: that of an evaluation
//! split after its augmentations, read from its first sample.

use visage_core::task::{EvalContext, EvalSplit};
use visage_core::{Error, Result};

/// The `(height, width)` of the images of `split` after its augmentations,
/// read from its first sample; `what` names the split in errors (an empty
/// split, images that are not `[N, C, H, W]`).
pub fn image_size(ctx: &EvalContext<'_>, split: &EvalSplit, what: &str) -> Result<(i64, i64)> {
    let batch = ctx
        .batches(split, 1, None)?
        .next()
        .ok_or_else(|| Error::msg(format!("the {what} split is empty")))??;
    match batch.images.size()[..] {
        [_, _, h, w] => Ok((h, w)),
        ref size => Err(Error::msg(format!(
            "{what} images: expected [N, C, H, W], got {size:?}"
        ))),
    }
}
