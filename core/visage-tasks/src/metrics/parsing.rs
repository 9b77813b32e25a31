//! Face parsing as FaRL evaluates it (`tasks.md`): one confusion matrix over
//! the whole test set (every pixel at each image's original resolution),
//! then per-class F1 = 2 TP / (predicted + true), `fg_mean` over every
//! class but background (class 0), and the mean IoU.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};
use visage_core::labels::LAPA_CLASSES;
use visage_core::metric::{label, Labels, Metric, Metrics};
use visage_core::{Error, Registry, Result};

use super::classification::confusion_matrix;
use super::{longs, shape};

/// An empty confusion matrix for `classes` classes: int64 `[C, C]` zeros
/// on the CPU.
pub fn empty(classes: i64) -> Tensor {
    Tensor::zeros([classes, classes], (Kind::Int64, Device::Cpu))
}

/// Adds the pixels of predicted class maps `[N, H, W]` against true ones
/// `[N, H, W]` to `matrix` `[C, C]` (row = true class).
pub fn accumulate(predicted: &Tensor, target: &Tensor, classes: i64, matrix: &mut Tensor) -> Result<()> {
    let size = shape(target, &[None, None, None], "true class maps [N, H, W]")?;
    shape(
        predicted,
        &[Some(size[0]), Some(size[1]), Some(size[2])],
        "predicted class maps [N, H, W]",
    )?;
    shape(matrix, &[Some(classes), Some(classes)], "parsing confusion matrix")?;
    let counts = confusion_matrix(predicted, target, classes)?.f_to_device(matrix.device())?;
    *matrix = matrix.f_add(&counts)?;
    Ok(())
}

/// The scores of an accumulated confusion matrix, percent.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsingScores {
    /// F1 of each class; `None` for a class neither predicted nor present.
    pub f1: Vec<Option<f64>>,
    /// Mean F1 over the classes but background (class 0) that have one.
    pub fg_mean: f64,
    /// Mean IoU, TP / (predicted + true - TP), over the classes predicted
    /// or present.
    pub miou: f64,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    sum / count.max(1) as f64
}

/// Per-class F1, `fg_mean` and mIoU of a confusion matrix `[C, C]`.
pub fn scores(matrix: &Tensor) -> Result<ParsingScores> {
    let c = shape(matrix, &[None, None], "parsing confusion matrix [C, C]")?[0] as usize;
    let m = longs(matrix)?;
    let tp = |k: usize| m[k * c + k] as f64;
    let truth = |k: usize| (0..c).map(|j| m[k * c + j]).sum::<i64>() as f64;
    let predicted = |k: usize| (0..c).map(|i| m[i * c + k]).sum::<i64>() as f64;
    let seen: Vec<usize> = (0..c).filter(|&k| truth(k) + predicted(k) > 0.0).collect();
    let f1: Vec<Option<f64>> = (0..c)
        .map(|k| {
            seen.contains(&k)
                .then(|| 100.0 * 2.0 * tp(k) / (truth(k) + predicted(k)))
        })
        .collect();
    let iou = |k: usize| 100.0 * tp(k) / (truth(k) + predicted(k) - tp(k));
    Ok(ParsingScores {
        fg_mean: mean(f1.iter().skip(1).flatten().copied()),
        miou: mean(seen.iter().map(|&k| iou(k))),
        f1,
    })
}

/// Parameters of `parsing_f1`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParsingParams {
    /// The label holding the true class maps `[N, H, W]`.
    #[serde(default = "parsing_label")]
    pub label: String,
    /// The class names, in label order, background first (`f1/<class>`).
    #[serde(default = "lapa_classes")]
    pub classes: Vec<String>,
}

impl Default for ParsingParams {
    fn default() -> Self {
        Self {
            label: parsing_label(),
            classes: lapa_classes(),
        }
    }
}

fn parsing_label() -> String {
    visage_core::labels::PARSING.into()
}

fn lapa_classes() -> Vec<String> {
    LAPA_CLASSES.iter().map(|s| s.to_string()).collect()
}

/// Parsing scores of predicted class maps `[N, H, W]` (int64): `f1/<class>`
/// for every class predicted or present, `fg_mean` and `miou`, percent. A
/// task that scores batch by batch accumulates with [`accumulate`] and
/// [`scores`] instead.
pub struct ParsingF1(pub ParsingParams);

impl Metric for ParsingF1 {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let target = label(labels, &self.0.label, "parsing_f1")?;
        let classes = self.0.classes.len() as i64;
        let mut matrix = empty(classes);
        accumulate(outputs, target, classes, &mut matrix)?;
        let s = scores(&matrix)?;
        let mut values: Metrics = self
            .0
            .classes
            .iter()
            .zip(&s.f1)
            .filter_map(|(name, f1)| f1.map(|v| (format!("f1/{name}"), v)))
            .collect();
        values.insert("fg_mean".into(), s.fg_mean);
        values.insert("miou".into(), s.miou);
        Ok(values)
    }
}

/// Registers `parsing_f1`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("parsing_f1", |p: ParsingParams, _| {
        if p.classes.len() < 2 {
            return Err(Error::msg("parsing_f1 needs at least 2 `classes`, background first"));
        }
        Ok(ParsingF1(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_matrix_over_the_set_then_f1_fg_mean_and_miou() {
        // Image 1: true 0 1 1, predicted 0 1 1. Image 2: true 0 2 0, predicted 0 1 0.
        let target = Tensor::from_slice(&[0i64, 1, 1, 0, 2, 0]).view([2, 1, 3]);
        let predicted = Tensor::from_slice(&[0i64, 1, 1, 0, 1, 0]).view([2, 1, 3]);
        let mut m = empty(4);
        accumulate(&predicted.narrow(0, 0, 1), &target.narrow(0, 0, 1), 4, &mut m).unwrap();
        accumulate(&predicted.narrow(0, 1, 1), &target.narrow(0, 1, 1), 4, &mut m).unwrap();
        // Class 0: TP 3, predicted 3, true 3 -> F1 100, IoU 100.
        // Class 1: TP 2, predicted 3, true 2 -> F1 4/5 = 80, IoU 2/3.
        // Class 2: TP 0, predicted 0, true 1 -> F1 0, IoU 0. Class 3: absent.
        let s = scores(&m).unwrap();
        assert_eq!(s.f1, [Some(100.0), Some(80.0), Some(0.0), None]);
        assert_eq!(s.fg_mean, 40.0);
        assert!((s.miou - (100.0 + 200.0 / 3.0) / 3.0).abs() < 1e-12);
        let labels: Labels = [("parsing".to_string(), target.shallow_clone())].into();
        let metric = ParsingF1(ParsingParams {
            classes: ["bg", "a", "b", "c"].map(String::from).to_vec(),
            ..ParsingParams::default()
        });
        let v = metric.compute(&predicted, &labels).unwrap();
        assert_eq!((v["f1/a"], v["fg_mean"]), (80.0, 40.0));
        assert!(!v.contains_key("f1/c"));
        // A class index beyond the classes is an error.
        assert!(accumulate(&predicted, &target.clamp_max(3).fill_(7), 4, &mut m).is_err());
    }
}
