//! The `parsing` task on synthface end to end, at a tiny size: its metric
//! keys, the last epoch's F1 and mIoU recomputed by hand from the head's
//! outputs, both protocols, and the refusal of a dataset without parsing
//! labels.
//!
//! In-crate rather than in `tests/`: a test binary linking this crate and
//! synthface's would hold two `VISAGE_PLUGIN` symbols; under `cfg(test)`
//! this crate declares none.

use std::sync::Arc;

use crate::{Parsing, ParsingParams};
use synthface::dataset::SynthFace;
use visage_core::backbone::{Backbone, BackboneContext};
use visage_core::dataset::{Dataset, DatasetContext, DatasetInfo, Split};
use visage_core::features::Feature;
use visage_core::labels::LAPA_CLASSES;
use visage_core::task::{EvalContext, EvalSplit, Protocol, TaskContext};
use visage_core::tch::{nn, Device, Kind, Tensor};
use visage_core::{Registry, Result, Sample};

/// 24 train faces (3 identities x 8), 16 test faces (2 x 8), 32 x 32.
fn synthface(split: Split) -> Arc<dyn Dataset> {
    let params =
        serde_json::from_str(r#"{"identities": 5, "test_identities": 2, "samples_per_identity": 8, "resolution": 32}"#)
            .unwrap();
    Arc::new(SynthFace::new(params, &DatasetContext { split, seed: 0 }).unwrap())
}

fn resnet(registry: &Registry, vs: &nn::VarStore, prefix: &str) -> Box<dyn Backbone> {
    let ctx = BackboneContext {
        vs: vs.root() / prefix,
        in_channels: 3,
    };
    registry
        .build_backbone("resnet", r#"{"width": 4, "small_stem": true}"#, &ctx)
        .unwrap()
}

/// Runs the task under `protocol` on `train`/`test` with a random ResNet
/// read at its four stages.
fn run(protocol: Protocol, train: Arc<dyn Dataset>, test: Arc<dyn Dataset>) -> Result<visage_tasks::fit::Fitted> {
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry).unwrap();
    visage_core::tch::manual_seed(0);
    let source = nn::VarStore::new(Device::Cpu);
    let backbone = resnet(&registry, &source, "backbone");
    let copy = |vs: &mut nn::VarStore, prefix: &str| -> Result<Box<dyn Backbone>> {
        let copy = resnet(&registry, vs, prefix);
        vs.copy(&source)?;
        Ok(copy)
    };
    let feature = Feature::Blocks {
        blocks: vec![0, 1, 2, 3],
    };
    let ctx = EvalContext {
        backbone: backbone.as_ref(),
        feature: &feature,
        copy_backbone: &copy,
        protocol,
        train: EvalSplit {
            dataset: train,
            augmentations: Arc::from(vec![]),
        },
        test: EvalSplit {
            dataset: test,
            augmentations: Arc::from(vec![]),
        },
        metrics: &[],
        device: Device::Cpu,
        seed: 1,
        workers: 0,
        dir: None,
        resume: false,
    };
    let params: ParsingParams =
        serde_json::from_str(r#"{"channels": 8, "training": {"epochs": 2, "batch_size": 8, "lr": 0.01}}"#).unwrap();
    Parsing::new(params, &TaskContext { protocol })?.fit(&ctx)
}

/// Per class: (true positives, predicted, true) pixels of the argmax of
/// `logits` `[N, C, H, W]` against `truth` `[N, H, W]`, counted by hand.
fn counts(logits: &Tensor, truth: &Tensor) -> Vec<(f64, f64, f64)> {
    let predicted = logits.argmax(1, false);
    let count = |t: Tensor| t.to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
    (0..logits.size()[1])
        .map(|c| {
            let (p, t) = (predicted.eq(c), truth.eq(c));
            (count(p.logical_and(&t)), count(p), count(t))
        })
        .collect()
}

#[test]
fn linear_probe_reports_f1_fg_mean_and_miou_of_the_last_epoch_outputs() {
    let fitted = run(Protocol::LinearProbe, synthface(Split::Train), synthface(Split::Test)).unwrap();
    let m = &fitted.metrics;
    // Logits at the input size, one map per LaPa class.
    assert_eq!(fitted.outputs.size(), [16, 11, 32, 32]);
    let counts = counts(&fitted.outputs, &fitted.labels["parsing"]);
    let seen: Vec<usize> = (0..11).filter(|&c| counts[c].1 + counts[c].2 > 0.0).collect();
    for &c in &seen {
        let (tp, p, t) = counts[c];
        let key = format!("f1/{}", LAPA_CLASSES[c]);
        assert!((m[&key] - 100.0 * 2.0 * tp / (p + t)).abs() < 1e-9, "{key}");
    }
    let f1 = |c: usize| 100.0 * 2.0 * counts[c].0 / (counts[c].1 + counts[c].2);
    let foreground: Vec<f64> = seen.iter().filter(|&&c| c > 0).map(|&c| f1(c)).collect();
    let fg_mean = foreground.iter().sum::<f64>() / foreground.len() as f64;
    assert!((m["fg_mean"] - fg_mean).abs() < 1e-9, "{} vs {fg_mean}", m["fg_mean"]);
    let iou = |c: usize| 100.0 * counts[c].0 / (counts[c].1 + counts[c].2 - counts[c].0);
    let miou = seen.iter().map(|&c| iou(c)).sum::<f64>() / seen.len() as f64;
    assert!((m["miou"] - miou).abs() < 1e-9);
    assert_eq!(m.len(), seen.len() + 2);
}

#[test]
fn fine_tuning_trains_a_copy_and_scores_the_same_keys() {
    let fitted = run(Protocol::FineTune, synthface(Split::Train), synthface(Split::Test)).unwrap();
    let m = &fitted.metrics;
    assert!(
        m.contains_key("fg_mean") && m.contains_key("miou") && m.contains_key("f1/background"),
        "{m:?}"
    );
    assert!((0.0..=100.0).contains(&m["fg_mean"]));
}

/// Faces that say they hold only landmarks.
struct NoParsing;

impl Dataset for NoParsing {
    fn len(&self) -> usize {
        4
    }
    fn get(&self, _: usize) -> Result<Sample> {
        Ok(Sample::new(Tensor::zeros([3, 32, 32], (Kind::Float, Device::Cpu))))
    }
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec!["landmarks".into()],
            ..DatasetInfo::default()
        }
    }
}

#[test]
fn a_dataset_without_parsing_labels_is_refused_naming_the_label() {
    let err = run(Protocol::LinearProbe, synthface(Split::Train), Arc::new(NoParsing))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("parsing needs label `parsing`"), "{err}");
    assert!(err.contains("test split"), "{err}");
}

#[test]
fn the_registered_task_takes_farl_defaults_and_refuses_unknown_keys() {
    let mut registry = Registry::new();
    registry.set_plugin("parsing");
    crate::register(&mut registry).unwrap();
    let ctx = TaskContext {
        protocol: Protocol::LinearProbe,
    };
    assert!(registry.build_task("parsing", "{}", &ctx).is_ok());
    let err = registry
        .build_task("parsing", r#"{"lable": "x"}"#, &ctx)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("lable"), "{err}");
    let task = Parsing::new(serde_json::from_str("{}").unwrap(), &ctx).unwrap();
    let t = task.recipe();
    assert_eq!((t.epochs, t.lr, t.backbone_lr, t.weight_decay), (300, 1e-3, 1e-4, 1e-5));
    assert!(registry.build_metric("parsing_f1", "{}").is_ok());
}
