//! FaRL's dense head: the backbone's maps, made a pyramid ([`Pyramid`]),
//! decoded by UPerNet ([`UperHead`]) into one map per output channel (a
//! heatmap per landmark, a logit per parsing class) at 1/4 of the image
//! for ViT/16 and ResNet alike.
//!
//! Parameter names follow FaRL's checkpoints: the ViT pyramid under
//! `fpns` (FaRL: `backbone.fpns`), UPerNet under `head` (FaRL:
//! `heatmap_head.head` for alignment, `head.head` for parsing).

use tch::nn;
use tch::Tensor;

use visage_core::backbone::Intermediates;
use visage_core::{Error, Result};

use super::fpn::{Pyramid, VitFpn};
use super::uper::UperHead;

/// The pyramid and the UPerNet decoder.
#[derive(Debug)]
pub struct DenseHead {
    fpn: Option<VitFpn>,
    head: UperHead,
}

impl DenseHead {
    /// The head under `p` for maps of `in_channels` (the backbone's chosen
    /// blocks or stages, in order), made a pyramid as `kind` says, with
    /// `channels` inside UPerNet (FaRL: 768 for ViT-B) and `out_channels`
    /// outputs. [`Pyramid::Vit`] takes exactly four maps.
    pub fn new(p: &nn::Path, in_channels: &[i64], kind: Pyramid, channels: i64, out_channels: i64) -> Result<Self> {
        let fpn = match kind {
            Pyramid::Vit => Some(VitFpn::new(&(p / "fpns"), in_channels)?),
            Pyramid::Stages => None,
        };
        let head = UperHead::new(&(p / "head"), in_channels, channels, out_channels)?;
        Ok(DenseHead { fpn, head })
    }

    /// The same head with channel dropout `p` before the classifier
    /// (FaRL: 0.1; 0 turns it off).
    pub fn with_dropout(self, p: f64) -> Self {
        DenseHead {
            head: self.head.with_dropout(p),
            ..self
        }
    }

    /// Maps `[N, out_channels, h, w]` from the backbone's maps, on the
    /// grid of the pyramid's finest level (ViT: 4x the patch grid; ResNet:
    /// the first stage's). `train` uses batch statistics and dropout.
    pub fn forward(&self, maps: &[Tensor], train: bool) -> Result<Tensor> {
        match &self.fpn {
            Some(fpn) => self.head.forward(&fpn.forward(maps, train)?, train),
            None => self.head.forward(maps, train),
        }
    }

    /// The head's maps straight from a backbone: its outputs at `indices`
    /// (0-based; [`super::vit_block_indices`] for a ViT, the stages for a
    /// ResNet) on `images`, then [`DenseHead::forward`].
    pub fn forward_backbone(
        &self,
        backbone: &dyn Intermediates,
        images: &Tensor,
        indices: &[usize],
        train: bool,
    ) -> Result<Tensor> {
        let maps: Vec<Tensor> = backbone
            .forward_intermediates(images, indices, train)?
            .into_iter()
            .map(|out| out.map)
            .collect();
        self.forward(&maps, train)
    }
}

/// Channels of a backbone's outputs at `indices`, for [`DenseHead::new`];
/// an index past the backbone's blocks or stages is an error naming both.
pub fn channels_at(backbone: &dyn Intermediates, indices: &[usize]) -> Result<Vec<i64>> {
    let channels = backbone.channels();
    indices
        .iter()
        .map(|&i| {
            channels.get(i).copied().ok_or_else(|| {
                Error::msg(format!(
                    "dense head: output {i} (0-based) asked of a backbone with {} blocks or stages",
                    channels.len()
                ))
            })
        })
        .collect()
}

/// The pyramid the maps of `shapes` (`[C, h, w]`, without the batch) call
/// for: four maps on one grid are ViT blocks ([`Pyramid::Vit`]); maps whose
/// grids shrink are conv stages ([`Pyramid::Stages`]). Anything else is an
/// error saying what the head reads.
pub fn pyramid(shapes: &[Vec<i64>]) -> Result<Pyramid> {
    if shapes.is_empty() || shapes.iter().any(|s| s.len() != 3) {
        return Err(Error::msg(format!(
            "the dense head reads maps [C, h, w] of intermediate blocks or stages \
             (set the evaluation's `feature: {{blocks: [...]}}`), got inputs of shapes {shapes:?}"
        )));
    }
    let grids: Vec<(i64, i64)> = shapes.iter().map(|s| (s[1], s[2])).collect();
    if grids.len() == 4 && grids.iter().all(|g| *g == grids[0]) {
        return Ok(Pyramid::Vit);
    }
    if grids.windows(2).all(|w| w[1].0 < w[0].0 && w[1].1 < w[0].1) {
        return Ok(Pyramid::Stages);
    }
    Err(Error::msg(format!(
        "the dense head takes four ViT blocks on one grid or conv stages from fine to coarse, \
         got maps of shapes {shapes:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pyramid_follows_the_grids_of_the_maps() {
        let vit = vec![vec![32, 4, 4]; 4];
        assert_eq!(pyramid(&vit).unwrap(), Pyramid::Vit);
        let stages = vec![vec![8, 16, 16], vec![16, 8, 8], vec![32, 4, 4]];
        assert_eq!(pyramid(&stages).unwrap(), Pyramid::Stages);
        let pooled = pyramid(&[vec![64]]).unwrap_err().to_string();
        assert!(pooled.contains("feature: {blocks: [...]}"), "{pooled}");
        assert!(pyramid(&[vec![8, 4, 4], vec![8, 8, 8]]).is_err());
    }
}
