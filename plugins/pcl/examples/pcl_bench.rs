//! The Visage side of `bench/pcl`: images/s of full PCL iterations (the
//! three optimiser steps, each `zero_grad`, backward and Adam step) on the
//! `facecycle` backbone, built through the registry as the runner builds
//! them and driven by the training engine itself ([`Trainer::fit`]), so the
//! time is what `runner` spends per step. `bench/pcl.py` is the PyTorch side.
//!
//! ```text
//! cargo run --release -p visage-plugin-pcl --example pcl_bench -- \
//!     PRESET BATCH STEPS THREADS [DIR WORKERS [data]]
//! ```
//!
//! PRESET is `paper` (64x64, width 64, 10 flipped negatives per image,
//! projector 512, decoder 512, the pose step on 10 images of the batch, as
//! experiments/paper/pcl_base.yaml) or `default` (width 16, 2 negatives,
//! projector 128, decoder 64, the pose step on the whole batch). Without DIR
//! the batches are random tensors (one batch, reused); with DIR they come
//! from the loader: `image_folder` under DIR resized to 64 on decoding and
//! PCL's views as experiments/paper/pcl_base.yaml configures them
//! (`distance_crop` pair, two pose views, the flipped negatives; colour
//! jitter, grayscale, blur and Sobel), with WORKERS threads; with `data`
//! too, only the loader runs (STEPS batches, no model). One warm-up
//! iteration (batch), then STEPS timed ones; prints one JSON line.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tch::{nn, Device, Kind, Tensor};
use visage_core::augmentation::Augmentation;
use visage_core::backbone::BackboneContext;
use visage_core::data::{Loader, LoaderConfig, Sampling, ViewGroup};
use visage_core::dataset::{DatasetContext, Split};
use visage_core::method::MethodContext;
use visage_core::optim::BackboneLayers;
use visage_core::optimizer::OptimizerContext;
use visage_core::scalars::Scalars;
use visage_core::teacher::{BackboneSpec, Teachers};
use visage_core::train::{Pretext, TrainConfig, Trainer};
use visage_core::{Batch, Error, Registry, Result};

/// The image side PCL trains at.
const SIDE: i64 = 64;

/// The sizes of one benchmark case.
struct Preset {
    width: i64,
    negatives: usize,
    projector_dim: i64,
    decoder_width: i64,
    pose_batch: Option<i64>,
}

fn preset(name: &str) -> Result<Preset> {
    match name {
        "paper" => Ok(Preset {
            width: 64,
            negatives: 10,
            projector_dim: 512,
            decoder_width: 512,
            pose_batch: Some(10),
        }),
        "default" => Ok(Preset {
            width: 16,
            negatives: 2,
            projector_dim: 128,
            decoder_width: 64,
            pose_batch: None,
        }),
        other => Err(Error::msg(format!(
            "unknown preset `{other}`: expected paper or default"
        ))),
    }
}

/// PCL's per-view augmentation (experiments/paper/pcl_base.yaml).
fn pcl_augmentation() -> Vec<Value> {
    vec![
        json!({"name": "color_jitter", "params": {"brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2, "p": 0.8}}),
        json!({"name": "grayscale", "params": {"p": 0.2}}),
        json!({"name": "gaussian_blur", "params": {"kernel_size": 7, "sigma": [0.1, 2.0], "p": 0.8}}),
        json!({"name": "sobel", "params": {"p": 0.6}}),
    ]
}

fn chain(registry: &Registry, steps: &[Value]) -> Result<Vec<Box<dyn Augmentation>>> {
    steps
        .iter()
        .map(|s| registry.build_augmentation(s["name"].as_str().unwrap_or_default(), &s["params"].to_string()))
        .collect()
}

/// The four view groups `pcl` reads: the distance-crop pair, two pose
/// views, `negatives` flipped views.
fn view_groups(registry: &Registry, negatives: usize) -> Result<Vec<ViewGroup>> {
    let crop = |view: u8| -> Result<ViewGroup> {
        let mut steps = vec![
            json!({"name": "distance_crop", "params": {"view": view}}),
            json!({"name": "resize", "params": {"size": SIDE}}),
        ];
        steps.extend(pcl_augmentation());
        Ok(ViewGroup {
            count: 1,
            augmentations: chain(registry, &steps)?,
            shared_steps: vec![0],
        })
    };
    let mut flipped = vec![json!({"name": "hflip", "params": {"p": 1.0}})];
    flipped.extend(pcl_augmentation());
    Ok(vec![
        crop(0)?,
        crop(1)?,
        ViewGroup {
            count: 2,
            augmentations: chain(registry, &pcl_augmentation())?,
            shared_steps: vec![],
        },
        ViewGroup {
            count: negatives,
            augmentations: chain(registry, &flipped)?,
            shared_steps: vec![],
        },
    ])
}

/// A batch of random images with the views `pcl` reads.
fn random_batch(batch: i64, views: usize) -> Batch {
    let images = || Tensor::rand([batch, 3, SIDE, SIDE], (Kind::Float, Device::Cpu));
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
/// The loader over the JPEGs under `dir`, configured as PCL's experiments.
fn loader(registry: &Registry, dir: &str, negatives: usize, batch: usize, workers: usize) -> Result<Loader> {
    let params = json!({"root": dir, "label": "none", "resize": [SIDE, SIDE]}).to_string();
    let ctx = DatasetContext {
        split: Split::Train,
        seed: 0,
    };
    let dataset = registry.build_dataset("image_folder", &params, &ctx)?;
    let clean = chain(registry, &[json!({"name": "resize", "params": {"size": SIDE}})])?;
    Loader::with_views(
        Arc::from(dataset),
        Arc::from(clean),
        Arc::from(view_groups(registry, negatives)?),
        LoaderConfig {
            batch_size: batch,
            workers,
            prefetch: 4,
            seed: 0,
            sampling: Sampling::Stream { consumed: 0 },
            per_identity: None,
            device: Device::Cpu,
        },
    )
}

struct Args {
    preset: String,
    batch: usize,
    steps: u64,
    threads: i32,
    files: Option<(String, usize)>,
    data_only: bool,
}

fn parse() -> Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || Error::msg("usage: pcl_bench PRESET BATCH STEPS THREADS [DIR WORKERS [data]]");
    let num = |i: usize| -> Result<u64> { args.get(i).ok_or_else(usage)?.parse().map_err(|_| usage()) };
    let files = match (args.get(4), args.get(5)) {
        (Some(dir), Some(_)) => Some((dir.clone(), num(5)? as usize)),
        (None, None) => None,
        _ => return Err(usage()),
    };
    let data_only = match args.get(6).map(String::as_str) {
        Some("data") => true,
        None => false,
        Some(_) => return Err(usage()),
    };
    Ok(Args {
        preset: args.first().ok_or_else(usage)?.clone(),
        batch: num(1)? as usize,
        steps: num(2)?,
        threads: num(3)? as i32,
        files,
        data_only,
    })
}

/// Images/s of the loader alone: one warm-up batch, then `steps` batches.
fn time_loader(mut loader: Loader, batch: usize, steps: u64) -> Result<f64> {
    let mut next = || loader.next().ok_or_else(|| Error::msg("the loader ended"))?;
    next()?;
    let start = Instant::now();
    for _ in 0..steps {
        next()?;
    }
    Ok((batch as u64 * steps) as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let args = parse()?;
    let p = preset(&args.preset)?;
    tch::set_num_threads(args.threads);
    tch::manual_seed(0);
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry)?;
    pcl::register(&mut registry)?;
    if let (Some((dir, workers)), true) = (&args.files, args.data_only) {
        let loader = loader(&registry, dir, p.negatives, args.batch, *workers)?;
        let rate = time_loader(loader, args.batch, args.steps)?;
        println!(
            "{}",
            json!({"side": "visage", "preset": args.preset, "mode": "data", "batch": args.batch,
                   "steps": args.steps, "workers": workers, "images_per_s": rate})
        );
        return Ok(());
    }

    let mut vs = nn::VarStore::new(Device::Cpu);
    let backbone_params = json!({"width": p.width, "image_size": SIDE});
    let backbone = registry.build_backbone(
        "facecycle",
        &backbone_params.to_string(),
        &BackboneContext {
            vs: vs.root() / "backbone",
            in_channels: 3,
        },
    )?;
    let view_counts = vec![1, 1, 2, p.negatives];
    let method_params = json!({
        "pose_negatives": p.negatives,
        "projector_dim": p.projector_dim,
        "decoder_width": p.decoder_width,
        "pose_batch": p.pose_batch,
    });
    let method = {
        let spec = BackboneSpec {
            name: "facecycle".into(),
            params: backbone_params,
        };
        let teachers = Teachers::new(&registry, &vs, spec, "backbone", 3);
        let ctx = MethodContext {
            vs: vs.root() / "method",
            backbone_outputs: backbone.outputs(),
            views: view_counts.clone(),
            teachers: &teachers,
            log: Scalars::default(),
        };
        registry.build_method("pcl", &method_params.to_string(), &ctx)?
    };
    visage_core::method::check_views("pcl", &method.views(), &view_counts)?;
    let total = 1 + args.steps;
    let optimizer = registry.build_optimizer(
        "adam",
        r#"{"lr": 1.0e-4, "weight_decay": 1.0e-3}"#,
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
        label: "pcl_bench".into(),
        ..TrainConfig::default()
    };
    let mut data: Box<dyn Iterator<Item = Result<Batch>>> = match &args.files {
        Some((dir, workers)) => Box::new(loader(&registry, dir, p.negatives, args.batch, *workers)?),
        None => {
            let batch = random_batch(args.batch as i64, 4 + p.negatives);
            Box::new(std::iter::repeat_with(move || Ok(batch.shallow_clone())))
        }
    };
    let mut pretext = Pretext::new(method, backbone.as_ref());
    let mut trainer = Trainer::new(config, &mut vs, optimizer, scheduler);
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
    let mode = if args.files.is_some() { "files" } else { "tensors" };
    println!(
        "{}",
        json!({
            "side": "visage", "preset": args.preset, "mode": mode, "batch": args.batch,
            "steps": args.steps, "threads": args.threads, "seconds": (seconds * 1000.0).round() / 1000.0,
            "images_per_s": (args.batch as u64 * args.steps) as f64 / seconds,
        })
    );
    Ok(())
}
