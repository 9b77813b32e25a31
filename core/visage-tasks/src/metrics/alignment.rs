//! Face alignment as FaRL evaluates it (`tasks.md`): the NME of an image is
//! its mean point error divided by a unit distance, averaged over images;
//! the failure rate and the area under the cumulative error distribution
//! (CED) up to a threshold. Values are percentages (NME x 100).
//!
//! Units: `inter_ocular` (two points, e.g. the outer eye corners),
//! `inter_pupil` (the distance between the means of two point sets, the
//! pupils), `box` (`sqrt(w h)` of the face box label) and `diag`
//! (`sqrt(w^2 + h^2)` of it). Errors and units are in the same (original
//! image) coordinates.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;
use visage_core::metric::{label, Labels, Metric, Metrics};
use visage_core::{Error, Registry, Result};

use super::{doubles, shape};

/// The distance an image's point errors are divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// The distance between two points of the true landmarks.
    InterOcular,
    /// The distance between the means of two point sets of the true
    /// landmarks.
    InterPupil,
    /// `sqrt(w h)` of the face box.
    Box,
    /// The diagonal `sqrt(w^2 + h^2)` of the face box.
    Diag,
}

impl Unit {
    /// The name in metric values (`nme_<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Unit::InterOcular => "inter_ocular",
            Unit::InterPupil => "inter_pupil",
            Unit::Box => "box",
            Unit::Diag => "diag",
        }
    }
}

/// One landmark index or a set of them (whose mean is used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PointSet {
    /// One point.
    One(usize),
    /// The mean of several points.
    Many(Vec<usize>),
}

impl PointSet {
    /// The indices.
    pub fn indices(&self) -> &[usize] {
        match self {
            PointSet::One(i) => std::slice::from_ref(i),
            PointSet::Many(v) => v,
        }
    }
}

/// Landmarks `[N, P, 2]` as `N` vectors of `P` points.
fn points(landmarks: &Tensor, what: &str) -> Result<Vec<Vec<[f64; 2]>>> {
    let size = shape(landmarks, &[None, None, Some(2)], &format!("{what} [N, P, 2]"))?;
    let p = size[1] as usize;
    let v = doubles(landmarks)?;
    Ok(v.chunks(2 * p.max(1))
        .take(size[0] as usize)
        .map(|image| image.chunks(2).map(|xy| [xy[0], xy[1]]).collect())
        .collect())
}

fn mean_point(image: &[[f64; 2]], set: &[usize], n: usize) -> Result<[f64; 2]> {
    let mut sum = [0.0, 0.0];
    for &i in set {
        let [x, y] = image.get(i).ok_or_else(|| {
            Error::msg(format!(
                "NME unit: landmark index {i} of image {n}, which has {} points",
                image.len()
            ))
        })?;
        sum = [sum[0] + x, sum[1] + y];
    }
    let k = set.len().max(1) as f64;
    Ok([sum[0] / k, sum[1] / k])
}

/// The distance, per image, between the means of point sets `left` and
/// `right` of `landmarks` `[N, P, 2]` (one point each: inter-ocular; eye
/// contours or pupils: inter-pupil).
pub fn eye_distance(landmarks: &Tensor, left: &[usize], right: &[usize]) -> Result<Vec<f64>> {
    if left.is_empty() || right.is_empty() {
        return Err(Error::msg("NME unit: an eye point set is empty"));
    }
    points(landmarks, "true landmarks")?
        .iter()
        .enumerate()
        .map(|(n, image)| {
            let (a, b) = (mean_point(image, left, n)?, mean_point(image, right, n)?);
            Ok(((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt())
        })
        .collect()
}

/// Widths and heights of boxes `[N, 4]` (`x0, y0, x1, y1`).
fn sides(boxes: &Tensor) -> Result<Vec<(f64, f64)>> {
    shape(boxes, &[None, Some(4)], "face boxes [N, 4]")?;
    Ok(doubles(boxes)?.chunks(4).map(|b| (b[2] - b[0], b[3] - b[1])).collect())
}

/// `sqrt(w h)` of each box `[N, 4]` (`x0, y0, x1, y1`).
pub fn box_size(boxes: &Tensor) -> Result<Vec<f64>> {
    Ok(sides(boxes)?.iter().map(|(w, h)| (w * h).sqrt()).collect())
}

/// The diagonal `sqrt(w^2 + h^2)` of each box `[N, 4]`.
pub fn box_diagonal(boxes: &Tensor) -> Result<Vec<f64>> {
    Ok(sides(boxes)?.iter().map(|(w, h)| (w * w + h * h).sqrt()).collect())
}

/// The box `x0, y0, x1, y1` `[N, 4]` spanned by each image's landmarks
/// `[N, P, 2]`, for a `box` unit when the data has no face box (the
/// AFLW2000 convention of 3DDFA).
pub fn landmark_boxes(landmarks: &Tensor) -> Result<Tensor> {
    shape(landmarks, &[None, None, Some(2)], "landmarks [N, P, 2]")?;
    let low = landmarks.f_amin([1i64].as_slice(), false)?;
    let high = landmarks.f_amax([1i64].as_slice(), false)?;
    Ok(Tensor::f_cat(&[low, high], 1)?)
}

/// The NME of each image, as a fraction: the mean over its points (its
/// visible points when `visible` `[N, P]` is given) of the distance between
/// `predicted` and `target` `[N, P, 2]`, divided by `units[n]`.
pub fn nme_per_image(predicted: &Tensor, target: &Tensor, units: &[f64], visible: Option<&Tensor>) -> Result<Vec<f64>> {
    let size = shape(target, &[None, None, Some(2)], "true landmarks [N, P, 2]")?;
    shape(
        predicted,
        &[Some(size[0]), Some(size[1]), Some(2)],
        "predicted landmarks [N, P, 2]",
    )?;
    let (n, p) = (size[0] as usize, size[1] as usize);
    if units.len() != n {
        return Err(Error::msg(format!(
            "NME: {} unit distances for {n} images",
            units.len()
        )));
    }
    let mask = match visible {
        Some(v) => {
            shape(v, &[Some(n as i64), Some(p as i64)], "landmark visibility [N, P]")?;
            doubles(v)?.iter().map(|&x| x > 0.5).collect()
        }
        None => vec![true; n * p],
    };
    let (pred, truth) = (
        points(predicted, "predicted landmarks")?,
        points(target, "true landmarks")?,
    );
    (0..n)
        .map(|i| {
            let seen: Vec<usize> = (0..p).filter(|&j| mask[i * p + j]).collect();
            if seen.is_empty() || units[i].is_nan() || units[i] <= 0.0 {
                return Err(Error::msg(format!(
                    "NME: image {i} has {} visible points and unit distance {}; expected some points and a positive unit",
                    seen.len(),
                    units[i]
                )));
            }
            let error: f64 = seen
                .iter()
                .map(|&j| ((pred[i][j][0] - truth[i][j][0]).powi(2) + (pred[i][j][1] - truth[i][j][1]).powi(2)).sqrt())
                .sum();
            Ok(error / seen.len() as f64 / units[i])
        })
        .collect()
}

/// The mean of per-image NMEs, percent.
pub fn nme(per_image: &[f64]) -> f64 {
    100.0 * per_image.iter().sum::<f64>() / per_image.len().max(1) as f64
}

/// The share of images whose NME exceeds `threshold` (a fraction, e.g.
/// 0.07), percent.
pub fn failure_rate(per_image: &[f64], threshold: f64) -> f64 {
    let failures = per_image.iter().filter(|&&e| e > threshold).count();
    100.0 * failures as f64 / per_image.len().max(1) as f64
}

/// The area under the cumulative error distribution from 0 to `threshold`,
/// divided by `threshold`, percent. The CED is a step function, so the
/// integral is exact: each image adds `max(0, threshold - nme)`. (FaRL and
/// HRNet approximate it with Simpson's rule on a grid of step 1e-4, which
/// differs by less than about step / threshold.)
pub fn ced_auc(per_image: &[f64], threshold: f64) -> f64 {
    let area: f64 = per_image.iter().map(|&e| (threshold - e).max(0.0)).sum();
    100.0 * area / threshold / per_image.len().max(1) as f64
}

/// Parameters of `nme` and `failure_rate`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NmeParams {
    /// The unit distance.
    pub unit: Unit,
    /// For `inter_ocular` and `inter_pupil`: the two eyes' points, each a
    /// landmark index or a list of them, e.g. `[36, 45]` or
    /// `[[36, 37, 38, 39, 40, 41], [42, 43, 44, 45, 46, 47]]` (0-based).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<PointSet>,
    /// Failure threshold on the per-image NME, as a fraction (0.07, 0.1);
    /// with it `nme` also reports the failure rate and CED AUC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The label holding the true landmarks `[N, P, 2]`.
    #[serde(default = "landmarks_label")]
    pub landmarks: String,
    /// The label holding the face boxes `[N, 4]` (`box` and `diag`).
    #[serde(default = "box_label", rename = "box")]
    pub box_label: String,
    /// A label holding per-point visibility `[N, P]`; when set, only
    /// visible points are scored (e.g. `landmarks_visible`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<String>,
}

fn landmarks_label() -> String {
    visage_core::labels::LANDMARKS.into()
}

fn box_label() -> String {
    visage_core::labels::BOX.into()
}

impl NmeParams {
    /// Parameters for `unit` with the default labels.
    pub fn new(unit: Unit, points: Vec<PointSet>) -> Self {
        Self {
            unit,
            points,
            threshold: None,
            landmarks: landmarks_label(),
            box_label: box_label(),
            visible: None,
        }
    }

    /// Checks that the eye units have two point sets and the box units none,
    /// and that the threshold is positive.
    pub fn check(&self) -> Result<()> {
        let eyes = matches!(self.unit, Unit::InterOcular | Unit::InterPupil);
        let expected = if eyes { 2 } else { 0 };
        if self.points.len() != expected {
            return Err(Error::msg(format!(
                "NME unit `{}` takes {expected} point sets in `points`, got {}",
                self.unit.name(),
                self.points.len()
            )));
        }
        if self.threshold.is_some_and(|t| t.is_nan() || t <= 0.0) {
            return Err(Error::msg("NME `threshold` must be positive (a fraction such as 0.07)"));
        }
        Ok(())
    }

    /// The per-image NMEs of `predicted` `[N, P, 2]` against the labels.
    pub fn per_image(&self, predicted: &Tensor, labels: &Labels, metric: &str) -> Result<Vec<f64>> {
        let target = label(labels, &self.landmarks, metric)?;
        let units = match self.unit {
            Unit::InterOcular | Unit::InterPupil => {
                let [left, right] = [&self.points[0], &self.points[1]].map(PointSet::indices);
                eye_distance(target, left, right)?
            }
            Unit::Box => box_size(label(labels, &self.box_label, metric)?)?,
            Unit::Diag => box_diagonal(label(labels, &self.box_label, metric)?)?,
        };
        let visible = self.visible.as_ref().map(|v| label(labels, v, metric)).transpose()?;
        nme_per_image(predicted, target, &units, visible)
    }

    fn failure_values(&self, per_image: &[f64], threshold: f64) -> Metrics {
        let unit = self.unit.name();
        [
            (format!("failure_rate_{unit}"), failure_rate(per_image, threshold)),
            (format!("auc_{unit}"), ced_auc(per_image, threshold)),
        ]
        .into()
    }
}

/// NME of predicted landmarks `[N, P, 2]`: the value `nme_<unit>`, and
/// with a threshold `failure_rate_<unit>` and `auc_<unit>`, percent.
pub struct Nme(pub NmeParams);

impl Metric for Nme {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let per_image = self.0.per_image(outputs, labels, "nme")?;
        let mut values = match self.0.threshold {
            Some(t) => self.0.failure_values(&per_image, t),
            None => Metrics::new(),
        };
        values.insert(format!("nme_{}", self.0.unit.name()), nme(&per_image));
        Ok(values)
    }
}

/// Failure rate and CED AUC of predicted landmarks `[N, P, 2]` at the
/// (required) threshold: `failure_rate_<unit>` and `auc_<unit>`, percent.
pub struct FailureRate(pub NmeParams, f64);

impl FailureRate {
    /// The metric; an error without a threshold.
    pub fn new(params: NmeParams) -> Result<Self> {
        params.check()?;
        let threshold = params
            .threshold
            .ok_or_else(|| Error::msg("failure_rate needs `threshold` (a fraction of the unit, e.g. 0.07)"))?;
        Ok(Self(params, threshold))
    }
}

impl Metric for FailureRate {
    fn compute(&self, outputs: &Tensor, labels: &Labels) -> Result<Metrics> {
        let per_image = self.0.per_image(outputs, labels, "failure_rate")?;
        Ok(self.0.failure_values(&per_image, self.1))
    }
}

/// Registers `nme` and `failure_rate`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.metric("nme", |p: NmeParams, _| {
        p.check()?;
        Ok(Nme(p))
    })?;
    registry.metric("failure_rate", |p: NmeParams, _| FailureRate::new(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two images of 3 points; true points (0, 0), (10, 0), (5, 5) in both.
    fn target() -> Tensor {
        Tensor::from_slice(&[0.0f32, 0.0, 10.0, 0.0, 5.0, 5.0])
            .view([1, 3, 2])
            .repeat([2, 1, 1])
    }

    #[test]
    fn nme_divides_the_mean_point_error_by_the_unit() {
        // Image 0: errors 1, 0, 2 (mean 1); image 1: errors 3, 0, 0 (mean 1).
        let predicted =
            Tensor::from_slice(&[1.0f32, 0.0, 10.0, 0.0, 5.0, 7.0, 0.0, 3.0, 10.0, 0.0, 5.0, 5.0]).view([2, 3, 2]);
        // Inter-ocular between points 0 and 1: 10 -> NMEs 0.1, 0.1 -> 10%.
        let unit = eye_distance(&target(), &[0], &[1]).unwrap();
        assert_eq!(unit, [10.0, 10.0]);
        let per = nme_per_image(&predicted, &target(), &unit, None).unwrap();
        assert_eq!(per, [0.1, 0.1]);
        assert!((nme(&per) - 10.0).abs() < 1e-12);
        // Visible: image 0 points 0, 2 (errors 1, 2: mean 1.5); image 1 point 1 (error 0).
        let visible = Tensor::from_slice2(&[[1.0f32, 0.0, 1.0], [0.0, 1.0, 0.0]]);
        let per = nme_per_image(&predicted, &target(), &unit, Some(&visible)).unwrap();
        assert_eq!(per, [0.15, 0.0]);
        // Inter-pupil between the mean of points {0, 2} = (2.5, 2.5) and point 1:
        // sqrt(7.5^2 + 2.5^2) = sqrt(62.5).
        let pupils = eye_distance(&target(), &[0, 2], &[1]).unwrap();
        assert!((pupils[0] - 62.5f64.sqrt()).abs() < 1e-12);
        assert!(eye_distance(&target(), &[0], &[3]).is_err());
        let none = Tensor::zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu));
        assert!(nme_per_image(&predicted, &target(), &unit, Some(&none)).is_err());
    }

    #[test]
    fn box_units_are_the_geometric_mean_side_and_the_diagonal() {
        // A 3 x 12 box: sqrt(36) = 6; diagonal sqrt(9 + 144) = sqrt(153).
        let boxes = Tensor::from_slice2(&[[1.0f32, 2.0, 4.0, 14.0]]);
        assert_eq!(box_size(&boxes).unwrap(), [6.0]);
        assert_eq!(box_diagonal(&boxes).unwrap(), [153f64.sqrt()]);
        // The points of `target()` span (0, 0) .. (10, 5).
        let spanned = landmark_boxes(&target()).unwrap();
        assert_eq!(Vec::<f32>::try_from(spanned.get(1)).unwrap(), [0.0, 0.0, 10.0, 5.0]);
    }

    #[test]
    fn failure_rate_and_ced_auc() {
        // NMEs 0.01, 0.05, 0.2 at threshold 0.1: one failure of three -> 33.3%.
        // AUC: (0.09 + 0.05 + 0) / 0.1 / 3 = 1.4 / 3 -> 46.67%.
        let per = [0.01, 0.05, 0.2];
        assert!((failure_rate(&per, 0.1) - 100.0 / 3.0).abs() < 1e-12);
        assert!((ced_auc(&per, 0.1) - 140.0 / 3.0).abs() < 1e-9);
        // Perfect predictions: AUC 100, failure rate 0.
        assert_eq!((ced_auc(&[0.0], 0.07), failure_rate(&[0.0], 0.07)), (100.0, 0.0));
    }

    #[test]
    fn the_components_read_units_and_thresholds_from_their_params() {
        let predicted =
            Tensor::from_slice(&[1.0f32, 0.0, 10.0, 0.0, 5.0, 7.0, 0.0, 3.0, 10.0, 0.0, 5.0, 5.0]).view([2, 3, 2]);
        // Boxes 10 x 10 and 20 x 5 -> unit 10 for both; NMEs 0.1, 0.1.
        let boxes = Tensor::from_slice2(&[[0.0f32, 0.0, 10.0, 10.0], [0.0, 0.0, 20.0, 5.0]]);
        let labels: Labels = [("landmarks".to_string(), target()), ("box".to_string(), boxes)].into();
        let params: NmeParams = serde_json::from_str(r#"{"unit": "box", "threshold": 0.05}"#).unwrap();
        let v = Nme(params.clone()).compute(&predicted, &labels).unwrap();
        assert!((v["nme_box"] - 10.0).abs() < 1e-12);
        // Both above 0.05: failure 100%, AUC 0.
        assert_eq!((v["failure_rate_box"], v["auc_box"]), (100.0, 0.0));
        let f = FailureRate::new(params).unwrap().compute(&predicted, &labels).unwrap();
        assert_eq!(f.len(), 2);
        let eyes: NmeParams = serde_json::from_str(r#"{"unit": "inter_pupil", "points": [[0, 2], 1]}"#).unwrap();
        assert_eq!(eyes.points, [PointSet::Many(vec![0, 2]), PointSet::One(1)]);
        assert!(FailureRate::new(eyes.clone()).is_err());
        assert!(NmeParams::new(Unit::InterOcular, vec![]).check().is_err());
        assert!(serde_json::from_str::<NmeParams>(r#"{"unit": "box", "size": 1}"#).is_err());
    }
}
