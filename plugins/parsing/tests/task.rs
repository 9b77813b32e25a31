//! The `parsing` task on synthface end to end, at a tiny size: its metric
//! keys, the last epoch's F1 and mIoU recomputed by hand from the head's
//! outputs, both protocols, and the refusal of a dataset without parsing
//! labels.

use std::sync::Arc;

use parsing::{Parsing, ParsingParams};
use visage_core::dataset::{Dataset, DatasetInfo, Split};
use visage_core::features::Feature;
use visage_core::labels::LAPA_CLASSES;
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
    let params: ParsingParams =
        serde_json::from_str(r#"{"channels": 8, "training": {"epochs": 2, "batch_size": 8, "lr": 0.01}}"#).unwrap();
    let options = EvalOptions {
        feature: Feature::Blocks {
            blocks: vec![0, 1, 2, 3],
        },
        ..EvalOptions::seeded(1)
    };
    let registry = registry_with("parsing", parsing::register);
    with_eval_context(&registry, protocol, train, test, &options, |ctx| {
        Parsing::new(params, &TaskContext { protocol })?.fit(ctx)
    })
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

/// The `parsing` masks `[N, H, W]` of every sample of `dataset`.
fn all_masks(dataset: &Arc<dyn Dataset>) -> Tensor {
    let masks: Vec<Tensor> = (0..dataset.len())
        .map(|i| dataset.get(i).unwrap().labels["parsing"].to_kind(Kind::Int64))
        .collect();
    Tensor::stack(&masks, 0)
}

#[test]
fn the_constant_is_the_per_pixel_majority_of_the_train_masks() {
    let (train, test) = (synthface(Split::Train), synthface(Split::Test));
    let (train_masks, truth) = (all_masks(&train), all_masks(&test));
    // The majority class at each pixel, by hand: one-hot counts over N.
    let votes = train_masks.one_hot(11).sum_dim_intlist(0, false, Kind::Int64);
    let mean_mask = votes.argmax(-1, false);
    let n = truth.size()[0];
    let logits = mean_mask
        .one_hot(11)
        .permute([2, 0, 1])
        .unsqueeze(0)
        .expand([n, -1, -1, -1], false)
        .to_kind(Kind::Float);
    let counts = counts(&logits, &truth);
    let f1 = |c: usize| 100.0 * 2.0 * counts[c].0 / (counts[c].1 + counts[c].2);
    let foreground: Vec<f64> = (1..11).filter(|&c| counts[c].1 + counts[c].2 > 0.0).map(f1).collect();
    let fg_mean = foreground.iter().sum::<f64>() / foreground.len() as f64;
    let params: ParsingParams = serde_json::from_str("{}").unwrap();
    let registry = registry_with("parsing", parsing::register);
    let protocol = Protocol::LinearProbe;
    let constant = with_eval_context(&registry, protocol, train, test, &EvalOptions::seeded(1), |ctx| {
        Parsing::new(params, &TaskContext { protocol })?.constant(ctx)
    })
    .unwrap()
    .expect("parsing has a constant");
    assert!(
        (constant["fg_mean"] - fg_mean).abs() < 1e-9,
        "{} vs {fg_mean}",
        constant["fg_mean"]
    );
    // Background and skin dominate the mean mask; the small parts vanish.
    assert!(constant["f1/background"] > 50.0, "{constant:?}");
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
    parsing::register(&mut registry).unwrap();
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
