//! The `fer` task in process on a small learnable toy problem, in both
//! protocols: the metric keys, the reported values recomputed from the
//! saved confusion matrix, the files it writes, and the datasets it
//! refuses. (tests/runner.rs runs the task on synthface through the
//! runner.)

use std::path::Path;
use std::sync::Arc;

use fer::confusion::{ConfusionMatrix, JSON_FILE, PNG_FILE};
use fer::plot::CELL;
use visage_core::dataset::{Dataset, DatasetInfo, Split};
use visage_core::labels::EXPRESSIONS;
use visage_core::rng::Rng;
use visage_core::task::{Metrics, Protocol};
use visage_core::tch::{Kind, Tensor};
use visage_core::{Result, Sample};
use visage_testing::{EvalOptions, TaskUnderTest};

/// Sample `i` shows expression `c = i % 7` as a colour on noise: channel
/// `k` of the 14 x 14 image is bright where bit `k` of `c + 1` is set;
/// 140 train and 40 test samples.
struct Colours {
    split: Split,
}

impl Dataset for Colours {
    fn len(&self) -> usize {
        match self.split {
            Split::Train => 140,
            Split::Test => 40,
        }
    }
    fn get(&self, i: usize) -> Result<Sample> {
        let class = (i % 7) as i64;
        let mut rng = Rng::new(&[i as u64, self.split as u64]);
        let noise: Vec<f32> = (0..3 * 14 * 14).map(|_| 0.5 * rng.uniform() as f32).collect();
        let image = Tensor::from_slice(&noise).view([3, 14, 14]);
        for k in 0..3 {
            if (class + 1) >> k & 1 == 1 {
                let _ = image.narrow(0, k, 1).g_add_scalar_(0.5);
            }
        }
        Ok(Sample::new(image).with_label("expression", Tensor::from(class)))
    }
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec!["expression".into()],
            classes: Some(EXPRESSIONS.map(String::from).to_vec()),
            ..DatasetInfo::default()
        }
    }
}

fn colours(split: Split) -> Arc<dyn Dataset> {
    Arc::new(Colours { split })
}

/// Evaluates `fer` with `params` on a seeded random tiny ResNet
/// (evaluation seed 1), writing into `dir`.
fn evaluate(
    protocol: Protocol,
    params: &str,
    train: Arc<dyn Dataset>,
    test: Arc<dyn Dataset>,
    dir: &Path,
) -> Result<Metrics> {
    let options = EvalOptions {
        dir: Some(dir.to_path_buf()),
        ..EvalOptions::seeded(1)
    };
    let fer = TaskUnderTest::new("fer", fer::register).with_options(options);
    fer.evaluate(params, protocol, train, test)
}

fn saved_matrix(dir: &Path) -> ConfusionMatrix {
    serde_json::from_slice(&std::fs::read(dir.join(JSON_FILE)).unwrap()).unwrap()
}

/// Top-1 and mean per-class accuracy (percent) from counts, by hand.
fn accuracies(counts: &[Vec<i64>]) -> (f64, f64) {
    let total: i64 = counts.iter().flatten().sum();
    let hits: i64 = (0..counts.len()).map(|i| counts[i][i]).sum();
    let recalls: Vec<f64> = counts
        .iter()
        .enumerate()
        .filter(|(_, row)| row.iter().sum::<i64>() > 0)
        .map(|(i, row)| row[i] as f64 / row.iter().sum::<i64>() as f64)
        .collect();
    (
        100.0 * hits as f64 / total as f64,
        100.0 * recalls.iter().sum::<f64>() / recalls.len() as f64,
    )
}

fn check_reported_values_are_the_saved_matrix(metrics: &Metrics, dir: &Path) {
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["accuracy", "mean_class_accuracy"],
        "{metrics:?}"
    );
    let matrix = saved_matrix(dir);
    assert_eq!(matrix.classes, EXPRESSIONS);
    assert_eq!(
        matrix.counts.iter().flatten().sum::<i64>(),
        40,
        "every test face counted once"
    );
    let (top1, per_class) = accuracies(&matrix.counts);
    assert!((metrics["accuracy"] - top1).abs() < 1e-9, "{metrics:?} vs {top1}");
    assert!(
        (metrics["mean_class_accuracy"] - per_class).abs() < 1e-9,
        "{metrics:?} vs {per_class}"
    );
    let png = image::open(dir.join(PNG_FILE)).unwrap();
    assert_eq!((png.width(), png.height()), (7 * CELL, 7 * CELL));
}

#[test]
fn the_linear_probe_reports_the_last_epoch_and_saves_its_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let params = r#"{"training": {"epochs": 20, "batch_size": 32, "lr": 0.1}}"#;
    let metrics = evaluate(
        Protocol::LinearProbe,
        params,
        colours(Split::Train),
        colours(Split::Test),
        dir.path(),
    )
    .unwrap();
    check_reported_values_are_the_saved_matrix(&metrics, dir.path());
    // 7 classes: chance is about 14%; the colours are easy to tell apart.
    // (Measured: 52.5%.)
    assert!(metrics["accuracy"] > 35.0, "{metrics:?}");
    // The head trained through the engine: its log is in the evaluation's folder.
    assert!(dir.path().join("metrics.jsonl").exists());
}

#[test]
fn fine_tuning_reports_the_same_metrics_from_its_own_backbone_copy() {
    let dir = tempfile::tempdir().unwrap();
    let params = r#"{"training": {"epochs": 2, "batch_size": 32, "warmup_epochs": 1}}"#;
    let metrics = evaluate(
        Protocol::FineTune,
        params,
        colours(Split::Train),
        colours(Split::Test),
        dir.path(),
    )
    .unwrap();
    check_reported_values_are_the_saved_matrix(&metrics, dir.path());
}

#[test]
fn best_on_test_is_reported_under_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let params = r#"{"training": {"epochs": 4, "batch_size": 32, "best_on_test": true}}"#;
    let m = evaluate(
        Protocol::LinearProbe,
        params,
        colours(Split::Train),
        colours(Split::Test),
        dir.path(),
    )
    .unwrap();
    assert!(m["best_on_test/accuracy"] >= m["accuracy"], "{m:?}");
    assert!((1.0..=4.0).contains(&m["best_on_test/epoch"]), "{m:?}");
}

/// A dataset with its `info()` replaced.
struct Relabelled(Arc<dyn Dataset>, DatasetInfo);

impl Dataset for Relabelled {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        self.0.get(index)
    }
    fn info(&self) -> DatasetInfo {
        self.1.clone()
    }
}

#[test]
fn datasets_without_the_label_or_its_classes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let with = |info: DatasetInfo| -> Arc<dyn Dataset> { Arc::new(Relabelled(colours(Split::Train), info)) };
    let no_label = with(DatasetInfo {
        labels: vec!["identity".into(), "pose".into()],
        ..DatasetInfo::default()
    });
    let err = evaluate(Protocol::LinearProbe, "{}", no_label, colours(Split::Test), dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("fer needs label `expression`, but the dataset holds only [identity, pose]"),
        "{err}"
    );
    let no_classes = with(DatasetInfo {
        labels: vec!["expression".into()],
        ..DatasetInfo::default()
    });
    let err = evaluate(
        Protocol::LinearProbe,
        "{}",
        no_classes,
        colours(Split::Test),
        dir.path(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("class names of label `expression`"), "{err}");
    // Classes that do not cover the labels: class 6 is beyond 3 names.
    let three = with(DatasetInfo {
        labels: vec!["expression".into()],
        classes: Some(vec!["a".into(), "b".into(), "c".into()]),
        ..DatasetInfo::default()
    });
    let test = Arc::new(Relabelled(colours(Split::Test), three.info()));
    let err = evaluate(
        Protocol::LinearProbe,
        r#"{"training": {"epochs": 1}}"#,
        three,
        test,
        dir.path(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("expected a class index in 0..3"), "{err}");
    // A bad training value is refused when the task is built.
    let err = evaluate(
        Protocol::LinearProbe,
        r#"{"training": {"epochs": 0}}"#,
        colours(Split::Train),
        colours(Split::Test),
        dir.path(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("training.epochs"), "{err}");
}

#[test]
fn a_perfect_classifier_plots_a_dark_diagonal_on_white() {
    let dir = tempfile::tempdir().unwrap();
    // 3 classes, every sample right: logits one-hot on the true class.
    let target = Tensor::from_slice(&[0i64, 1, 2, 2, 1]);
    let logits = target.one_hot(3).to_kind(Kind::Float);
    let names: Vec<String> = ["neutral", "happy", "sad"].map(String::from).to_vec();
    let matrix = ConfusionMatrix::of_logits(&logits, &target, &names).unwrap();
    assert_eq!(matrix.counts, vec![vec![1, 0, 0], vec![0, 2, 0], vec![0, 0, 2]]);
    matrix.save(dir.path()).unwrap();
    assert_eq!(saved_matrix(dir.path()), matrix);
    let png = image::open(dir.path().join(PNG_FILE)).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (3 * CELL, 3 * CELL));
    let darkness = |row: u32, col: u32| {
        let p = png.get_pixel(col * CELL + CELL / 2, row * CELL + CELL / 2).0;
        765 - p.iter().map(|&c| c as u32).sum::<u32>()
    };
    for row in 0..3 {
        for col in 0..3 {
            let expected = if row == col {
                fer::plot::shade(1.0)
            } else {
                fer::plot::shade(0.0)
            };
            // The whole block has one colour, corners included.
            for (dx, dy) in [(0, 0), (CELL - 1, CELL - 1)] {
                assert_eq!(
                    png.get_pixel(col * CELL + dx, row * CELL + dy).0,
                    expected,
                    "cell ({row}, {col})"
                );
            }
            if row != col {
                assert!(darkness(row, row) > darkness(row, col));
            }
        }
    }
}
