//! The Visage side of `bench/lafs`: images/s of full LAFS iterations
//! (method `lafs`: the frozen landmark network's points on every view,
//! jittered; the student fViT and DINO head on the 2 global views with
//! every point and the N local views with a random subset; the EMA teacher
//! on the global views; the DINO loss with centring; backward, gradient
//! clipping at 3, AdamW step, EMA update, centre update), built through the
//! registry as the runner builds them and driven by the training engine
//! itself ([`Trainer::fit`]), so the time is what `runner` spends per step.
//! `bench/lafs.py` is the PyTorch side.
//!
//! ```text
//! cargo run --release -p visage-plugin-lafs --example lafs_bench -- \
//!     PRESET BATCH STEPS THREADS
//! ```
//!
//! PRESET is `paper` (fViT-B at 112 px: 196 landmark tokens of 8 x 8 px,
//! width 768, 12 blocks of 11 heads of 64, MLP 2048, LAFS's attention
//! scale, landmark network width 1; head 2048 -> 256 -> 100000; 8 local
//! views of 36 points drawn with replacement, jitter 5 px;
//! experiments/paper/lafs_base.yaml) or `default` (the fViT of
//! experiments/lafs_fr.yaml, which lafs_fewshot.yaml extends: 32 px, 68
//! tokens of 4 x 4 px, width 64, 4 blocks of 4 heads of 16, MLP 128,
//! landmark network width 0.25; head 256 -> 64 -> 1024; 4 local views of
//! 16 distinct points, jitter 1.5 px). Without dropout and drop path (the
//! PyTorch reference has none), and with the last layer trained from the
//! first step (`freeze_last_layer_steps: 0`), so every iteration is a full
//! one. Random images (one batch, reused); one warm-up iteration, then
//! STEPS timed ones; prints one JSON line.

use std::time::Instant;

use serde_json::{json, Value};
use tch::{nn, Device, Kind, Tensor};
use visage_core::backbone::{Backbone, BackboneContext};
use visage_core::method::{Method, MethodContext};
use visage_core::optim::{BackboneLayers, Ema};
use visage_core::optimizer::OptimizerContext;
use visage_core::scalars::Scalars;
use visage_core::teacher::{BackboneSpec, Teachers};
use visage_core::train::{Pretext, TrainConfig, Trainer};
use visage_core::{Batch, Error, Registry, Result};

/// The sizes of one benchmark case.
struct Preset {
    /// The `fvit` parameters.
    fvit: Value,
    /// The image side.
    side: i64,
    /// Local views per image.
    local_views: usize,
    /// The `lafs` parameters.
    method: Value,
    /// AdamW's learning rate in the experiment.
    lr: f64,
}

fn preset(name: &str) -> Result<Preset> {
    match name {
        "paper" => Ok(Preset {
            fvit: json!({"image_size": 112, "patch": 8, "landmarks": 196, "dim": 768, "depth": 12, "heads": 11,
                         "head_dim": 64, "mlp": 2048, "landmark_width": 1.0, "attention_scale": "dim",
                         "train_landmarks": true}),
            side: 112,
            local_views: 8,
            method: json!({"head": {"hidden": 2048, "bottleneck": 256, "out_dim": 100000},
                           "student_temperature": 0.1, "teacher_temperature": 0.04, "center_momentum": 0.9,
                           "points": "network", "jitter": 5.0, "local_tokens": 36,
                           "subset_with_replacement": true}),
            lr: 0.0003203125,
        }),
        "default" => Ok(Preset {
            fvit: json!({"image_size": 32, "patch": 4, "landmarks": 68, "dim": 64, "depth": 4, "heads": 4,
                         "head_dim": 16, "mlp": 128, "landmark_width": 0.25, "train_landmarks": true,
                         "token_init_std": 0.02}),
            side: 32,
            local_views: 4,
            method: json!({"head": {"hidden": 256, "bottleneck": 64, "out_dim": 1024},
                           "teacher_temperature": 0.02, "points": "network", "jitter": 1.5,
                           "local_tokens": 16}),
            lr: 0.0002,
        }),
        other => Err(Error::msg(format!(
            "unknown preset `{other}`: expected paper or default"
        ))),
    }
}

/// A batch of random images with the `views` views `lafs` reads.
fn random_batch(batch: i64, side: i64, views: usize) -> Batch {
    let images = || Tensor::rand([batch, 3, side, side], (Kind::Float, Device::Cpu));
    Batch {
        images: images(),
        labels: Default::default(),
        views: (0..views)
            .map(|_| Batch {
                images: images(),
                labels: Default::default(),
                views: vec![],
            })
            .collect(),
    }
}
struct Args {
    preset: String,
    batch: usize,
    steps: u64,
    threads: i32,
}

fn parse() -> Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || Error::msg("usage: lafs_bench PRESET BATCH STEPS THREADS");
    let num = |i: usize| -> Result<u64> { args.get(i).ok_or_else(usage)?.parse().map_err(|_| usage()) };
    if args.len() != 4 {
        return Err(usage());
    }
    Ok(Args {
        preset: args[0].clone(),
        batch: num(1)? as usize,
        steps: num(2)?,
        threads: num(3)? as i32,
    })
}

/// The `lafs` method with its momentum teacher, and the EMA updates it
/// asked for.
fn method(
    registry: &Registry,
    vs: &nn::VarStore,
    backbone: &dyn Backbone,
    p: &Preset,
) -> Result<(Box<dyn Method>, Vec<Ema>)> {
    let spec = BackboneSpec {
        name: "fvit".into(),
        params: p.fvit.clone(),
    };
    let teachers = Teachers::new(registry, vs, spec, "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
        views: vec![2, p.local_views],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let method = registry.build_method("lafs", &p.method.to_string(), &ctx)?;
    drop(ctx);
    Ok((method, teachers.into_emas()))
}

fn main() -> Result<()> {
    let args = parse()?;
    let p = preset(&args.preset)?;
    tch::set_num_threads(args.threads);
    tch::manual_seed(0);
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry)?;
    lafs::register(&mut registry)?;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let backbone = registry.build_backbone(
        "fvit",
        &p.fvit.to_string(),
        &BackboneContext {
            vs: vs.root() / "backbone",
            in_channels: 3,
        },
    )?;
    let (method, emas) = method(&registry, &vs, backbone.as_ref(), &p)?;
    visage_core::method::check_views("lafs", &method.views(), &[2, p.local_views])?;
    let total = 1 + args.steps;
    let optimizer = registry.build_optimizer(
        "adamw",
        &json!({"lr": p.lr, "weight_decay": 0.04}).to_string(),
        &OptimizerContext {
            vs: &vs,
            total_steps: total,
            backbone: Some(BackboneLayers {
                prefix: "backbone",
                layers: backbone.layers(),
            }),
        },
    )?;
    let scheduler = registry.build_scheduler("constant", "{}")?;
    let config = TrainConfig {
        steps: total,
        clip_grad_norm: Some(3.0),
        log_every: u64::MAX,
        label: "lafs_bench".into(),
        ..TrainConfig::default()
    };
    let batch = random_batch(args.batch as i64, p.side, 2 + p.local_views);
    let mut data = std::iter::repeat_with(move || Ok(batch.shallow_clone()));
    let mut pretext = Pretext::new(method, backbone.as_ref());
    let mut trainer = Trainer::new(config, &mut vs, optimizer, scheduler).with_emas(emas);
    // The clock starts when the warm-up iteration has finished.
    let mut start = None;
    let mut monitor = |completed: u64| -> Result<Vec<(String, f64)>> {
        if completed == 1 {
            start = Some(Instant::now());
        }
        Ok(vec![])
    };
    trainer.fit(&mut pretext, &mut data, &mut monitor)?;
    let seconds = start.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
    println!(
        "{}",
        json!({
            "side": "visage", "preset": args.preset, "mode": "tensors", "batch": args.batch,
            "steps": args.steps, "threads": args.threads, "seconds": (seconds * 1000.0).round() / 1000.0,
            "images_per_s": (args.batch as u64 * args.steps) as f64 / seconds,
        })
    );
    Ok(())
}
