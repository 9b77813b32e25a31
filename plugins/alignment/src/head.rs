//! The heatmap head: FaRL's dense head (FPN + UPerNet,
//! [`visage_tasks::heads::DenseHead`]) on the backbone's blocks or stages,
//! one heatmap logit map per landmark.

use visage_core::tch::{nn, Kind, Tensor};
use visage_core::Result;
use visage_tasks::heads::{pyramid, DenseHead, Head};

/// How the head is built (the task's `head` parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadConfig {
    /// Channels inside UPerNet (FaRL: 768 for ViT-B).
    pub channels: i64,
    /// Channel dropout before the classifier (FaRL: 0.1).
    pub dropout: f64,
}

/// The dense head, as a [`Head`]: heatmap logits `[N, K, h, w]`.
pub struct HeatmapHead(DenseHead);

impl HeatmapHead {
    /// The head under `path` for maps of `shapes` (`[C, h, w]` each, without
    /// the batch), with `landmarks` output maps. Checked by one forward pass
    /// on zeros, so that [`Head::forward`] cannot meet a shape it was not
    /// built for.
    pub fn new(path: nn::Path<'_>, shapes: &[Vec<i64>], landmarks: i64, config: HeadConfig) -> Result<Self> {
        let kind = pyramid(shapes)?;
        let channels: Vec<i64> = shapes.iter().map(|s| s[0]).collect();
        let dense = DenseHead::new(&path, &channels, kind, config.channels, landmarks)?.with_dropout(config.dropout);
        let zeros: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::zeros([&[1], &s[..]].concat(), (Kind::Float, path.device())))
            .collect();
        let _ = visage_core::tch::no_grad(|| dense.forward(&zeros, false))?;
        Ok(HeatmapHead(dense))
    }
}

impl Head for HeatmapHead {
    fn forward(&self, inputs: &[Tensor], train: bool) -> Tensor {
        // The inputs have the shapes the head was checked with in `new`
        // (the feature's maps of same-sized images).
        self.0
            .forward(inputs, train)
            .unwrap_or_else(|e| panic!("alignment head on the maps it was built for: {e}"))
    }
}
