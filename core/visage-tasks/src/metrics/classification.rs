//! Classification (FER): top-1 accuracy, mean per-class accuracy and the
//! confusion matrix. The `mean_class_accuracy` component gives the mean
//! per-class accuracy; top-1 is core's built-in `accuracy`; the confusion
//! matrix is the FER task's to save (it is not a metric value).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};
use visage_core::metric::{label, Labels, Metric, Metrics};
use visage_core::{Error, Registry, Result};

use super::{longs, shape};

/// Top-1 accuracy of predicted class indices `[N]` against true ones `[N]`,
/// percent.
pub fn accuracy(predicted: &Tensor, target: &Tensor) -> Result<f64> {
    let (p, t) = (longs(predicted)?, longs(target)?);
    same_length(p.len(), t.len())?;
    let hits = p.iter().zip(&t).filter(|(a, b)| a == b).count();
    Ok(100.0 * hits as f64 / t.len().max(1) as f64)
}

/// The confusion matrix of predicted class indices against true ones
/// (same number of elements, any shapes, flattened): int64 `[C, C]`
/// counts, row = true class, column = predicted class, on the inputs'
/// device. An index outside `0..classes` is an error naming the element.
pub fn confusion_matrix(predicted: &Tensor, target: &Tensor, classes: i64) -> Result<Tensor> {
    let p = predicted.f_flatten(0, -1)?.f_to_kind(Kind::Int64)?;
    let t = target
        .f_flatten(0, -1)?
        .f_to_kind(Kind::Int64)?
        .f_to_device(p.device())?;
    same_length(p.numel(), t.numel())?;
    let c = classes.max(0);
    let outside = |x: &Tensor| -> Result<Tensor> { Ok(x.f_lt(0)?.f_logical_or(&x.f_ge(c)?)?) };
    let bad = outside(&p)?.f_logical_or(&outside(&t)?)?.f_nonzero()?;
    if bad.size()[0] > 0 {
        let i = bad.f_int64_value(&[0, 0])?;
        return Err(Error::msg(format!(
            "confusion matrix: element {i} has true class {} and predicted class {}, expected both in 0..{c}",
            t.f_int64_value(&[i])?,
            p.f_int64_value(&[i])?
        )));
    }
    let pairs = t.f_mul_scalar(c)?.f_add(&p)?;
    Ok(pairs.f_bincount::<Tensor>(None, c * c)?.f_view([c, c])?)
}

/// Mean over the classes that occur in the targets of each class's
/// accuracy (its recall), percent: scikit-learn's `balanced_accuracy_score`.
/// `matrix` is a confusion matrix `[C, C]` (rows = true class).
pub fn mean_class_accuracy(matrix: &Tensor) -> Result<f64> {
    let c = shape(matrix, &[None, None], "mean class accuracy")?[0];
    let counts = longs(matrix)?;
    let recalls: Vec<f64> = (0..c as usize)
        .filter_map(|i| {
            let row = &counts[i * c as usize..(i + 1) * c as usize];
            let total: i64 = row.iter().sum();
            (total > 0).then(|| row[i] as f64 / total as f64)
        })
        .collect();
    if recalls.is_empty() {
        return Err(Error::msg("mean class accuracy: the confusion matrix is empty"));
    }
    Ok(100.0 * recalls.iter().sum::<f64>() / recalls.len() as f64)
}

fn same_length(predicted: usize, target: usize) -> Result<()> {
    if predicted != target {
        return Err(Error::msg(format!(
            "classification: {predicted} predictions for {target} targets"
        )));
    }
    Ok(())
}

/// Parameters of `mean_class_accuracy`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeanClassAccuracyParams {
    /// The class label scored.
    #[serde(default = "expression_label")]
    pub label: String,
}

impl Default for MeanClassAccuracyParams {
    fn default() -> Self {
        Self {
            label: expression_label(),
        }
    }
}

fn expression_label() -> String {
    visage_core::labels::EXPRESSION.into()
}

/// Mean per-class accuracy of logits `[N, C]` against the class indices
/// `[N]` of label `label`: the value `mean_class_accuracy`, percent.
pub struct MeanClassAccuracy(pub MeanClassAccuracyParams);

impl Metric for MeanClassAccuracy {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let target = label(labels, &self.0.label, "mean_class_accuracy")?;
        let n = shape(target, &[None], "mean_class_accuracy targets")?[0];
        let c = shape(outputs, &[Some(n), None], "mean_class_accuracy logits [N, C]")?[1];
        let matrix = confusion_matrix(&outputs.f_argmax(1, false)?, &target.f_to_kind(Kind::Int64)?, c)?;
        Ok([("mean_class_accuracy".to_string(), mean_class_accuracy(&matrix)?)].into())
    }
}

/// Registers `mean_class_accuracy`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("mean_class_accuracy", |p: MeanClassAccuracyParams, _| {
        Ok(MeanClassAccuracy(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_hits() {
        // 3 of 4 right: 75%.
        let p = Tensor::from_slice(&[0i64, 1, 2, 2]);
        let t = Tensor::from_slice(&[0i64, 1, 2, 0]);
        assert_eq!(accuracy(&p, &t).unwrap(), 75.0);
        assert!(accuracy(&p, &Tensor::from_slice(&[0i64])).is_err());
    }

    #[test]
    fn confusion_rows_are_true_classes_and_mean_class_accuracy_weighs_classes_alike() {
        // True 0,0,0,1 predicted 0,0,1,1: class 0 is right 2/3, class 1 1/1.
        let t = Tensor::from_slice(&[0i64, 0, 0, 1]);
        let p = Tensor::from_slice(&[0i64, 0, 1, 1]);
        let m = confusion_matrix(&p, &t, 3).unwrap();
        assert_eq!(longs(&m).unwrap(), [2, 1, 0, 0, 1, 0, 0, 0, 0]);
        // Class 2 never occurs in the targets: left out. (2/3 + 1) / 2 = 83.33%.
        assert!((mean_class_accuracy(&m).unwrap() - 250.0 / 3.0).abs() < 1e-12);
        // Top-1 is 3/4 = 75%: the majority class weighs more there.
        assert_eq!(accuracy(&p, &t).unwrap(), 75.0);
        let err = confusion_matrix(&Tensor::from_slice(&[3i64]), &Tensor::from_slice(&[0i64]), 3).unwrap_err();
        assert!(err.to_string().contains("element 0"), "{err}");
    }

    #[test]
    fn the_component_reads_its_label_and_argmaxes_the_logits() {
        // Predictions 0, 1, 1 for targets 0, 0, 1: class 0 1/2, class 1 1/1 -> 75%.
        let logits = Tensor::from_slice2(&[[2.0f32, 1.0], [0.0, 3.0], [0.0, 1.0]]);
        let labels: Labels = [("expression".to_string(), Tensor::from_slice(&[0i64, 0, 1]))].into();
        let m = MeanClassAccuracy(MeanClassAccuracyParams::default());
        assert_eq!(m.compute(&logits, &labels).unwrap()["mean_class_accuracy"], 75.0);
        assert!(m.compute(&logits.narrow(0, 0, 2), &labels).is_err());
        let empty = Labels::new();
        assert!(m.compute(&logits, &empty).is_err());
    }
}
