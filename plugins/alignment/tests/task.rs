//! The `alignment` task on synthface end to end, at a tiny size: its metric
//! keys, the last epoch's NME recomputed by hand from the head's outputs,
//! both protocols, and the refusal of a dataset without landmarks.

use std::sync::Arc;

use alignment::{Alignment, AlignmentParams};
use visage_core::dataset::{Dataset, DatasetInfo, Split};
use visage_core::features::Feature;
use visage_core::task::{Protocol, Task, TaskContext};
use visage_core::tch::{Device, Kind, Tensor};
use visage_core::{Registry, Result, Sample};
use visage_testing::{registry_with, with_eval_context, EvalOptions, TinySynthFace};

/// 24 train faces (3 identities x 8), 16 test faces (2 x 8), 32 x 32.
fn synthface(split: Split) -> Arc<dyn Dataset> {
    TinySynthFace::new(3, 8).split(split)
}

/// Runs the task under `protocol` on `train`/`test` with a random ResNet
/// read at its four stages.
fn run(protocol: Protocol, train: Arc<dyn Dataset>, test: Arc<dyn Dataset>) -> Result<visage_tasks::fit::Fitted> {
    let params: AlignmentParams =
        serde_json::from_str(r#"{"channels": 8, "heatmap_size": 32, "training": {"epochs": 2, "batch_size": 8}}"#)
            .unwrap();
    let options = EvalOptions {
        feature: Feature::Blocks {
            blocks: vec![0, 1, 2, 3],
        },
        ..EvalOptions::seeded(1)
    };
    let registry = registry_with("alignment", alignment::register);
    with_eval_context(&registry, protocol, train, test, &options, |ctx| {
        Alignment::new(params, &TaskContext { protocol })?.fit(ctx)
    })
}

/// Per-image NMEs (fractions) of heatmap logits `[N, K, h, w]` against
/// landmarks `[N, K, 2]` in pixels of a 32 x 32 image, by hand: the
/// sigmoid-weighted mean of the pixel centres `(i + 0.5) / w` of the
/// heatmap, times 32, over the distance of points 36 and 45.
fn inter_ocular_nmes(logits: &Tensor, truth: &Tensor) -> Vec<f64> {
    let (n, k, h, w) = logits.size4().unwrap();
    let heat = logits.sigmoid().to_kind(Kind::Double);
    let centres = |len: i64| (Tensor::arange(len, (Kind::Double, Device::Cpu)) + 0.5) / len as f64 * 32.0;
    let total = heat.sum_dim_intlist(&[2i64, 3][..], false, None);
    let x = (&heat * centres(w).view([1, 1, 1, w])).sum_dim_intlist(&[2i64, 3][..], false, None) / &total;
    let y = (&heat * centres(h).view([1, 1, h, 1])).sum_dim_intlist(&[2i64, 3][..], false, None) / &total;
    let truth = truth.to_kind(Kind::Double);
    (0..n)
        .map(|i| {
            let t = |j: i64, c: i64| truth.double_value(&[i, j, c]);
            let errors: f64 = (0..k)
                .map(|j| {
                    ((x.double_value(&[i, j]) - t(j, 0)).powi(2) + (y.double_value(&[i, j]) - t(j, 1)).powi(2)).sqrt()
                })
                .sum();
            let eyes = ((t(36, 0) - t(45, 0)).powi(2) + (t(36, 1) - t(45, 1)).powi(2)).sqrt();
            errors / k as f64 / eyes
        })
        .collect()
}

#[test]
fn linear_probe_reports_every_unit_and_the_last_epoch_is_what_the_outputs_give() {
    let fitted = run(Protocol::LinearProbe, synthface(Split::Train), synthface(Split::Test)).unwrap();
    let m = &fitted.metrics;
    let keys: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "auc_inter_ocular",
            "failure_rate_inter_ocular",
            "nme_box",
            "nme_diag",
            "nme_inter_ocular",
            "nme_inter_pupil"
        ]
    );
    // Heatmaps on the first stage's grid (32 x 32 with the small stem), one per iBUG point.
    assert_eq!(fitted.outputs.size(), [16, 68, 32, 32]);
    let per_image = inter_ocular_nmes(&fitted.outputs, &fitted.labels["landmarks"]);
    let nme = 100.0 * per_image.iter().sum::<f64>() / 16.0;
    assert!(
        (m["nme_inter_ocular"] - nme).abs() < 1e-3,
        "{} vs {nme}",
        m["nme_inter_ocular"]
    );
    let failures = per_image.iter().filter(|&&e| e > 0.1).count() as f64;
    assert!((m["failure_rate_inter_ocular"] - 100.0 * failures / 16.0).abs() < 1e-9);
    // The box unit sqrt(w h) of the landmark span is smaller than its diagonal.
    assert!(m["nme_box"] > m["nme_diag"]);
}

/// The landmarks `[N, 68, 2]` of every sample of `dataset`.
fn all_landmarks(dataset: &Arc<dyn Dataset>) -> Tensor {
    let points: Vec<Tensor> = (0..dataset.len())
        .map(|i| dataset.get(i).unwrap().labels["landmarks"].shallow_clone())
        .collect();
    Tensor::stack(&points, 0).to_kind(Kind::Double)
}

#[test]
fn the_constant_is_the_train_mean_shape_scored_on_the_test_faces() {
    let (train, test) = (synthface(Split::Train), synthface(Split::Test));
    let mean = all_landmarks(&train).mean_dim(0, false, None);
    let truth = all_landmarks(&test);
    let per_image: Vec<f64> = (0..truth.size()[0])
        .map(|i| {
            let truth = truth.get(i);
            let errors = (&mean - &truth).square().sum_dim_intlist(-1, false, None).sqrt();
            let eyes = (truth.get(36) - truth.get(45)).square().sum(None).sqrt();
            errors.mean(None).double_value(&[]) / eyes.double_value(&[])
        })
        .collect();
    let expected = 100.0 * per_image.iter().sum::<f64>() / per_image.len() as f64;
    let params: AlignmentParams = serde_json::from_str("{}").unwrap();
    let registry = registry_with("alignment", alignment::register);
    let protocol = Protocol::LinearProbe;
    let constant = with_eval_context(&registry, protocol, train, test, &EvalOptions::seeded(1), |ctx| {
        Alignment::new(params, &TaskContext { protocol })?.constant(ctx)
    })
    .unwrap()
    .expect("alignment has a constant");
    assert_eq!(constant.len(), 6);
    assert!(
        (constant["nme_inter_ocular"] - expected).abs() < 1e-3,
        "{} vs {expected}",
        constant["nme_inter_ocular"]
    );
}

#[test]
fn fine_tuning_trains_a_copy_and_scores_the_same_keys() {
    let fitted = run(Protocol::FineTune, synthface(Split::Train), synthface(Split::Test)).unwrap();
    assert_eq!(fitted.metrics.len(), 6);
    assert!(fitted.metrics["nme_inter_ocular"].is_finite() && fitted.metrics["nme_inter_ocular"] > 0.0);
}

/// Faces that say they hold only expressions.
struct NoLandmarks;

impl Dataset for NoLandmarks {
    fn len(&self) -> usize {
        4
    }
    fn get(&self, _: usize) -> Result<Sample> {
        Ok(Sample::new(Tensor::zeros([3, 32, 32], (Kind::Float, Device::Cpu))))
    }
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec!["expression".into()],
            ..DatasetInfo::default()
        }
    }
}

#[test]
fn a_dataset_without_landmarks_is_refused_naming_the_label() {
    let err = run(Protocol::LinearProbe, Arc::new(NoLandmarks), synthface(Split::Test))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("alignment needs label `landmarks`"), "{err}");
    assert!(err.contains("train split"), "{err}");
}

#[test]
fn the_registered_task_takes_farl_defaults_and_refuses_unknown_keys() {
    let mut registry = Registry::new();
    registry.set_plugin("alignment");
    alignment::register(&mut registry).unwrap();
    let ctx = TaskContext {
        protocol: Protocol::FineTune,
    };
    assert!(registry.build_task("alignment", "{}", &ctx).is_ok());
    let err = registry
        .build_task("alignment", r#"{"chanels": 8}"#, &ctx)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("chanels"), "{err}");
    let task = Alignment::new(serde_json::from_str("{}").unwrap(), &ctx).unwrap();
    let t = task.recipe();
    assert_eq!((t.epochs, t.lr, t.backbone_lr, t.weight_decay), (150, 1e-2, 1e-4, 1e-5));
    assert!(registry.build_metric("nme", r#"{"unit": "diag"}"#).is_ok());
}
