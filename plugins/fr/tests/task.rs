//! The `fr` task end to end on tiny synthface splits: the metrics are
//! LAFS's verification of the flip-summed embeddings, recomputed here by
//! hand from the backbone; a dataset's own pairs are used when it has
//! them; fine-tuning trains its own copy only; a dataset without the
//! needed label is refused by name.

use std::sync::Arc;

use fr::pairs::balanced_pairs;
use fr::FaceRecognition;
use visage_core::backbone::Backbone;
use visage_core::dataset::{Dataset, DatasetInfo, PairLayout, Split};
use visage_core::metric::Metrics;
use visage_core::task::{EvalContext, Protocol, Task, TaskContext};
use visage_core::tch::Tensor;
use visage_core::{Result, Sample};
use visage_tasks::metrics::verification::{k_fold_accuracy, pair_distances};
use visage_testing::{registry_with, with_eval_context, EvalOptions, TinySynthFace};

/// The faces: 6 train and 6 test identities, 4 faces each, seed 1.
const FACES: TinySynthFace = TinySynthFace {
    train_identities: 6,
    test_identities: 6,
    per_identity: 4,
    seed: 1,
};

fn synthface(split: Split) -> Arc<dyn Dataset> {
    FACES.split(split)
}

/// Runs the task with `params` under `protocol` on `train` and `test`
/// (evaluation seed 7), then calls `check` with the evaluated backbone and
/// the context; returns the task's metrics.
fn evaluate(
    protocol: Protocol,
    params: &str,
    train: Arc<dyn Dataset>,
    test: Arc<dyn Dataset>,
    check: impl FnOnce(&dyn Backbone, &EvalContext<'_>),
) -> Result<Metrics> {
    let registry = registry_with("fr", fr::register);
    with_eval_context(&registry, protocol, train, test, &EvalOptions::seeded(7), |ctx| {
        let mut task = FaceRecognition::new(serde_json::from_str(params).unwrap(), &TaskContext { protocol })?;
        let metrics = task.evaluate(ctx);
        check(ctx.backbone, ctx);
        metrics
    })
}

/// The flip-summed pooled embedding of every test image, by hand.
fn embeddings(backbone: &dyn Backbone, test: &dyn Dataset) -> Tensor {
    let images: Vec<Tensor> = (0..test.len()).map(|i| test.get(i).unwrap().image).collect();
    let x = Tensor::stack(&images, 0);
    let _guard = visage_core::tch::no_grad_guard();
    let f = |x: &Tensor| backbone.forward(x, false).unwrap()["pooled"].flatten(1, -1);
    f(&x) + f(&x.flip([-1]))
}

fn identities(test: &dyn Dataset) -> Vec<i64> {
    (0..test.len())
        .map(|i| test.get(i).unwrap().labels["identity"].int64_value(&[]))
        .collect()
}

#[test]
fn the_frozen_embedding_is_scored_on_balanced_pairs_of_the_test_identities() {
    let test = synthface(Split::Test);
    let mut expected = None;
    let metrics = evaluate(
        Protocol::LinearProbe,
        r#"{"pairs": 200, "threshold": 0.5}"#,
        synthface(Split::Train),
        test.clone(),
        |backbone, _| {
            let e = embeddings(backbone, test.as_ref());
            // The pairs of the evaluation's seed (7): 20 a fold, 10 same.
            let pairs = balanced_pairs(&identities(test.as_ref()), 200, 10, 7).unwrap();
            let (rows, labels) = pairs.arrange(&e, "same", "fold");
            let same: Vec<bool> = Vec::<i64>::try_from(&labels["same"])
                .unwrap()
                .iter()
                .step_by(2)
                .map(|&s| s == 1)
                .collect();
            assert_eq!(same.iter().filter(|&&s| s).count(), 100);
            expected = Some(k_fold_accuracy(&pair_distances(&rows).unwrap(), &same, &pairs.fold).unwrap());
        },
    )
    .unwrap();
    let keys: Vec<&str> = metrics.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "accuracy",
            "accuracy_cosine",
            "accuracy_std",
            "tar_at_far_1e-3",
            "tar_at_far_1e-4",
            "threshold"
        ]
    );
    let expected = expected.unwrap();
    assert!(
        (metrics["accuracy"] - expected.accuracy).abs() < 1e-9,
        "{metrics:?} vs {expected:?}"
    );
    assert!((metrics["accuracy_std"] - expected.std).abs() < 1e-9);
    // 100 impostor pairs cannot resolve FAR 1e-4: the origin of the ROC is nearest.
    assert_eq!(metrics["tar_at_far_1e-4"], 0.0);
}

/// The test split regrouped as verification pairs `(2i, 2i+1)`: pair `i`
/// is samples `(i, i + 1)` of `inner`, its `same` label says whether their
/// identities agree, folds are pairs `i % 10`.
struct Paired(Arc<dyn Dataset>);

impl Dataset for Paired {
    fn len(&self) -> usize {
        2 * (self.0.len() - 1)
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let pair = index / 2;
        let (a, b) = (self.0.get(pair)?, self.0.get(pair + 1)?);
        let same = a.labels["identity"].int64_value(&[]) == b.labels["identity"].int64_value(&[]);
        let sample = if index % 2 == 0 { a } else { b };
        let mut out = Sample::new(sample.image);
        out = out.with_label("same", Tensor::from(i64::from(same)));
        Ok(out.with_label("fold", Tensor::from((pair % 10) as i64)))
    }
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec!["same".into(), "fold".into()],
            pairs: Some(PairLayout { folds: 10 }),
            ..DatasetInfo::default()
        }
    }
}

#[test]
fn a_dataset_with_pairs_is_scored_on_its_own_pairs() {
    let test: Arc<dyn Dataset> = Arc::new(Paired(synthface(Split::Test)));
    let mut expected = None;
    let metrics = evaluate(
        Protocol::LinearProbe,
        "{}",
        synthface(Split::Train),
        test.clone(),
        |backbone, _| {
            let e = embeddings(backbone, test.as_ref());
            let labels: Vec<i64> = (0..test.len())
                .map(|i| test.get(i).unwrap().labels["same"].int64_value(&[]))
                .collect();
            let same: Vec<bool> = labels.iter().step_by(2).map(|&s| s == 1).collect();
            // 23 pairs: 4 of each identity's 4 images are 3 same pairs each (18), 5 across.
            assert_eq!(same.iter().filter(|&&s| s).count(), 18);
            let folds: Vec<i64> = (0..same.len()).map(|i| (i % 10) as i64).collect();
            expected = Some(k_fold_accuracy(&pair_distances(&e).unwrap(), &same, &folds).unwrap());
        },
    )
    .unwrap();
    let expected = expected.unwrap();
    assert!(
        (metrics["accuracy"] - expected.accuracy).abs() < 1e-9,
        "{metrics:?} vs {expected:?}"
    );
    assert!(!metrics.contains_key("accuracy_cosine"));
}

#[test]
fn fine_tuning_trains_its_own_copy_on_a_few_shot_subset() {
    let params = r#"{"pairs": 100, "shots": 2, "identities": 0.5, "embedding_dim": 16,
        "training": {"epochs": 2, "batch_size": 4, "warmup_epochs": 1, "best_on_test": true}}"#;
    let metrics = evaluate(
        Protocol::FineTune,
        params,
        synthface(Split::Train),
        synthface(Split::Test),
        |_, _| {},
    )
    .unwrap();
    for key in [
        "accuracy",
        "accuracy_std",
        "threshold",
        "tar_at_far_1e-3",
        "best_on_test/accuracy",
    ] {
        assert!(metrics.contains_key(key), "{key} missing from {metrics:?}");
    }
    // The best epoch on the test split is at least the last one.
    assert!(metrics["best_on_test/accuracy"] >= metrics["accuracy"]);
    assert!((0.0..=100.0).contains(&metrics["accuracy"]));
}

/// synthface without its identities.
struct Anonymous(Arc<dyn Dataset>);

impl Dataset for Anonymous {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        self.0.get(index)
    }
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec!["expression".into()],
            ..DatasetInfo::default()
        }
    }
}

#[test]
fn datasets_without_identities_or_few_shot_under_the_probe_are_refused() {
    let anonymous: Arc<dyn Dataset> = Arc::new(Anonymous(synthface(Split::Test)));
    let err = evaluate(
        Protocol::LinearProbe,
        "{}",
        synthface(Split::Train),
        anonymous.clone(),
        |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("fr needs label `identity`"), "{err}");
    let err = evaluate(Protocol::FineTune, "{}", anonymous, synthface(Split::Test), |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("fr fine-tuning needs label `identity`"), "{err}");
    let probe = TaskContext {
        protocol: Protocol::LinearProbe,
    };
    let shots = FaceRecognition::new(serde_json::from_str(r#"{"shots": 1}"#).unwrap(), &probe);
    assert!(shots.err().unwrap().to_string().contains("trains nothing"));
    let tune = TaskContext {
        protocol: Protocol::FineTune,
    };
    let val = FaceRecognition::new(
        serde_json::from_str(r#"{"training": {"validation": 0.1}}"#).unwrap(),
        &tune,
    );
    assert!(val.err().unwrap().to_string().contains("training.validation"));
}
