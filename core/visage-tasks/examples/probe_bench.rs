//! The linear probe's cached features against what the papers' code does
//! (the frozen backbone re-run on every batch of every epoch), on a split
//! the size of RAF-DB's: `bench/probe` runs it and prints the ratio.
//!
//! ```text
//! probe_bench [TRAIN] [TEST] [SIZE] [EPOCHS] [WIDTH]   # 12000 3000 100 3 32
//! ```
//!
//! Each protocol path is timed at 1 and at EPOCHS epochs; the difference
//! gives its cost per epoch and its fixed cost (the cached path's one
//! extraction; both paths' final scoring), from which the ratio at PCL's
//! 300 epochs follows. Prints one JSON line.

use std::sync::Arc;
use std::time::Instant;

use visage_core::backbone::{Backbone, BackboneContext};
use visage_core::dataset::Dataset;
use visage_core::features::Feature;
use visage_core::metric::{Labels, Metrics};
use visage_core::rng::Rng;
use visage_core::task::{EvalContext, EvalSplit, Protocol};
use visage_core::tch::{nn, Device, Tensor};
use visage_core::{Registry, Result, Sample};
use visage_tasks::fit::{fit, Recipe, Selection};
use visage_tasks::heads::{flat_dim, Head, LinearHead};
use visage_tasks::training::{OptimizerKind, Training};

/// Seven classes of noisy images, made on the fly (cheaper than decoding
/// a JPEG, so the measured ratio understates the papers' real cost).
struct Faces {
    len: usize,
    size: i64,
    offset: u64,
}

impl Dataset for Faces {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, i: usize) -> Result<Sample> {
        let mut rng = Rng::new(&[i as u64, self.offset]);
        let class = (i % 7) as i64;
        let n = (3 * self.size * self.size) as usize;
        let pixels: Vec<f32> = (0..n).map(|_| rng.uniform() as f32).collect();
        let image = Tensor::from_slice(&pixels).view([3, self.size, self.size]) * 0.5 + class as f64 / 14.0;
        Ok(Sample::new(image).with_label("class", Tensor::from(class)))
    }
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> Result<()> {
    let (train, test, size, epochs, width) = (arg(1, 12000), arg(2, 3000), arg(3, 100), arg(4, 3), arg(5, 32));
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry)?;
    let vs = nn::VarStore::new(Device::Cpu);
    let ctx = BackboneContext {
        vs: vs.root() / "backbone",
        in_channels: 3,
    };
    let params = format!(r#"{{"width": {width}}}"#);
    let backbone = registry.build_backbone("resnet", &params, &ctx)?;
    let no_copy = |_: &mut nn::VarStore, _: &str| -> Result<Box<dyn Backbone>> { unreachable!("linear probe") };
    let feature = Feature::Output("pooled".into());
    let eval = EvalContext {
        backbone: backbone.as_ref(),
        feature: &feature,
        copy_backbone: &no_copy,
        protocol: Protocol::LinearProbe,
        train: EvalSplit {
            dataset: Arc::new(Faces {
                len: train,
                size: size as i64,
                offset: 0,
            }),
            augmentations: Arc::from(vec![]),
        },
        test: EvalSplit {
            dataset: Arc::new(Faces {
                len: test,
                size: size as i64,
                offset: 1,
            }),
            augmentations: Arc::from(vec![]),
        },
        metrics: &[],
        device: Device::Cpu,
        seed: 0,
        workers: 1,
        dir: None,
        resume: false,
    };
    let accuracy = visage_core::builtin::Accuracy::of("class");
    let score = |o: &Tensor, l: &Labels| -> Result<Metrics> { visage_core::metric::Metric::compute(&accuracy, o, l) };
    let loss = |o: &Tensor, l: &Labels| -> Result<Tensor> { Ok(o.cross_entropy_for_logits(&l["class"])) };
    let head = |p: nn::Path<'_>, shapes: &[Vec<i64>]| -> Result<Box<dyn Head>> {
        Ok(Box::new(LinearHead::new(p, flat_dim(&shapes[0]), 7)))
    };
    // PCL's probe recipe: Adam lr 1e-2, batch 256, cosine.
    let time = |epochs: usize, cache_features: bool| -> Result<(f64, f64)> {
        let training = Training {
            epochs,
            batch_size: 256,
            optimizer: OptimizerKind::Adam,
            lr: 1e-2,
            weight_decay: 0.0,
            cache_features,
            ..Training::default()
        };
        let recipe = Recipe {
            name: "probe bench",
            labels: &["class"],
            training: &training,
            selection: Selection {
                metric: "accuracy".into(),
                higher_is_better: true,
            },
        };
        let started = Instant::now();
        let fitted = fit(&eval, &recipe, &head, &loss, &score)?;
        Ok((started.elapsed().as_secs_f64(), fitted.metrics["accuracy"]))
    };
    let (cached_1, _) = time(1, true)?;
    let (cached_n, cached_accuracy) = time(epochs, true)?;
    let (rerun_1, _) = time(1, false)?;
    let (rerun_n, rerun_accuracy) = time(epochs, false)?;
    let per_epoch = |one: f64, n: f64| ((n - one) / (epochs as f64 - 1.0)).max(0.0);
    let (cached_epoch, rerun_epoch) = (per_epoch(cached_1, cached_n), per_epoch(rerun_1, rerun_n));
    let (cached_fixed, rerun_fixed) = (cached_1 - cached_epoch, rerun_1 - rerun_epoch);
    let at = |e: f64| (rerun_fixed + e * rerun_epoch) / (cached_fixed + e * cached_epoch);
    println!(
        "{{\"train\": {train}, \"test\": {test}, \"size\": {size}, \"width\": {width}, \"epochs\": {epochs}, \
         \"cached_s\": {cached_n:.2}, \"rerun_s\": {rerun_n:.2}, \"ratio\": {:.2}, \
         \"cached_epoch_s\": {cached_epoch:.3}, \"rerun_epoch_s\": {rerun_epoch:.3}, \
         \"cached_fixed_s\": {cached_fixed:.2}, \"rerun_fixed_s\": {rerun_fixed:.2}, \"ratio_at_300_epochs\": {:.1}, \
         \"cached_accuracy\": {cached_accuracy:.2}, \"rerun_accuracy\": {rerun_accuracy:.2}}}",
        rerun_n / cached_n,
        at(300.0)
    );
    Ok(())
}
