//! The classifier on the backbone's feature and its training loss.

use tch::{nn, Kind, Reduction, Tensor};
use visage_core::metric::Labels;
use visage_core::{Error, Result};
use visage_tasks::heads::{flat_dim, BnLinearHead, Head, LinearHead};

use crate::params::HeadKind;

/// The head of `kind` under `path`, from the shapes (without the batch
/// dimension) of the tensors it reads: exactly one, flattened, to
/// `classes` logits.
pub fn build(kind: HeadKind, path: nn::Path<'_>, shapes: &[Vec<i64>], classes: i64) -> Result<Box<dyn Head>> {
    let [shape] = shapes else {
        return Err(Error::msg(format!(
            "fer reads one backbone output, but `feature` gives {} tensors (use an output such as `pooled`, not `blocks`)",
            shapes.len()
        )));
    };
    let dim = flat_dim(shape);
    tracing::debug!(?kind, dim, classes, "fer head");
    Ok(match kind {
        HeadKind::Linear => Box::new(LinearHead::new(path, dim, classes)),
        HeadKind::BnLinear => Box::new(BnLinearHead::new(path, dim, classes)),
    })
}

/// Mean cross-entropy of logits `[N, classes]` against the class indices
/// of label `label`; an index outside `0..classes` is an error naming it.
pub fn cross_entropy(logits: &Tensor, labels: &Labels, label: &str, classes: i64) -> Result<Tensor> {
    let target = visage_core::metric::label(labels, label, "fer cross-entropy")?.f_to_kind(Kind::Int64)?;
    if target.numel() > 0 {
        let (low, high) = (target.f_min()?.f_int64_value(&[])?, target.f_max()?.f_int64_value(&[])?);
        if low < 0 || high >= classes {
            let bad = if low < 0 { low } else { high };
            return Err(Error::msg(format!(
                "fer: label `{label}` holds class {bad}, expected a class index in 0..{classes} (the dataset's classes)"
            )));
        }
    }
    Ok(logits.f_cross_entropy_loss::<Tensor>(&target, None, Reduction::Mean, -100, 0.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn the_loss_is_cross_entropy_and_refuses_unknown_classes() {
        // Uniform logits over 4 classes: the loss is ln 4 whatever the target.
        let logits = Tensor::zeros([2, 4], (Kind::Float, Device::Cpu));
        let labels: Labels = [("expression".to_string(), Tensor::from_slice(&[0i64, 3]))].into();
        let loss = cross_entropy(&logits, &labels, "expression", 4)
            .unwrap()
            .double_value(&[]);
        assert!((loss - 4f64.ln()).abs() < 1e-6, "{loss}");
        let err = cross_entropy(&logits.narrow(1, 0, 3), &labels, "expression", 3).unwrap_err();
        assert!(
            err.to_string()
                .contains("holds class 3, expected a class index in 0..3"),
            "{err}"
        );
        let vs = nn::VarStore::new(Device::Cpu);
        let head = build(HeadKind::Linear, vs.root(), &[vec![2, 3, 3]], 7).unwrap();
        assert_eq!(
            head.forward(&[Tensor::ones([5, 2, 3, 3], (Kind::Float, Device::Cpu))], false)
                .size(),
            [5, 7]
        );
        let err = build(HeadKind::Linear, vs.root() / "b", &[vec![2], vec![3]], 7)
            .err()
            .unwrap();
        assert!(err.to_string().contains("gives 2 tensors"), "{err}");
    }
}
