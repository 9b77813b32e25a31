//! The confusion matrix of a FER evaluation, as the task saves it in the
//! evaluation's folder: `confusion_matrix.json` (class names and counts)
//! and `confusion_matrix.png` (the heatmap of [`crate::plot`]).

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};
use visage_core::fs::write_atomic;
use visage_core::{Error, Result};
use visage_tasks::metrics::classification::confusion_matrix;

use crate::plot::heatmap_png;

/// File name of the counts.
pub const JSON_FILE: &str = "confusion_matrix.json";
/// File name of the heatmap.
pub const PNG_FILE: &str = "confusion_matrix.png";

/// Counts of (true, predicted) class pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// `counts[t][p]`: test samples of true class `t` predicted as `p`.
    pub counts: Vec<Vec<i64>>,
}

impl ConfusionMatrix {
    /// The matrix of logits `[N, C]` (argmax is the prediction) against
    /// class indices `[N]`, with `classes.len() == C` names.
    pub fn of_logits(logits: &Tensor, target: &Tensor, classes: &[String]) -> Result<Self> {
        let c = classes.len() as i64;
        let size = logits.size();
        if size.len() != 2 || size[1] != c {
            return Err(Error::msg(format!(
                "confusion matrix: expected logits [N, {c}] for {c} classes, got {size:?}"
            )));
        }
        let matrix = confusion_matrix(&logits.f_argmax(1, false)?, target, c)?;
        let flat = matrix.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?.f_contiguous()?;
        let flat = Vec::<i64>::try_from(&flat)?;
        Ok(ConfusionMatrix {
            classes: classes.to_vec(),
            counts: flat.chunks(classes.len().max(1)).map(<[i64]>::to_vec).collect(),
        })
    }

    /// Writes [`JSON_FILE`] and [`PNG_FILE`] into `dir` (created if
    /// missing), each atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::msg(format!("confusion matrix: JSON encoding failed: {e}")))?;
        write_atomic(&dir.join(JSON_FILE), &json)?;
        write_atomic(&dir.join(PNG_FILE), &heatmap_png(&self.counts)?)?;
        tracing::info!(dir = %dir.display(), "confusion matrix saved");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_true_classes_and_columns_the_argmax() {
        // Predictions 0, 1, 1 for true 0, 0, 1.
        let logits = Tensor::from_slice2(&[[2.0f32, 1.0], [0.0, 3.0], [0.0, 1.0]]);
        let target = Tensor::from_slice(&[0i64, 0, 1]);
        let names = vec!["a".to_string(), "b".to_string()];
        let m = ConfusionMatrix::of_logits(&logits, &target, &names).unwrap();
        assert_eq!(m.counts, vec![vec![1, 1], vec![0, 1]]);
        let three = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let err = ConfusionMatrix::of_logits(&logits, &target, &three).unwrap_err();
        assert!(err.to_string().contains("[N, 3]"), "{err}");
    }
}
