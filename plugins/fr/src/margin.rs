//! The margin classifiers of face recognition, written from their papers:
//! CosFace (Wang et al., 2018), `s (cos theta_j - m [j = y])`, LAFS's
//! default; ArcFace (Deng et al., 2019), `s cos(theta_y + m)` for the true
//! class, with the usual fallback `cos theta_y - m sin(m)` where
//! `theta_y + m` would pass pi (the insightface convention, so that the
//! logit keeps decreasing in `theta_y`). `cos theta_j` is the cosine
//! between the embedding and class `j`'s weight row, both L2-normalised.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::tch::{nn, Tensor};

/// Which margin the classifier applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarginKind {
    /// Additive cosine margin: `s (cos theta - m)` for the true class.
    #[default]
    Cosface,
    /// Additive angular margin: `s cos(theta + m)` for the true class.
    Arcface,
}

impl MarginKind {
    /// The paper's margin: CosFace 0.4 (LAFS), ArcFace 0.5.
    pub fn default_margin(self) -> f64 {
        match self {
            MarginKind::Cosface => 0.4,
            MarginKind::Arcface => 0.5,
        }
    }
}

/// The margin logits `[B, C]` of `cosine` `[B, C]` for the true classes
/// `targets` `[B]`: every logit is `s cos theta_j` but the true class's,
/// which gets the margin.
pub fn margin_logits(cosine: &Tensor, targets: &Tensor, kind: MarginKind, s: f64, m: f64) -> Tensor {
    let one_hot = cosine.zeros_like().scatter_value(1, &targets.view([-1, 1]), 1.0);
    soft_margin_logits(cosine, &one_hot, kind, s, m)
}

/// The margin logits for a soft target `weights` `[B, C]` (rows summing to
/// 1; mixup's `lam onehot(a) + (1 - lam) onehot(b)`): class `j` gets
/// `w_j margin(cos theta_j) + (1 - w_j) cos theta_j`, times `s`, as LAFS's
/// CosFace treats mixed labels. A one-hot `weights` gives
/// [`margin_logits`].
pub fn soft_margin_logits(cosine: &Tensor, weights: &Tensor, kind: MarginKind, s: f64, m: f64) -> Tensor {
    let target = match kind {
        MarginKind::Cosface => cosine - m,
        MarginKind::Arcface => {
            let sine = (cosine.ones_like() - cosine * cosine).clamp(0.0, 1.0).sqrt();
            let shifted = cosine * m.cos() - sine * m.sin();
            // theta + m < pi exactly when cos theta > cos(pi - m).
            let inside = cosine.gt((std::f64::consts::PI - m).cos());
            shifted.where_self(&inside, &(cosine - m * m.sin()))
        }
    };
    (weights * target + (weights.ones_like() - weights) * cosine) * s
}

/// The cosine between each embedding `[B, E]` and each class weight
/// `[C, E]`, both L2-normalised: `[B, C]`.
pub fn cosines(embeddings: &Tensor, weight: &Tensor) -> Tensor {
    let unit = |t: &Tensor| t / t.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
    unit(embeddings).matmul(&unit(weight).tr())
}

/// A margin classifier's class weights and margin.
#[derive(Debug)]
pub struct MarginClassifier {
    /// The class weights `[C, E]` (Xavier-uniform, as LAFS's CosFace).
    pub weight: Tensor,
    /// The margin.
    pub kind: MarginKind,
    /// The scale `s`.
    pub scale: f64,
    /// The margin `m`.
    pub margin: f64,
}

impl MarginClassifier {
    /// `classes` weight rows of width `dim` under `path`.
    pub fn new(path: nn::Path<'_>, dim: i64, classes: i64, kind: MarginKind, scale: f64, margin: f64) -> Self {
        // Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
        let bound = (6.0 / (dim + classes) as f64).sqrt();
        let weight = path.var("weight", &[classes, dim], nn::Init::Uniform { lo: -bound, up: bound });
        MarginClassifier {
            weight,
            kind,
            scale,
            margin,
        }
    }

    /// The margin logits of `embeddings` for the true `targets`.
    pub fn logits(&self, embeddings: &Tensor, targets: &Tensor) -> Tensor {
        margin_logits(
            &cosines(embeddings, &self.weight),
            targets,
            self.kind,
            self.scale,
            self.margin,
        )
    }

    /// Cross-entropy of the margin logits (the training loss), in the
    /// embeddings' precision.
    pub fn loss(&self, embeddings: &Tensor, targets: &Tensor) -> Tensor {
        let logits = self.logits(embeddings, targets);
        logits.log_softmax(-1, logits.kind()).nll_loss(targets)
    }

    /// Cross-entropy of the soft-target margin logits against the soft
    /// target `weights` `[B, C]`, `mean_b(-sum_j w_bj log softmax_j)`
    /// (PyTorch's `cross_entropy` with probabilities).
    pub fn soft_loss(&self, embeddings: &Tensor, weights: &Tensor) -> Tensor {
        let logits = soft_margin_logits(
            &cosines(embeddings, &self.weight),
            weights,
            self.kind,
            self.scale,
            self.margin,
        );
        let log_p = logits.log_softmax(-1, logits.kind());
        -(weights * log_p)
            .sum_dim_intlist([1i64].as_slice(), false, logits.kind())
            .mean(logits.kind())
    }
}
