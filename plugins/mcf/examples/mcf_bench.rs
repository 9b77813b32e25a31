//! The Visage side of `bench/mcf`: images/s of full MCF iterations (mode
//! `mcf`: the online ViT on the visible 25% of the patches, MAE's decoder,
//! the frozen MoCo v3-style teacher on the pseudo image and the original,
//! the EMA target on a second mask; backward, AdamW step, EMA update),
//! built through the registry as the runner builds them and driven by the
//! training engine itself ([`Trainer::fit`]), so the time is what `runner`
//! spends per step. `bench/mcf.py` is the PyTorch side.
//!
//! ```text
//! cargo run --release -p visage-plugin-mcf --example mcf_bench -- \
//!     PRESET BATCH STEPS THREADS [masking]
//! ```
//!
//! PRESET is `paper` (ViT-B/16 at 224, decoder 512 wide and 8 deep with
//! 16 heads, projector and predictor 4096 -> 256, a ViT-B teacher compared
//! at blocks 3, 6, 9, 12; experiments/paper/mcf_base.yaml) or `default`
//! (the ViT of experiments/mcf_alignment.yaml, which the other mcf_*.yaml
//! extend: width 192, depth 4, 3 heads, 64 px, patch 8; decoder 128 x 2
//! with 4 heads; 512 -> 128; the same ViT as teacher, all four blocks).
//! Both mask 75%. The teacher's random weights are written once to a
//! safetensors file in the temporary folder and loaded as
//! `teacher: {weights: ...}` (a pretrained teacher costs the same).
//!
//! With `masking`, no method: the online ViT's forward and backward on the
//! visible tokens only (as MCF runs it) against the same ViT on all tokens,
//! STEPS of each after one warm-up, and their ratio.
//!
//! Random images (one batch, reused); one warm-up iteration, then STEPS
//! timed ones; prints one JSON line.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};
use tch::{nn, Device, Kind, Tensor};
use visage_core::backbone::{feature, Backbone, BackboneContext};
use visage_core::method::{Method, MethodContext};
use visage_core::nn::vit::{random_keep, CLS, TOKENS};
use visage_core::optim::BackboneLayers;
use visage_core::optimizer::OptimizerContext;
use visage_core::scalars::Scalars;
use visage_core::teacher::{BackboneSpec, Teachers};
use visage_core::train::{Pretext, TrainConfig, Trainer};
use visage_core::{Batch, Error, Registry, Result};

/// The sizes of one benchmark case.
struct Preset {
    /// The `vit` parameters of the online encoder, the target and the teacher.
    vit: Value,
    /// The image side.
    side: i64,
    /// Patches per image.
    patches: i64,
    /// The `mcf` parameters other than the teacher.
    method: Value,
    /// AdamW's learning rate in the experiment.
    lr: f64,
}

/// MCF's mask ratio (the paper's, and the experiments').
const MASK_RATIO: f64 = 0.75;

fn preset(name: &str) -> Result<Preset> {
    match name {
        "paper" => Ok(Preset {
            vit: json!({"size": "base", "image_size": 224, "patch": 16}),
            side: 224,
            patches: 196,
            method: json!({"mim_blocks": [3, 6, 9, 12], "mim_weight": 1000.0, "mask_ratio": MASK_RATIO,
                           "decoder_width": 512, "decoder_depth": 8, "decoder_heads": 16,
                           "hidden": 4096, "dim": 256, "temperature": 0.2, "momentum": 0.99}),
            lr: 0.0024,
        }),
        "default" => Ok(Preset {
            vit: json!({"width": 192, "depth": 4, "heads": 3, "image_size": 64, "patch": 8}),
            side: 64,
            patches: 64,
            method: json!({"mask_ratio": MASK_RATIO, "decoder_width": 128, "decoder_depth": 2,
                           "decoder_heads": 4, "hidden": 512, "dim": 128}),
            lr: 0.001,
        }),
        other => Err(Error::msg(format!(
            "unknown preset `{other}`: expected paper or default"
        ))),
    }
}

/// A batch of random images with the one view `mcf` reads.
fn random_batch(batch: i64, side: i64) -> Batch {
    let images = || Tensor::rand([batch, 3, side, side], (Kind::Float, Device::Cpu));
    Batch {
        images: images(),
        labels: Default::default(),
        views: vec![Batch {
            images: images(),
            labels: Default::default(),
            views: vec![],
        }],
    }
}
fn build_vit(registry: &Registry, vs: &nn::Path, params: &Value) -> Result<Box<dyn Backbone>> {
    let ctx = BackboneContext {
        vs: vs.clone(),
        in_channels: 3,
    };
    registry.build_backbone("vit", &params.to_string(), &ctx)
}

/// Writes a randomly initialised ViT of `params` (the teacher's weights,
/// timm's names) to the temporary folder and returns the file.
fn teacher_file(registry: &Registry, preset: &str, params: &Value) -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("visage-mcf-bench-teacher-{preset}.safetensors"));
    let vs = nn::VarStore::new(Device::Cpu);
    build_vit(registry, &vs.root(), params)?;
    vs.save(&path)
        .map_err(|e| Error::msg(format!("writing {}: {e}", path.display())))?;
    Ok(path)
}

struct Args {
    preset: String,
    batch: usize,
    steps: u64,
    threads: i32,
    masking: bool,
}

fn parse() -> Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || Error::msg("usage: mcf_bench PRESET BATCH STEPS THREADS [masking]");
    let num = |i: usize| -> Result<u64> { args.get(i).ok_or_else(usage)?.parse().map_err(|_| usage()) };
    let masking = match args.get(4).map(String::as_str) {
        Some("masking") => true,
        None => false,
        Some(_) => return Err(usage()),
    };
    Ok(Args {
        preset: args.first().ok_or_else(usage)?.clone(),
        batch: num(1)? as usize,
        steps: num(2)?,
        threads: num(3)? as i32,
        masking,
    })
}

/// Seconds per forward and backward of the ViT on `keep`'s tokens (all
/// tokens without it): one warm-up, then `steps`.
fn time_encoder(
    vs: &nn::VarStore,
    vit: &dyn Backbone,
    images: &Tensor,
    keep: Option<&Tensor>,
    steps: u64,
) -> Result<f64> {
    let masking = vit
        .token_masking()
        .ok_or_else(|| Error::msg("the vit backbone cannot mask tokens"))?;
    let once = || -> Result<()> {
        for var in vs.trainable_variables() {
            var.shallow_clone().zero_grad();
        }
        let features = match keep {
            Some(keep) => masking.forward_masked(images, keep, true)?,
            None => vit.forward(images, true)?,
        };
        (feature(&features, CLS)?.mean(None) + feature(&features, TOKENS)?.mean(None)).backward();
        Ok(())
    };
    once()?;
    let start = Instant::now();
    for _ in 0..steps {
        once()?;
    }
    Ok(start.elapsed().as_secs_f64() / steps as f64)
}

/// The `masking` case: the online encoder on the visible tokens against all.
fn masking_case(registry: &Registry, args: &Args, p: &Preset) -> Result<Value> {
    let vs = nn::VarStore::new(Device::Cpu);
    let vit = build_vit(registry, &(vs.root() / "backbone"), &p.vit)?;
    let images = Tensor::rand([args.batch as i64, 3, p.side, p.side], (Kind::Float, Device::Cpu));
    let kept = ((p.patches as f64 * (1.0 - MASK_RATIO)) as i64).max(1);
    let keep = random_keep(args.batch as i64, p.patches, kept, Device::Cpu);
    let visible = time_encoder(&vs, vit.as_ref(), &images, Some(&keep), args.steps)?;
    let all = time_encoder(&vs, vit.as_ref(), &images, None, args.steps)?;
    let rate = |seconds: f64| args.batch as f64 / seconds;
    Ok(json!({
        "side": "visage", "preset": args.preset, "mode": "masking", "batch": args.batch, "steps": args.steps,
        "threads": args.threads, "tokens_visible": kept + 1, "tokens_all": p.patches + 1,
        "visible_images_per_s": rate(visible), "all_images_per_s": rate(all), "speedup": all / visible,
    }))
}

/// The `mcf` method with its teachers, and the EMA updates it asked for.
fn method(
    registry: &Registry,
    vs: &nn::VarStore,
    backbone: &dyn Backbone,
    p: &Preset,
    teacher: &std::path::Path,
) -> Result<(Box<dyn Method>, Vec<visage_core::optim::Ema>)> {
    let spec = BackboneSpec {
        name: "vit".into(),
        params: p.vit.clone(),
    };
    let mut params = p.method.clone();
    params["teacher"] =
        json!({"weights": {"path": teacher, "prefix": ""}, "backbone": {"name": "vit", "params": p.vit}});
    let teachers = Teachers::new(registry, vs, spec, "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
        views: vec![1],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let method = registry.build_method("mcf", &params.to_string(), &ctx)?;
    drop(ctx);
    Ok((method, teachers.into_emas()))
}

/// Images/s of `steps` MCF iterations through [`Trainer::fit`].
fn iteration_case(registry: &Registry, args: &Args, p: &Preset) -> Result<Value> {
    let teacher = teacher_file(registry, &args.preset, &p.vit)?;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let backbone = build_vit(registry, &(vs.root() / "backbone"), &p.vit)?;
    let (method, emas) = method(registry, &vs, backbone.as_ref(), p, &teacher)?;
    visage_core::method::check_views("mcf", &method.views(), &[1])?;
    let total = 1 + args.steps;
    let optimizer = registry.build_optimizer(
        "adamw",
        &json!({"lr": p.lr, "betas": [0.9, 0.95], "weight_decay": 0.05}).to_string(),
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
        log_every: u64::MAX,
        label: "mcf_bench".into(),
        ..TrainConfig::default()
    };
    let batch = random_batch(args.batch as i64, p.side);
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
    Ok(json!({
        "side": "visage", "preset": args.preset, "mode": "tensors", "batch": args.batch,
        "steps": args.steps, "threads": args.threads, "seconds": (seconds * 1000.0).round() / 1000.0,
        "images_per_s": (args.batch as u64 * args.steps) as f64 / seconds,
    }))
}

fn main() -> Result<()> {
    let args = parse()?;
    let p = preset(&args.preset)?;
    tch::set_num_threads(args.threads);
    tch::manual_seed(0);
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry)?;
    mcf::register(&mut registry)?;
    let out = if args.masking {
        masking_case(&registry, &args, &p)?
    } else {
        iteration_case(&registry, &args, &p)?
    };
    println!("{out}");
    Ok(())
}
