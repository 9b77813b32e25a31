//! The protocols of `visage_tasks::fit` on a learnable toy problem: the
//! class is the image's brightness pattern.

use std::sync::Arc;

use visage_core::backbone::{Backbone, BackboneContext};
use visage_core::dataset::Dataset;
use visage_core::features::Feature;
use visage_core::method::Losses;
use visage_core::metric::{Labels, Metrics};
use visage_core::rng::Rng;
use visage_core::task::{EvalContext, EvalSplit, Protocol};
use visage_core::tch::{nn, Device, Kind, Tensor};
use visage_core::{Registry, Result, Sample};
use visage_tasks::fit::{fit_with, FitHooks, Fitted, NoHooks, Recipe, Selection};
use visage_tasks::heads::{flat_dim, Head, LinearHead};
use visage_tasks::training::Training;

/// Sample `i`: class `i % 3`, an image whose left, middle or right third is
/// bright, plus noise seeded by `i` and `offset`.
struct Thirds {
    len: usize,
    offset: u64,
}

impl Dataset for Thirds {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, i: usize) -> Result<Sample> {
        let class = (i % 3) as i64;
        let mut rng = Rng::new(&[i as u64, self.offset]);
        let noise: Vec<f32> = (0..3 * 12 * 12).map(|_| 0.5 * rng.uniform() as f32).collect();
        let noise = Tensor::from_slice(&noise).view([3, 12, 12]);
        let bright = Tensor::zeros([3, 12, 12], (Kind::Float, Device::Cpu));
        let _ = bright.narrow(2, class * 4, 4).fill_(0.5);
        Ok(Sample::new(noise + bright).with_label("class", Tensor::from(class)))
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry).unwrap();
    registry
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

fn variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<_> = vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// libtorch's generator is global: the tests of this file take turns, so
/// that one's seeding does not reach into another's initialisation.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Variables by name, copied.
type Snapshot = Vec<(String, Tensor)>;

/// Runs `fit` and returns its result with the evaluated backbone's
/// variables before and after.
fn run(protocol: Protocol, training: &Training, augment: bool) -> (Fitted, Snapshot, Snapshot) {
    run_with(protocol, training, augment, &NoHooks)
}

/// [`run`] through `fit_with` and `hooks`.
fn run_with(
    protocol: Protocol,
    training: &Training,
    augment: bool,
    hooks: &dyn FitHooks,
) -> (Fitted, Snapshot, Snapshot) {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let registry = registry();
    visage_core::tch::manual_seed(0);
    let source = nn::VarStore::new(Device::Cpu);
    let backbone = resnet(&registry, &source, "backbone");
    let before = variables(&source);
    let copy = |vs: &mut nn::VarStore, prefix: &str| -> Result<Box<dyn Backbone>> {
        let copy = resnet(&registry, vs, prefix);
        let from = source.variables();
        let _guard = visage_core::tch::no_grad_guard();
        for (name, mut var) in vs.variables() {
            if let Some(rel) = name.strip_prefix(&format!("{prefix}.")) {
                var.copy_(&from[&format!("backbone.{rel}")]);
            }
        }
        Ok(copy)
    };
    let augmentations: Vec<Box<dyn visage_core::augmentation::Augmentation>> = if augment {
        vec![registry
            .build_augmentation("gaussian_noise", r#"{"std": 0.0}"#)
            .unwrap()]
    } else {
        vec![]
    };
    let feature = Feature::Output("pooled".into());
    let ctx = EvalContext {
        backbone: backbone.as_ref(),
        feature: &feature,
        copy_backbone: &copy,
        protocol,
        train: EvalSplit {
            dataset: Arc::new(Thirds { len: 96, offset: 0 }),
            augmentations: Arc::from(augmentations),
        },
        test: EvalSplit {
            dataset: Arc::new(Thirds { len: 48, offset: 1000 }),
            augmentations: Arc::from(vec![]),
        },
        metrics: &[],
        device: Device::Cpu,
        seed: 5,
        workers: 0,
        dir: None,
        resume: false,
    };
    let accuracy = registry.build_metric("accuracy", "{}").unwrap();
    let score = |outputs: &Tensor, labels: &Labels| -> Result<Metrics> { accuracy.compute(outputs, labels) };
    let loss = |outputs: &Tensor, labels: &Labels| -> Result<Tensor> {
        Ok(outputs.cross_entropy_for_logits(&labels["class"]))
    };
    let head = |path: nn::Path<'_>, shapes: &[Vec<i64>]| -> Result<Box<dyn Head>> {
        Ok(Box::new(LinearHead::new(path, flat_dim(&shapes[0]), 3)))
    };
    let recipe = Recipe {
        name: "toy head",
        labels: &["class"],
        training,
        selection: Selection {
            metric: "accuracy".into(),
            higher_is_better: true,
        },
    };
    let fitted = fit_with(&ctx, &recipe, &head, &loss, &score, hooks).unwrap();
    drop(ctx);
    (fitted, before, variables(&source))
}

fn probe() -> Training {
    Training {
        epochs: 8,
        batch_size: 16,
        optimizer: visage_tasks::training::OptimizerKind::Adam,
        lr: 0.05,
        weight_decay: 0.0,
        ..Training::default()
    }
}

#[test]
fn cached_features_train_the_same_head_as_rerunning_the_frozen_backbone() {
    let adam = probe();
    let (cached, before, after) = run(Protocol::LinearProbe, &adam, false);
    let rerun = Training {
        cache_features: false,
        ..adam.clone()
    };
    let (frozen, _, _) = run(Protocol::LinearProbe, &rerun, false);
    let diff = (&cached.outputs - &frozen.outputs).abs().max().double_value(&[]);
    assert!(diff < 1e-3, "cached and re-run heads differ by {diff}");
    assert_eq!(cached.metrics["accuracy"], frozen.metrics["accuracy"]);
    assert!(cached.metrics["accuracy"] > 80.0, "{:?}", cached.metrics);
    // The frozen backbone is untouched.
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(a.equal(b), "{name} changed under linear_probe");
    }
    // The reported value is the last epoch's, computed from the outputs.
    let argmax = cached.outputs.argmax(1, false);
    let hits = argmax
        .eq_tensor(&cached.labels["class"])
        .to_kind(Kind::Double)
        .mean(Kind::Double);
    assert!((cached.metrics["accuracy"] - 100.0 * hits.double_value(&[])).abs() < 1e-9);
    assert_eq!(cached.outputs.size(), [48, 3]);
    // With a train augmentation the frozen backbone runs every batch; the
    // no-op noise keeps the result.
    let (augmented, _, _) = run(Protocol::LinearProbe, &adam, true);
    assert_eq!(augmented.metrics["accuracy"], cached.metrics["accuracy"]);
}

#[test]
fn fine_tuning_trains_its_own_copy_and_learns_the_task() {
    let training = Training {
        epochs: 6,
        batch_size: 16,
        lr: 0.01,
        backbone_lr: 0.01,
        ..Training::default()
    };
    let (tuned, before, after) = run(Protocol::FineTune, &training, false);
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(
            a.equal(b),
            "{name}: fine-tuning changed the evaluated backbone, not a copy"
        );
    }
    assert!(tuned.metrics["accuracy"] > 80.0, "{:?}", tuned.metrics);
}

#[test]
fn selections_are_reported_under_their_own_names_beside_the_last_epoch() {
    let training = Training {
        validation: 0.25,
        best_on_test: true,
        ..probe()
    };
    let (fitted, _, _) = run(Protocol::LinearProbe, &training, false);
    let m = &fitted.metrics;
    for key in [
        "accuracy",
        "best_on_test/accuracy",
        "best_on_test/epoch",
        "selected_by_val/accuracy",
        "selected_by_val/epoch",
    ] {
        assert!(m.contains_key(key), "{key} missing from {m:?}");
    }
    assert!(m["best_on_test/accuracy"] >= m["accuracy"]);
    assert!(m["best_on_test/accuracy"] >= m["selected_by_val/accuracy"]);
    assert!((1.0..=8.0).contains(&m["best_on_test/epoch"]));
    // Without selection, only the last epoch.
    let (plain, _, _) = run(Protocol::LinearProbe, &probe(), false);
    assert_eq!(plain.metrics.keys().collect::<Vec<_>>(), ["accuracy"]);
}

/// Records the steps and epochs it is called at; blanks every image when
/// `blank`; adds a zero loss term.
#[derive(Default)]
struct Recorder {
    blank: bool,
    steps: std::cell::RefCell<Vec<u64>>,
    epochs: std::cell::RefCell<Vec<u64>>,
}

impl FitHooks for Recorder {
    fn batch(&self, batch: &visage_core::Batch, step: u64) -> Result<Option<visage_core::Batch>> {
        self.steps.borrow_mut().push(step);
        Ok(self.blank.then(|| visage_core::Batch {
            images: batch.images.zeros_like(),
            labels: batch
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.shallow_clone()))
                .collect(),
            views: vec![],
        }))
    }

    fn losses(&self, tuned: &dyn Backbone, batch: &visage_core::Batch, epoch: u64) -> Result<Losses> {
        self.epochs.borrow_mut().push(epoch);
        let pooled = tuned.forward(&batch.images, true)?["pooled"].sum(Kind::Float) * 0.0;
        let mut losses = Losses::default();
        losses.push("zero", pooled);
        Ok(losses)
    }
}

#[test]
fn hooks_see_every_fine_tuning_step_and_change_what_it_learns() {
    let training = Training {
        epochs: 2,
        batch_size: 16,
        lr: 0.01,
        backbone_lr: 0.01,
        ..Training::default()
    };
    // 96 training images in batches of 16: 6 steps an epoch.
    let recorder = Recorder::default();
    let (tuned, _, _) = run_with(Protocol::FineTune, &training, false, &recorder);
    assert_eq!(*recorder.steps.borrow(), (0..12).collect::<Vec<u64>>());
    assert_eq!(*recorder.epochs.borrow(), [[0u64; 6], [1; 6]].concat());
    assert!(tuned.metrics["accuracy"].is_finite());
    // Linear probing trains no backbone: no hook is called.
    let idle = Recorder::default();
    let _ = run_with(Protocol::LinearProbe, &probe(), false, &idle);
    assert!(idle.steps.borrow().is_empty() && idle.epochs.borrow().is_empty());
    // Blank training images teach nothing: the three balanced classes of
    // the test split are guessed as one, a third right.
    let blank = Recorder {
        blank: true,
        ..Default::default()
    };
    let long = Training { epochs: 6, ..training };
    let (blind, _, _) = run_with(Protocol::FineTune, &long, false, &blank);
    let (seeing, _, _) = run(Protocol::FineTune, &long, false);
    assert!(blind.metrics["accuracy"] < 40.0, "{:?}", blind.metrics);
    assert!(seeing.metrics["accuracy"] > 80.0, "{:?}", seeing.metrics);
}
