//! The papers' metrics (see `shared/design/tasks.md`), one file per task
//! family. Each is a plain function on tensors, for tasks and tests, and a
//! [`visage_core::metric::Metric`] component that a task plugin registers
//! with its family's `register`:
//!
//! | family | components | values |
//! |---|---|---|
//! | [`classification`] | `mean_class_accuracy` (top-1 is core's `accuracy`) | `mean_class_accuracy` |
//! | [`au`] | `au_f1`, `au_auc` | `f1/<AU>`, `f1_mean`; `auc_mean` |
//! | [`pose`] | `pose_mae` | `mae_yaw`, `mae_pitch`, `mae_roll`, `mae_mean` |
//! | [`verification`] | `verification` | `accuracy`, `accuracy_std`, `threshold`, `accuracy_cosine` |
//! | [`alignment`] | `nme`, `failure_rate` | `nme_<unit>`; `failure_rate_<unit>`, `auc_<unit>` |
//! | [`parsing`] | `parsing_f1` | `f1/<class>`, `fg_mean`, `miou` |
//!
//! Every value is a percentage except the pose errors (degrees) and the
//! verification threshold (a squared distance).

pub mod alignment;
pub mod au;
pub mod classification;
pub mod parsing;
pub mod pose;
pub mod verification;

use tch::{Device, Kind, Tensor};
use visage_core::{Error, Result};

/// The elements of `t`, row-major, as `f64` on the CPU.
pub(crate) fn doubles(t: &Tensor) -> Result<Vec<f64>> {
    let flat = t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?.f_flatten(0, -1)?;
    Ok(Vec::<f64>::try_from(&flat.f_contiguous()?)?)
}

/// The elements of `t`, row-major, as `i64` on the CPU.
pub(crate) fn longs(t: &Tensor) -> Result<Vec<i64>> {
    let flat = t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?;
    Ok(Vec::<i64>::try_from(&flat.f_contiguous()?)?)
}

/// The shape of `t` if it matches `expected` (`None` = any size), else an
/// error naming `what` and both shapes.
pub(crate) fn shape(t: &Tensor, expected: &[Option<i64>], what: &str) -> Result<Vec<i64>> {
    let size = t.size();
    let fits = size.len() == expected.len() && size.iter().zip(expected).all(|(s, e)| e.is_none_or(|e| e == *s));
    if fits {
        return Ok(size);
    }
    let wanted: Vec<String> = expected
        .iter()
        .map(|e| e.map_or("_".to_string(), |e| e.to_string()))
        .collect();
    Err(Error::msg(format!(
        "{what}: expected a tensor of shape [{}], got {size:?}",
        wanted.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use visage_core::metric::Labels;
    use visage_core::Registry;

    #[test]
    fn every_family_registers_its_components_under_their_names() {
        let mut registry = Registry::new();
        registry.set_plugin("test");
        super::classification::register(&mut registry).unwrap();
        super::au::register(&mut registry).unwrap();
        super::pose::register(&mut registry).unwrap();
        super::verification::register(&mut registry).unwrap();
        super::alignment::register(&mut registry).unwrap();
        super::parsing::register(&mut registry).unwrap();
        let defaults = [
            "mean_class_accuracy",
            "au_f1",
            "au_auc",
            "pose_mae",
            "verification",
            "parsing_f1",
        ];
        for name in defaults {
            assert!(registry.build_metric(name, "{}").is_ok(), "{name}");
            let err = registry
                .build_metric(name, r#"{"lable": "x"}"#)
                .err()
                .expect("unknown field refused");
            assert!(err.to_string().contains("lable"), "{name}: {err}");
        }
        assert!(registry.build_metric("nme", r#"{"unit": "diag"}"#).is_ok());
        // failure_rate needs a threshold; inter-ocular needs two points.
        assert!(registry.build_metric("failure_rate", r#"{"unit": "box"}"#).is_err());
        assert!(registry
            .build_metric("nme", r#"{"unit": "inter_ocular", "points": [36]}"#)
            .is_err());
        // A pose metric built by name scores like the function.
        let pose = registry.build_metric("pose_mae", "{}").unwrap();
        let truth = tch::Tensor::from_slice2(&[[1.0f32, 2.0, 3.0]]);
        let labels: Labels = [("pose".to_string(), truth.shallow_clone())].into();
        // Errors 1, 2, 3 -> mean 2.
        assert_eq!(pose.compute(&(truth * 2.0), &labels).unwrap()["mae_mean"], 2.0);
    }
}
