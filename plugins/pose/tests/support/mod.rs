//! What the task tests share: a small ResNet, its trainable copy, tiny
//! synthface splits and an evaluation context over them.
#![allow(dead_code)]

pub mod experiment;

use std::sync::Arc;

use synthface::dataset::SynthFace;
use synthface::SynthFaceParams;
use visage_core::backbone::{Backbone, BackboneContext};
use visage_core::dataset::{Dataset, DatasetContext, Split};
use visage_core::features::Feature;
use visage_core::metric::Metrics;
use visage_core::task::{EvalContext, EvalSplit, Protocol, TaskContext};
use visage_core::tch::{nn, Device};
use visage_core::{Registry, Result};

/// The builtin components and the plugin's.
pub fn registry(register: fn(&mut Registry) -> Result<()>) -> Registry {
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry).unwrap();
    registry.set_plugin("under_test");
    register(&mut registry).unwrap();
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

/// A tiny synthface split: 32 px, `identities` train and 2 test identities,
/// `per_identity` samples each.
pub fn synthface(split: Split, identities: usize, per_identity: usize) -> Arc<dyn Dataset> {
    let params = SynthFaceParams {
        identities: identities + 2,
        test_identities: 2,
        samples_per_identity: per_identity,
        resolution: 32,
        ..SynthFaceParams::default()
    };
    Arc::new(SynthFace::new(params, &DatasetContext { split, seed: 0 }).unwrap())
}

/// libtorch's generator is global: the tests of a file take turns.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Builds task `name` with `params` and evaluates a seeded random ResNet
/// (width 4) on `train` and `test` under `protocol`.
pub fn evaluate(
    registry: &Registry,
    name: &str,
    params: &str,
    protocol: Protocol,
    train: Arc<dyn Dataset>,
    test: Arc<dyn Dataset>,
) -> Result<Metrics> {
    with_context(registry, protocol, train, test, |ctx| {
        let mut task = registry.build_task(name, params, &TaskContext { protocol })?;
        task.evaluate(ctx)
    })
}

/// Calls `f` with an evaluation context of a seeded random ResNet (width
/// 4) on `train` and `test` under `protocol`.
pub fn with_context<R>(
    registry: &Registry,
    protocol: Protocol,
    train: Arc<dyn Dataset>,
    test: Arc<dyn Dataset>,
    f: impl FnOnce(&EvalContext<'_>) -> R,
) -> R {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    visage_core::tch::manual_seed(0);
    let source = nn::VarStore::new(Device::Cpu);
    let backbone = resnet(registry, &source, "backbone");
    let copy = |vs: &mut nn::VarStore, prefix: &str| -> Result<Box<dyn Backbone>> {
        let copy = resnet(registry, vs, prefix);
        let from = source.variables();
        let _guard = visage_core::tch::no_grad_guard();
        for (name, mut var) in vs.variables() {
            if let Some(rel) = name.strip_prefix(&format!("{prefix}.")) {
                var.copy_(&from[&format!("backbone.{rel}")]);
            }
        }
        Ok(copy)
    };
    let feature = Feature::Output("pooled".into());
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
        seed: 3,
        workers: 0,
        dir: None,
        resume: false,
    };
    f(&ctx)
}
