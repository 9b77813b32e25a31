//! An evaluation context over a seeded random tiny ResNet, as the task
//! tests build it to run a task in process.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use visage_core::backbone::{Backbone, BackboneContext};
use visage_core::dataset::Dataset;
use visage_core::features::Feature;
use visage_core::metric::Metrics;
use visage_core::task::{EvalContext, EvalSplit, Protocol, Task, TaskContext};
use visage_core::tch::{self, nn, Device, Tensor};
use visage_core::{Error, Registry, Result};

/// The backbone every task test evaluates: a ResNet of width 4 with the
/// small stem (stride 1), on 3 channels.
pub const BACKBONE: (&str, &str) = ("resnet", r#"{"width": 4, "small_stem": true}"#);

/// The seed of libtorch's generator when the random backbone is built.
pub const BACKBONE_SEED: i64 = 0;

/// libtorch's generator is global: the evaluations of a test binary take
/// turns ([`with_eval_context`] holds it).
pub static SERIAL: Mutex<()> = Mutex::new(());

/// A registry with the builtin components and, under the plugin name
/// `plugin`, the components `register` adds.
///
/// # Panics
/// When a registration fails (the plugin's own bug, which the test names).
pub fn registry_with(plugin: &str, register: fn(&mut Registry) -> Result<()>) -> Registry {
    let mut registry = Registry::new();
    if let Err(e) = visage_core::builtin::register(&mut registry) {
        panic!("the builtin components do not register: {e}");
    }
    registry.set_plugin(plugin);
    if let Err(e) = register(&mut registry) {
        panic!("plugin `{plugin}` does not register: {e}");
    }
    registry
}

/// What an evaluation context holds besides the protocol and the splits.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// What the task's head reads (default: `pooled`).
    pub feature: Feature,
    /// The evaluation's seed ([`EvalContext::seed`]; default 0).
    pub seed: u64,
    /// The evaluation's folder ([`EvalContext::dir`]; default `None`:
    /// nothing is written).
    pub dir: Option<PathBuf>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            feature: Feature::Output("pooled".into()),
            seed: 0,
            dir: None,
        }
    }
}

impl EvalOptions {
    /// The defaults with the evaluation seed `seed`.
    pub fn seeded(seed: u64) -> Self {
        EvalOptions {
            seed,
            ..EvalOptions::default()
        }
    }
}

/// Builds [`BACKBONE`] from `registry` in `vs` under `prefix`.
fn build_backbone(registry: &Registry, vs: &nn::VarStore, prefix: &str) -> Result<Box<dyn Backbone>> {
    let ctx = BackboneContext {
        vs: vs.root() / prefix,
        in_channels: 3,
    };
    registry.build_backbone(BACKBONE.0, BACKBONE.1, &ctx)
}

/// A trainable copy of the backbone in `source` (under `backbone`): built
/// in `vs` under `prefix`, then given the source's weights.
fn copy_backbone(
    registry: &Registry,
    source: &nn::VarStore,
    vs: &mut nn::VarStore,
    prefix: &str,
) -> Result<Box<dyn Backbone>> {
    let copy = build_backbone(registry, vs, prefix)?;
    let from = source.variables();
    let _guard = tch::no_grad_guard();
    for (name, mut var) in vs.variables() {
        if let Some(rel) = name.strip_prefix(&format!("{prefix}.")) {
            let original = from.get(&format!("backbone.{rel}")).ok_or_else(|| {
                Error::msg(format!(
                    "copy of the backbone: `{name}` has no original `backbone.{rel}`"
                ))
            })?;
            var.copy_(original);
        }
    }
    Ok(copy)
}

/// The values of the trainable variables of `vs`.
fn snapshot(vs: &nn::VarStore) -> Vec<Tensor> {
    vs.trainable_variables().iter().map(Tensor::copy).collect()
}

/// Calls `f` with an evaluation context over a random [`BACKBONE`] (built
/// from `registry` after seeding libtorch with [`BACKBONE_SEED`]) on CPU,
/// `train` and `test` without augmentations, under `protocol`, with
/// `options`; its `copy_backbone` builds a trainable copy with the same
/// weights. Holds [`SERIAL`] throughout.
///
/// # Panics
/// When the backbone cannot be built, and when `f` changed the evaluated
/// backbone's weights: an evaluation, fine-tuning included, must leave
/// the backbone it was given as it was.
pub fn with_eval_context<R>(
    registry: &Registry,
    protocol: Protocol,
    train: Arc<dyn Dataset>,
    test: Arc<dyn Dataset>,
    options: &EvalOptions,
    f: impl FnOnce(&EvalContext<'_>) -> R,
) -> R {
    let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    tch::manual_seed(BACKBONE_SEED);
    let source = nn::VarStore::new(Device::Cpu);
    let backbone = match build_backbone(registry, &source, "backbone") {
        Ok(backbone) => backbone,
        Err(e) => panic!("the test backbone does not build: {e}"),
    };
    let before = snapshot(&source);
    let copy = |vs: &mut nn::VarStore, prefix: &str| copy_backbone(registry, &source, vs, prefix);
    let ctx = EvalContext {
        backbone: backbone.as_ref(),
        feature: &options.feature,
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
        seed: options.seed,
        workers: 0,
        dir: options.dir.clone(),
        resume: false,
    };
    let out = f(&ctx);
    let unchanged = before.iter().zip(snapshot(&source)).all(|(a, b)| a.equal(&b));
    assert!(unchanged, "the evaluated backbone changed");
    out
}

/// A plugin's task under test: a registry with the plugin's components,
/// the task's name and the evaluation options.
pub struct TaskUnderTest {
    /// The builtin components and the plugin's.
    pub registry: Registry,
    /// The task's registered name.
    pub name: String,
    /// How its evaluations are set up.
    pub options: EvalOptions,
}

impl TaskUnderTest {
    /// Task `name` of the plugin of that name, whose components `register`
    /// adds ([`registry_with`]); default options.
    pub fn new(name: &str, register: fn(&mut Registry) -> Result<()>) -> Self {
        TaskUnderTest {
            registry: registry_with(name, register),
            name: name.into(),
            options: EvalOptions::default(),
        }
    }

    /// The same task evaluated with `options`.
    pub fn with_options(self, options: EvalOptions) -> Self {
        TaskUnderTest { options, ..self }
    }

    /// Builds the task with `params` for `protocol`.
    pub fn build(&self, params: &str, protocol: Protocol) -> Result<Box<dyn Task>> {
        self.registry.build_task(&self.name, params, &TaskContext { protocol })
    }

    /// Builds the task with `params` and evaluates it on `train` and `test`
    /// under `protocol`, in the context of [`with_eval_context`].
    pub fn evaluate(
        &self,
        params: &str,
        protocol: Protocol,
        train: Arc<dyn Dataset>,
        test: Arc<dyn Dataset>,
    ) -> Result<Metrics> {
        self.with_context(protocol, train, test, |ctx| self.build(params, protocol)?.evaluate(ctx))
    }

    /// [`with_eval_context`] with this task's registry and options.
    pub fn with_context<R>(
        &self,
        protocol: Protocol,
        train: Arc<dyn Dataset>,
        test: Arc<dyn Dataset>,
        f: impl FnOnce(&EvalContext<'_>) -> R,
    ) -> R {
        with_eval_context(&self.registry, protocol, train, test, &self.options, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TinySynthFace;

    fn builtin(_: &mut Registry) -> Result<()> {
        Ok(())
    }

    #[test]
    fn the_copy_has_the_weights_of_the_evaluated_backbone_and_trains_alone() {
        let registry = registry_with("none", builtin);
        let (train, test) = TinySynthFace::new(1, 1).splits();
        let options = EvalOptions::seeded(5);
        with_eval_context(&registry, Protocol::FineTune, train, test, &options, |ctx| {
            assert_eq!((ctx.seed, ctx.protocol, ctx.workers), (5, Protocol::FineTune, 0));
            assert_eq!(ctx.feature, &Feature::Output("pooled".into()));
            let x = ctx.test.dataset.get(0).unwrap().image.unsqueeze(0);
            let pooled = |b: &dyn Backbone| b.forward(&x, false).unwrap()["pooled"].copy();
            let mut vs = nn::VarStore::new(Device::Cpu);
            let copy = (ctx.copy_backbone)(&mut vs, "tuned").unwrap();
            assert!(pooled(copy.as_ref()).equal(&pooled(ctx.backbone)));
            // Training the copy leaves the evaluated backbone alone.
            let _guard = tch::no_grad_guard();
            for mut var in vs.trainable_variables() {
                let _ = var.fill_(1.0);
            }
            assert!(!pooled(copy.as_ref()).equal(&pooled(ctx.backbone)));
        });
    }
}
