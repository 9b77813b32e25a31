//! `fer` on synthface through the release runner, which loads the plugins
//! beside it in target/release (`./scripts/test` builds the workspace
//! first; alone: `cargo build --release -p visage-runner -p
//! visage-plugin-synthface -p visage-plugin-fer`): the run's results and
//! the confusion matrix files, a dataset without expressions refused, and
//! the experiment's pre-trained backbone beating its random-init twin.

use visage_testing::experiment::read_json;
use visage_testing::{assert_beats_constant, pair, Better, Experiment};

/// experiments/tasks/fer.yaml, on libtorch's default threads.
fn fer() -> Experiment {
    Experiment::new("experiments/tasks/fer.yaml")
}

/// The two evaluations' synthface data made tiny: 4 train identities
/// (40 faces) and 2 test identities (20 faces) at 32 px.
const TINY: &[&str] = &[
    "pretrain.steps=2",
    "pretrain.batch_size=8",
    "pretrain.dataset.params.resolution=32",
    "evaluations.0.dataset.params={identities: 6, test_identities: 2, samples_per_identity: 10, resolution: 32}",
    "evaluations.1.dataset.params={identities: 6, test_identities: 2, samples_per_identity: 10, resolution: 32}",
    "evaluations.0.task.params.training={epochs: 2, batch_size: 16}",
    "evaluations.1.task.params.training={epochs: 2, batch_size: 16, warmup_epochs: 1}",
];

#[test]
fn both_protocols_run_on_synthface_and_save_the_confusion_matrix_they_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = fer().sets(TINY).run(&out);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let results = read_json(&out.join("results.json"));
    for (i, protocol) in [(0, "linear_probe"), (1, "fine_tune")] {
        let evaluation = &results["evaluations"][i];
        assert_eq!(evaluation["task"], "fer");
        assert_eq!(evaluation["protocol"], protocol);
        for (twin, metrics) in [
            ("pretrained", &evaluation["metrics"]),
            ("random_init", &evaluation["random_init"]),
        ] {
            let keys: Vec<&String> = metrics.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["accuracy", "mean_class_accuracy"], "{protocol} {twin}");
            let matrix = read_json(&out.join(format!("evaluations/{i}-fer/{twin}/confusion_matrix.json")));
            let names: Vec<&str> = matrix["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            assert_eq!(names, visage_core::labels::EXPRESSIONS);
            let counts: Vec<Vec<i64>> = serde_json::from_value(matrix["counts"].clone()).unwrap();
            let total: i64 = counts.iter().flatten().sum();
            assert_eq!(total, 20, "every test face once");
            // The constant twin predicts one class for every test face:
            // its accuracy is that class's share of the test split, and
            // its mean class accuracy is one hit class over those present.
            let constant = &evaluation["constant"];
            let shares: Vec<f64> = counts
                .iter()
                .map(|row| 100.0 * row.iter().sum::<i64>() as f64 / 20.0)
                .collect();
            let accuracy = constant["accuracy"].as_f64().unwrap();
            let present = shares.iter().filter(|&&s| s > 0.0).count() as f64;
            assert!(
                shares.iter().any(|s| (s - accuracy).abs() < 1e-9),
                "{constant} vs {shares:?}"
            );
            assert!(
                (constant["mean_class_accuracy"].as_f64().unwrap() - 100.0 / present).abs() < 1e-6,
                "{constant} vs {present} classes"
            );
            let hits: i64 = (0..7).map(|c| counts[c][c]).sum();
            let top1 = 100.0 * hits as f64 / 20.0;
            assert!(
                (metrics["accuracy"].as_f64().unwrap() - top1).abs() < 1e-9,
                "{protocol} {twin}: {metrics} vs {counts:?}"
            );
            let png = image::open(out.join(format!("evaluations/{i}-fer/{twin}/confusion_matrix.png"))).unwrap();
            assert_eq!((png.width(), png.height()), (7 * fer::plot::CELL, 7 * fer::plot::CELL));
        }
    }
}

#[test]
fn a_dataset_without_expressions_is_refused_naming_the_label() {
    let dir = tempfile::tempdir().unwrap();
    let mut sets = TINY.to_vec();
    sets.push("evaluations.0.dataset={name: example_shapes, params: {count: 16, resolution: 32}}");
    let run = fer().sets(&sets).run(&dir.path().join("run"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "`evaluations.0.task`: `fer` cannot run on dataset `example_shapes`: \
                         fer needs label `expression`, but the dataset holds only [class]"
        ),
        "{stderr}"
    );
    // Refused before pre-training: no run directory.
    assert!(!dir.path().join("run").exists());
}

#[test]
fn fine_tuning_beats_random_init_and_both_protocols_beat_the_majority_class() {
    // On one thread, as the seeds below were measured. Over seeds 0-2 the
    // linear probe's gain over random init was +11.0, +0.7 and +9.5 points:
    // a seed's luck, so it is not asserted. What held on every seed:
    // fine-tuning from the pre-trained backbone beat random init (+5.7,
    // +10.3, +12.0), and both protocols beat the majority class (the probe
    // by 14.8 at least, fine-tuning by 16.2); margins about half those.
    let results = fer().one_thread().results();
    assert_beats_constant(&results, "fer", "accuracy", Better::Higher, [7.0, 8.0]);
    let (pretrained, random) = pair(&results, 1, "accuracy");
    assert!(
        pretrained > random + 2.0,
        "fer fine_tune: accuracy {pretrained:.2} should beat random init {random:.2} by 2"
    );
}
