//! Face parsing's output and loss, as FaRL's (farl/experiments/face_parsing):
//! the head's logits upsampled to the input size (bilinear, align_corners
//! false) and the pixel cross-entropy, averaged over every pixel.

use tch::{Kind, Reduction, Tensor};

use visage_core::{Error, Result};

/// Logits `[N, C, h, w]` upsampled to `[N, C, height, width]` (bilinear,
/// align_corners false); unchanged when already that size.
pub fn upsample_logits(logits: &Tensor, height: i64, width: i64) -> Result<Tensor> {
    match logits.size()[..] {
        [_, _, h, w] if (h, w) == (height, width) => Ok(logits.shallow_clone()),
        [_, _, _, _] if height > 0 && width > 0 => Ok(logits.upsample_bilinear2d([height, width], false, None, None)),
        ref size => Err(Error::msg(format!(
            "parsing logits: expected [N, C, h, w] and a positive size, got {size:?} to {height}x{width}"
        ))),
    }
}

/// Cross-entropy of logits `[N, C, H, W]` against labels `[N, H, W]`
/// (class indices `0..C`), averaged over all pixels. A label outside
/// `0..C` is an error naming the range.
pub fn pixel_cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let size = logits.size();
    let [n, c, h, w] = size[..] else {
        return Err(Error::msg(format!(
            "pixel cross-entropy: expected logits [N, C, H, W], got {size:?}"
        )));
    };
    if labels.size() != [n, h, w] {
        return Err(Error::msg(format!(
            "pixel cross-entropy: expected labels [{n}, {h}, {w}] for logits {size:?}, got {:?}",
            labels.size()
        )));
    }
    let labels = labels.to_kind(Kind::Int64);
    if labels.numel() > 0 {
        let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
        if lo < 0 || hi >= c {
            return Err(Error::msg(format!(
                "pixel cross-entropy: labels must lie in 0..{c} (the classes), found {lo}..={hi}"
            )));
        }
    }
    Ok(logits.cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, -100, 0.0))
}
