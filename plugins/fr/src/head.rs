//! Fine-tuning's head: an embedding layer whose output is the face
//! embedding, trained through a margin classifier that the loss applies.
//!
//! [`visage_tasks::fit`] scores the head's outputs on the test split, so
//! the head's forward is the embedding itself; the margin classifier's
//! weights live beside it in the same variable store (trained with it) and
//! are handed to the loss through a [`ClassifierSlot`].

use std::cell::RefCell;
use std::rc::Rc;

use visage_core::tch::nn::{self, Module, ModuleT};
use visage_core::tch::Tensor;
use visage_core::{Error, Result};
use visage_tasks::heads::{flat_dim, Head};

use crate::margin::{MarginClassifier, MarginKind};

/// `Linear(D -> E)` then `BatchNorm1d(E)` on the flattened backbone output
/// (the embedding layer of insightface's ResNets, the "features" BN).
#[derive(Debug)]
pub struct EmbeddingHead {
    linear: nn::Linear,
    norm: nn::BatchNorm,
}

impl EmbeddingHead {
    /// The layer from `in_dim` to `dim` under `path`.
    pub fn new(path: nn::Path<'_>, in_dim: i64, dim: i64) -> Self {
        EmbeddingHead {
            linear: nn::linear(&path / "linear", in_dim, dim, Default::default()),
            norm: nn::batch_norm1d(&path / "norm", dim, Default::default()),
        }
    }
}

impl Head for EmbeddingHead {
    fn forward(&self, inputs: &[Tensor], train: bool) -> Tensor {
        self.norm
            .forward_t(&self.linear.forward(&inputs[0].flatten(1, -1)), train)
    }
}

/// The margin classifier, once the head is built (shared by the head's
/// builder and the loss).
#[derive(Debug, Clone, Default)]
pub struct ClassifierSlot(Rc<RefCell<Option<MarginClassifier>>>);

/// How fine-tuning's head is built.
#[derive(Debug, Clone, Copy)]
pub struct HeadSpec {
    /// Embedding width.
    pub dim: i64,
    /// Identities of the train split (the classifier's classes).
    pub classes: i64,
    /// The margin.
    pub kind: MarginKind,
    /// The scale `s`.
    pub scale: f64,
    /// The margin `m`.
    pub margin: f64,
}

impl ClassifierSlot {
    /// Builds the embedding head under `path` (its `embedding`) and the
    /// classifier beside it (its `classifier`), keeping the classifier.
    pub fn build(&self, path: nn::Path<'_>, shapes: &[Vec<i64>], spec: &HeadSpec) -> Result<Box<dyn Head>> {
        let shape = shapes
            .first()
            .ok_or_else(|| Error::msg("fr: the backbone gave no feature to embed"))?;
        let head = EmbeddingHead::new(&path / "embedding", flat_dim(shape), spec.dim);
        let classifier = MarginClassifier::new(
            &path / "classifier",
            spec.dim,
            spec.classes,
            spec.kind,
            spec.scale,
            spec.margin,
        );
        *self.0.borrow_mut() = Some(classifier);
        Ok(Box::new(head))
    }

    /// The margin loss of `embeddings` for the identities `targets`.
    pub fn loss(&self, embeddings: &Tensor, targets: &Tensor) -> Result<Tensor> {
        self.with_classifier(targets, |classifier| classifier.loss(embeddings, targets))
    }

    /// The margin loss of a mixup batch: `targets` weighted `lam` `[B]`,
    /// `partners` `1 - lam` (soft targets, [`MarginClassifier::soft_loss`]).
    pub fn mixed_loss(&self, embeddings: &Tensor, targets: &Tensor, partners: &Tensor, lam: &Tensor) -> Result<Tensor> {
        self.with_classifier(partners, |_| ())?;
        self.with_classifier(targets, |classifier| {
            let classes = classifier.weight.size()[0];
            let hot = |ids: &Tensor| ids.view([-1]).one_hot(classes).to_kind(embeddings.kind());
            let lam = lam.view([-1, 1]).to_kind(embeddings.kind());
            let weights = hot(targets) * &lam + hot(partners) * (lam.ones_like() - &lam);
            classifier.soft_loss(embeddings, &weights)
        })
    }

    /// `f` of the classifier, once `targets` are checked to be its classes.
    fn with_classifier<T>(&self, targets: &Tensor, f: impl FnOnce(&MarginClassifier) -> T) -> Result<T> {
        let slot = self.0.borrow();
        let classifier = slot
            .as_ref()
            .ok_or_else(|| Error::msg("fr: the loss ran before the head was built"))?;
        let classes = classifier.weight.size()[0];
        let (lo, hi) = (targets.min().int64_value(&[]), targets.max().int64_value(&[]));
        if lo < 0 || hi >= classes {
            return Err(Error::msg(format!(
                "fr: identity labels run over [{lo}, {hi}], but the classifier has {classes} classes"
            )));
        }
        Ok(f(classifier))
    }
}
