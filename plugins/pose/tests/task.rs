//! The `pose` task end to end on tiny data: synthface, and in-test
//! datasets whose angles are known for the filter and for learning.

use std::sync::Arc;

use visage_core::dataset::{Dataset, DatasetInfo};
use visage_core::labels::{IDENTITY, POSE};
use visage_core::metric::Metrics;
use visage_core::rng::Rng;
use visage_core::task::Protocol;
use visage_core::tch::Tensor;
use visage_core::{Result, Sample};
use visage_testing::{EvalOptions, TaskUnderTest, TinySynthFace};

/// `pose` evaluated with the evaluation seed 3.
fn pose() -> TaskUnderTest {
    TaskUnderTest::new("pose", pose::register).with_options(EvalOptions::seeded(3))
}

/// The three errors and their mean, nothing else.
fn assert_pose_metrics(m: &Metrics) {
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        ["mae_mean", "mae_pitch", "mae_roll", "mae_yaw"]
    );
    let mean = (m["mae_yaw"] + m["mae_pitch"] + m["mae_roll"]) / 3.0;
    assert!((m["mae_mean"] - mean).abs() < 1e-9, "{m:?}");
    assert!(m.values().all(|v| v.is_finite() && *v >= 0.0), "{m:?}");
}

#[test]
fn linear_probe_on_synthface_reports_the_three_errors_and_a_filter_that_keeps_all_changes_nothing() {
    let params = r#"{"training": {"epochs": 2, "batch_size": 16}}"#;
    let run = |params: &str| {
        let (train, test) = TinySynthFace::new(4, 8).splits();
        pose().evaluate(params, Protocol::LinearProbe, train, test).unwrap()
    };
    let m = run(params);
    assert_pose_metrics(&m);
    // synthface's angles stay within 75 degrees: the 99-degree filter keeps
    // every sample, and the result.
    let filtered = run(r#"{"max_angle": 99, "training": {"epochs": 2, "batch_size": 16}}"#);
    assert_eq!(m, filtered);
}

#[test]
fn fine_tuning_on_synthface_reports_the_three_errors() {
    let params = r#"{"training": {"epochs": 1, "batch_size": 16}}"#;
    let (train, test) = TinySynthFace::new(4, 8).splits();
    let m = pose().evaluate(params, Protocol::FineTune, train, test).unwrap();
    assert_pose_metrics(&m);
}

/// Sample `i`: yaw, pitch and roll drawn in [-30, 30] degrees, each shown
/// by the brightness of one channel, except that every fourth sample's
/// yaw is `wild` degrees; its identity is `i`.
struct Angles {
    len: usize,
    wild: f32,
    labels: Vec<String>,
}

impl Angles {
    fn shared(len: usize, wild: f32) -> Arc<dyn Dataset> {
        Arc::new(Angles {
            len,
            wild,
            labels: vec![POSE.into(), IDENTITY.into()],
        })
    }

    fn pose(&self, i: usize) -> [f32; 3] {
        let mut rng = Rng::new(&[i as u64, 1]);
        let mut pose = [0.0f32; 3].map(|_| rng.range(-30.0, 30.0) as f32);
        if i % 4 == 3 {
            pose[0] = self.wild;
        }
        pose
    }
}

impl Dataset for Angles {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, i: usize) -> Result<Sample> {
        let pose = self.pose(i);
        let mut rng = Rng::new(&[i as u64, 2]);
        let noise: Vec<f32> = (0..3 * 8 * 8).map(|_| 0.05 * rng.uniform() as f32).collect();
        let image = Tensor::from_slice(&noise).view([3, 8, 8]);
        for (c, &angle) in pose.iter().enumerate() {
            let _ = image
                .get(c as i64)
                .g_add_scalar_(0.5 + angle.clamp(-45.0, 45.0) as f64 / 100.0);
        }
        Ok(Sample::new(image)
            .with_label(POSE, Tensor::from_slice(&pose))
            .with_label(IDENTITY, Tensor::from(i as i64)))
    }
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: self.labels.clone(),
            ..DatasetInfo::default()
        }
    }
}

#[test]
fn the_angle_filter_leaves_out_the_samples_beyond_the_limit() {
    pose().with_context(
        Protocol::LinearProbe,
        Angles::shared(10, 120.0),
        Angles::shared(4, -99.0),
        |ctx| {
            let kept = pose::filter::keep_within(ctx, &ctx.train, POSE, 99.0, "train").unwrap();
            let identities: Vec<i64> = (0..kept.dataset.len())
                .map(|i| kept.dataset.get(i).unwrap().labels[IDENTITY].int64_value(&[]))
                .collect();
            // Samples 3 and 7 have yaw 120.
            assert_eq!(identities, [0, 1, 2, 4, 5, 6, 8, 9]);
            // -99 lies within the limit.
            let test = pose::filter::keep_within(ctx, &ctx.test, POSE, 99.0, "test").unwrap();
            assert_eq!(test.dataset.len(), 4);
            let err = pose::filter::keep_within(ctx, &ctx.test, POSE, 1.0, "test")
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("max_angle: 1 leaves none of the 4 samples of the test split"),
                "{err}"
            );
        },
    );
}

#[test]
fn a_linear_probe_learns_angles_the_features_show() {
    // Every fourth sample has yaw 150 and is left out by max_angle: 99;
    // left in, it would cost at least (150 - 45) / 4 degrees of yaw error.
    let params = r#"{"max_angle": 99, "training": {"epochs": 60, "batch_size": 16, "lr": 0.05}}"#;
    let m = pose()
        .evaluate(
            params,
            Protocol::LinearProbe,
            Angles::shared(128, 150.0),
            Angles::shared(64, 150.0),
        )
        .unwrap();
    assert_pose_metrics(&m);
    // Predicting 0 would err by 15 degrees on average.
    assert!(m["mae_mean"] < 5.0, "{m:?}");
}

#[test]
fn a_dataset_without_the_pose_label_is_refused_naming_it() {
    let no_pose = || -> Arc<dyn Dataset> {
        Arc::new(Angles {
            len: 4,
            wild: 0.0,
            labels: vec![IDENTITY.into()],
        })
    };
    let err = pose()
        .evaluate("{}", Protocol::LinearProbe, no_pose(), no_pose())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pose needs label `pose`, but the dataset holds only [identity]"),
        "{err}"
    );
    let build = |params: &str| pose().build(params, Protocol::LinearProbe).err();
    assert!(build(r#"{"max_angle": -5}"#).unwrap().to_string().contains("max_angle"));
    assert!(build(r#"{"training": {"epochs": 0}}"#)
        .unwrap()
        .to_string()
        .contains("training.epochs"));
}

#[test]
fn the_constant_predicts_the_train_medians_within_the_limit() {
    // Train: 10 samples, yaws of samples 3 and 7 are 120 and left out by
    // max_angle: 99; test: 6 samples, sample 3's yaw is 50 (kept).
    let (train, test) = (Angles::shared(10, 120.0), Angles::shared(6, 50.0));
    let angles = |len: usize, wild: f32| -> Vec<[f32; 3]> {
        let a = Angles {
            len,
            wild,
            labels: vec![],
        };
        (0..len).map(|i| a.pose(i)).filter(|p| p[0].abs() <= 99.0).collect()
    };
    let (kept, tested) = (angles(10, 120.0), angles(6, 50.0));
    assert_eq!((kept.len(), tested.len()), (8, 6));
    // torch's median of an even count is the lower middle value.
    let median = |k: usize| {
        let mut v: Vec<f32> = kept.iter().map(|p| p[k]).collect();
        v.sort_by(f32::total_cmp);
        v[(v.len() - 1) / 2]
    };
    let mae = |k: usize| tested.iter().map(|p| (p[k] - median(k)).abs() as f64).sum::<f64>() / 6.0;
    let task = pose().build(r#"{"max_angle": 99}"#, Protocol::LinearProbe).unwrap();
    let m = pose()
        .with_context(Protocol::LinearProbe, train, test, |ctx| task.constant(ctx))
        .unwrap()
        .unwrap();
    assert_pose_metrics(&m);
    for (k, name) in ["mae_yaw", "mae_pitch", "mae_roll"].iter().enumerate() {
        assert!((m[*name] - mae(k)).abs() < 1e-4, "{name}: {} vs {}", m[*name], mae(k));
    }
}
