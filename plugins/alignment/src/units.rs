//! The task's default metrics: the NME with every unit the landmark layout
//! supports, and the failure rate and CED AUC at the dataset's threshold.

use visage_core::dataset::LandmarkLayout;
use visage_core::metric::Labels;
use visage_core::{Error, Result};
use visage_tasks::metrics::alignment::{landmark_boxes, Nme, NmeParams, PointSet, Unit};

use crate::params::AlignmentParams;

/// The NME metrics of `layout`: `inter_ocular` and `inter_pupil` where
/// the layout names the points, `box` and `diag` always (of the box label,
/// or of the landmarks' box, see [`with_box`]); the failure unit also
/// reports the failure rate and AUC at the threshold.
pub fn default_metrics(layout: &LandmarkLayout, params: &AlignmentParams) -> Result<Vec<Nme>> {
    let (threshold, failure_unit) = failure(layout, params);
    let mut units = vec![];
    if let Some([left, right]) = layout.inter_ocular {
        units.push((Unit::InterOcular, vec![PointSet::One(left), PointSet::One(right)]));
    }
    if let Some([left, right]) = &layout.pupils {
        units.push((
            Unit::InterPupil,
            vec![PointSet::Many(left.clone()), PointSet::Many(right.clone())],
        ));
    }
    units.push((Unit::Box, vec![]));
    units.push((Unit::Diag, vec![]));
    if !units.iter().any(|(u, _)| *u == failure_unit) {
        return Err(Error::msg(format!(
            "alignment: `failure_unit: {}` is not a unit of the `{}` layout",
            failure_unit.name(),
            layout.name
        )));
    }
    units
        .into_iter()
        .map(|(unit, points)| {
            let metric = NmeParams {
                threshold: (unit == failure_unit).then_some(threshold),
                landmarks: params.label.clone(),
                box_label: params.box_label.clone(),
                visible: params.visible.clone(),
                ..NmeParams::new(unit, points)
            };
            metric.check()?;
            Ok(Nme(metric))
        })
        .collect()
}

/// The threshold and unit of the failure rate: the parameters', else
/// AFLW-19's 0.07 of the box, else WFLW's 0.1 of the inter-ocular distance
/// (of the box for a layout without eye corners).
pub fn failure(layout: &LandmarkLayout, params: &AlignmentParams) -> (f64, Unit) {
    let aflw = layout.name == "aflw19";
    let threshold = params.threshold.unwrap_or(if aflw { 0.07 } else { 0.1 });
    let unit = params.failure_unit.unwrap_or(if aflw || layout.inter_ocular.is_none() {
        Unit::Box
    } else {
        Unit::InterOcular
    });
    (threshold, unit)
}

/// The headline metric: `nme_inter_ocular` where the layout has eye
/// corners, else `nme_diag` (AFLW-19's, as MCF reports it).
pub fn headline(layout: &LandmarkLayout) -> &'static str {
    if layout.inter_ocular.is_some() {
        "nme_inter_ocular"
    } else {
        "nme_diag"
    }
}

/// `labels` with the face box under `box_label`: the dataset's when it has
/// one, else the box the true landmarks span (`x0, y0, x1, y1`, the
/// AFLW2000 convention of 3DDFA). Returns whether the box was derived.
pub fn with_box(labels: &Labels, landmarks: &str, box_label: &str) -> Result<(Labels, bool)> {
    let mut labels: Labels = labels.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
    if labels.contains_key(box_label) {
        return Ok((labels, false));
    }
    let points = labels
        .get(landmarks)
        .ok_or_else(|| Error::msg(format!("alignment: the scored samples lack label `{landmarks}`")))?;
    let boxes = landmark_boxes(points)?;
    labels.insert(box_label.to_string(), boxes);
    Ok((labels, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_core::tch::Tensor;

    fn params() -> AlignmentParams {
        serde_json::from_str("{}").unwrap()
    }

    #[test]
    fn ibug68_scores_four_units_and_fails_at_a_tenth_of_the_eye_distance() {
        let layout = LandmarkLayout::ibug68(false);
        let metrics = default_metrics(&layout, &params()).unwrap();
        let units: Vec<Unit> = metrics.iter().map(|m| m.0.unit).collect();
        assert_eq!(units, [Unit::InterOcular, Unit::InterPupil, Unit::Box, Unit::Diag]);
        assert_eq!(metrics[0].0.points, [PointSet::One(36), PointSet::One(45)]);
        assert_eq!(metrics[0].0.threshold, Some(0.1));
        assert!(metrics[1..].iter().all(|m| m.0.threshold.is_none()));
        assert_eq!(headline(&layout), "nme_inter_ocular");
        let aflw = LandmarkLayout {
            name: "aflw19".into(),
            ..layout
        };
        assert_eq!(failure(&aflw, &params()), (0.07, Unit::Box));
    }

    #[test]
    fn without_a_box_label_the_landmarks_span_the_box() {
        let points = Tensor::from_slice(&[1.0f32, 2.0, 5.0, 9.0, 3.0, 4.0]).view([1, 3, 2]);
        let labels: Labels = [("landmarks".to_string(), points)].into();
        let (with, derived) = with_box(&labels, "landmarks", "box").unwrap();
        assert!(derived);
        assert_eq!(
            Vec::<f32>::try_from(with["box"].flatten(0, -1)).unwrap(),
            [1.0, 2.0, 5.0, 9.0]
        );
        let (again, derived) = with_box(&with, "landmarks", "box").unwrap();
        assert!(!derived && again["box"].equal(&with["box"]));
    }
}
