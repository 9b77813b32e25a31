//! The `au` task end to end on tiny data: synthface (no subjects) and a
//! learnable in-test dataset with subjects for the folds.

use std::sync::Arc;

use visage_core::dataset::{Dataset, DatasetInfo};
use visage_core::labels::{AU, AU_NAMES, SUBJECT};
use visage_core::metric::Metrics;
use visage_core::rng::Rng;
use visage_core::task::Protocol;
use visage_core::tch::Tensor;
use visage_core::{Result, Sample};
use visage_testing::{EvalOptions, TaskUnderTest, TinySynthFace};

/// `au` evaluated with the evaluation seed 3.
fn au() -> TaskUnderTest {
    TaskUnderTest::new("au", au::register).with_options(EvalOptions::seeded(3))
}

/// The mean of the values of `metrics` whose key starts with `prefix`.
fn mean_of(metrics: &Metrics, prefix: &str) -> f64 {
    let values: Vec<f64> = metrics
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| *v)
        .collect();
    values.iter().sum::<f64>() / values.len() as f64
}

/// The twelve per-AU F1 values, their mean and the mean AUC, nothing else.
fn assert_au_metrics(m: &Metrics) {
    let mut expected: Vec<String> = AU_NAMES.iter().map(|n| format!("f1/{n}")).collect();
    expected.extend(["auc_mean".to_string(), "f1_mean".to_string()]);
    expected.sort();
    assert_eq!(m.keys().cloned().collect::<Vec<_>>(), expected);
    assert!((m["f1_mean"] - mean_of(m, "f1/")).abs() < 1e-9, "{m:?}");
    assert!(m.values().all(|v| (0.0..=100.0).contains(v)), "{m:?}");
}

#[test]
fn linear_probe_on_synthface_scores_every_action_unit() {
    let params = r#"{"training": {"epochs": 2, "batch_size": 16}}"#;
    let (train, test) = TinySynthFace::new(4, 12).splits();
    let m = au().evaluate(params, Protocol::LinearProbe, train, test).unwrap();
    assert_au_metrics(&m);
    // Seeded: the same evaluation gives the same numbers.
    let (train, test) = TinySynthFace::new(4, 12).splits();
    let again = au().evaluate(params, Protocol::LinearProbe, train, test).unwrap();
    assert_eq!(m, again);
}

#[test]
fn fine_tuning_on_synthface_scores_every_action_unit() {
    let params = r#"{"training": {"epochs": 1, "batch_size": 16}}"#;
    let (train, test) = TinySynthFace::new(4, 12).splits();
    let m = au().evaluate(params, Protocol::FineTune, train, test).unwrap();
    assert_au_metrics(&m);
}

/// Sample `i`: two AUs, each shown by the brightness of one channel (bright
/// when present), plus a little noise; six subjects (`i % 6`).
struct Channels {
    len: usize,
    labels: Vec<String>,
}

impl Channels {
    fn shared(len: usize) -> Arc<dyn Dataset> {
        Arc::new(Channels {
            len,
            labels: vec![AU.into(), SUBJECT.into()],
        })
    }

    fn present(i: usize) -> [f32; 2] {
        let code = (i * 7 + i / 6) % 4;
        [(code & 1) as f32, (code >> 1) as f32]
    }
}

impl Dataset for Channels {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, i: usize) -> Result<Sample> {
        let present = Self::present(i);
        let mut rng = Rng::new(&[i as u64]);
        let noise: Vec<f32> = (0..3 * 8 * 8).map(|_| 0.1 * rng.uniform() as f32).collect();
        let image = Tensor::from_slice(&noise).view([3, 8, 8]);
        for (c, &p) in present.iter().enumerate() {
            let _ = image.get(c as i64).g_add_scalar_(0.2 + 0.6 * p as f64);
        }
        Ok(Sample::new(image)
            .with_label(AU, Tensor::from_slice(&present))
            .with_label(SUBJECT, Tensor::from((i % 6) as i64)))
    }
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: self.labels.clone(),
            action_units: Some(vec!["AU1".into(), "AU2".into()]),
            subjects: self.labels.iter().any(|l| l == SUBJECT),
            ..DatasetInfo::default()
        }
    }
}

#[test]
fn subjects_give_three_subject_exclusive_folds_by_default_averaged() {
    let params = r#"{"training": {"epochs": 40, "batch_size": 16, "lr": 0.01}}"#;
    // The test split is not read under cross-validation.
    let m = au()
        .evaluate(params, Protocol::LinearProbe, Channels::shared(96), Channels::shared(1))
        .unwrap();
    let keys = |fold: &str| -> Vec<String> {
        ["auc_mean", "f1/AU1", "f1/AU2", "f1_mean"]
            .iter()
            .map(|k| format!("{fold}{k}"))
            .collect()
    };
    let mut expected: Vec<String> = keys("");
    for i in 0..3 {
        expected.extend(keys(&format!("fold_{i}/")));
    }
    expected.sort();
    assert_eq!(m.keys().cloned().collect::<Vec<_>>(), expected);
    for key in keys("") {
        let folds = (0..3).map(|i| m[&format!("fold_{i}/{key}")]).sum::<f64>() / 3.0;
        assert!(
            (m[&key] - folds).abs() < 1e-9,
            "{key}: {} is not the mean of its folds {folds}",
            m[&key]
        );
    }
    // A bright channel is an AU: learnt on four subjects, found on the other two.
    assert!(m["f1_mean"] > 90.0 && m["auc_mean"] > 95.0, "{m:?}");
}

#[test]
fn the_constant_predicts_every_au_seen_in_training_on_every_face() {
    let task = au();
    let constant = task
        .with_context(
            Protocol::LinearProbe,
            Channels::shared(96),
            Channels::shared(24),
            |ctx| task.build(r#"{"folds": 1}"#, Protocol::LinearProbe)?.constant(ctx),
        )
        .unwrap()
        .expect("au has a constant");
    // All ones: TP = the positives, FP = the rest, no FN: F1 = 2P / (N + P).
    for (j, name) in ["AU1", "AU2"].iter().enumerate() {
        let positives = (0..24).filter(|&i| Channels::present(i)[j] > 0.5).count() as f64;
        let f1 = 100.0 * 2.0 * positives / (24.0 + positives);
        assert!(
            (constant[&format!("f1/{name}")] - f1).abs() < 1e-9,
            "{name}: {constant:?}"
        );
    }
    // One score for every face: every positive ties every negative.
    assert_eq!(constant["auc_mean"], 50.0);
}

#[test]
fn folds_need_enough_subjects_and_a_dataset_with_subjects() {
    let task = au();
    let err = task
        .evaluate(
            r#"{"folds": 7}"#,
            Protocol::LinearProbe,
            Channels::shared(24),
            Channels::shared(1),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("folds: 7 needs at least 7 subjects, but the train split has 6"),
        "{err}"
    );
    let (train, test) = TinySynthFace::new(2, 2).splits();
    let err = task
        .evaluate(r#"{"folds": 3}"#, Protocol::LinearProbe, train, test)
        .unwrap_err()
        .to_string();
    assert!(err.contains("folds: 3 needs samples with a `subject` label"), "{err}");
    assert!(task.build(r#"{"folds": 0}"#, Protocol::LinearProbe).is_err());
}

#[test]
fn a_dataset_without_the_au_label_is_refused_naming_it() {
    let no_au = || -> Arc<dyn Dataset> {
        Arc::new(Channels {
            len: 12,
            labels: vec![SUBJECT.into()],
        })
    };
    let err = au()
        .evaluate("{}", Protocol::LinearProbe, no_au(), no_au())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("au needs label `au`, but the dataset holds only [subject]"),
        "{err}"
    );
    let err = au()
        .build(r#"{"fold": 3}"#, Protocol::FineTune)
        .err()
        .expect("unknown key refused")
        .to_string();
    assert!(err.contains("fold"), "{err}");
}
