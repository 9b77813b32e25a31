//! The parsing head: FaRL's dense head (FPN + UPerNet,
//! [`visage_tasks::heads::DenseHead`]) on the backbone's blocks or stages,
//! one logit map per class, upsampled (bilinear) to the input images' size.

use visage_core::tch::{nn, Kind, Tensor};
use visage_core::Result;
use visage_tasks::heads::{pyramid, upsample_logits, DenseHead, Head};

/// How the head is built (the task's head parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadConfig {
    /// Channels inside UPerNet (FaRL: 768 for ViT-B).
    pub channels: i64,
    /// Channel dropout before the classifier (FaRL: 0.1).
    pub dropout: f64,
}

/// The dense head, as a [`Head`]: logits `[N, C, H, W]` at the images' size.
pub struct ParsingHead {
    dense: DenseHead,
    height: i64,
    width: i64,
}

impl ParsingHead {
    /// The head under `path` for maps of `shapes` (`[C, h, w]` each,
    /// without the batch), with `classes` outputs upsampled to `height` x
    /// `width`. Checked by one forward pass on zeros, so that
    /// [`Head::forward`] cannot meet a shape it was not built for.
    pub fn new(
        path: nn::Path<'_>,
        shapes: &[Vec<i64>],
        classes: i64,
        (height, width): (i64, i64),
        config: HeadConfig,
    ) -> Result<Self> {
        let kind = pyramid(shapes)?;
        let channels: Vec<i64> = shapes.iter().map(|s| s[0]).collect();
        let dense = DenseHead::new(&path, &channels, kind, config.channels, classes)?.with_dropout(config.dropout);
        let head = ParsingHead { dense, height, width };
        let zeros: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::zeros([&[1], &s[..]].concat(), (Kind::Float, path.device())))
            .collect();
        let _ = visage_core::tch::no_grad(|| head.logits(&zeros, false))?;
        Ok(head)
    }

    /// Logits `[N, C, H, W]` at the images' size.
    pub fn logits(&self, maps: &[Tensor], train: bool) -> Result<Tensor> {
        upsample_logits(&self.dense.forward(maps, train)?, self.height, self.width)
    }
}

impl Head for ParsingHead {
    fn forward(&self, inputs: &[Tensor], train: bool) -> Tensor {
        // The inputs have the shapes the head was checked with in `new`
        // (the feature's maps of same-sized images).
        self.logits(inputs, train)
            .unwrap_or_else(|e| panic!("parsing head on the maps it was built for: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_core::tch::Device;

    #[test]
    fn stages_give_logits_at_the_image_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let shapes = vec![vec![8, 16, 16], vec![16, 8, 8], vec![32, 4, 4]];
        let config = HeadConfig {
            channels: 8,
            dropout: 0.1,
        };
        let head = ParsingHead::new(vs.root(), &shapes, 11, (32, 48), config).unwrap();
        let maps: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::randn([&[2], &s[..]].concat(), (Kind::Float, Device::Cpu)))
            .collect();
        assert_eq!(head.forward(&maps, true).size(), [2, 11, 32, 48]);
        let pooled = ParsingHead::new(vs.root() / "x", &[vec![64]], 11, (32, 32), config);
        assert!(pooled.err().unwrap().to_string().contains("feature: {blocks: [...]}"));
    }
}
