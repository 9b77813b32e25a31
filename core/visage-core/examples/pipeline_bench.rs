//! The Visage side of the pipeline benchmark (`bench/pipeline`): decode the
//! JPEGs under DIR with `image_folder` and make two augmented views of each
//! (`random_resized_crop`, `hflip`, `color_jitter` 0.4/0.4/0.4/0.1 with
//! p=0.8, `grayscale` p=0.2: the torchvision reference's transforms),
//! batched by the [`Loader`] with WORKERS threads. Prints one JSON line with
//! images/s (files per second, two views each), timed from the first batch
//! to the last, and the peak resident memory.
//!
//! ```text
//! cargo run --release -p visage-core --example pipeline_bench -- DIR SIZE WORKERS [BATCH] [EPOCHS] [PREFETCH]
//! ```

use std::sync::Arc;
use std::time::Instant;

use tch::Device;
use visage_core::augmentation::Augmentation;
use visage_core::data::sources::ImageFolder;
use visage_core::data::{Loader, LoaderConfig, Sampling, ViewGroup};
use visage_core::dataset::Split;
use visage_core::{Registry, Result};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).map_or(Ok(default), |a| a.parse::<usize>());
    let (Some(root), Ok(size), Ok(workers), Ok(batch), Ok(epochs), Ok(prefetch)) =
        (args.first(), arg(1, 112), arg(2, 2), arg(3, 64), arg(4, 1), arg(5, 4))
    else {
        eprintln!("usage: pipeline_bench DIR SIZE WORKERS [BATCH] [EPOCHS] [PREFETCH]");
        std::process::exit(2);
    };
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry)?;
    let aug = |name: &str, params: String| registry.build_augmentation(name, &params);
    // PIPELINE_BENCH_OPS (profiling): how many of the four ops to apply.
    let ops: usize = std::env::var("PIPELINE_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    // The first view is the loader's own augmentation of the image, the
    // second a view group of one, as a two-view method is configured.
    let chain = || -> Result<Vec<Box<dyn Augmentation>>> {
        let mut chain = vec![
            aug("random_resized_crop", format!(r#"{{"size": {size}}}"#))?,
            aug("hflip", "{}".into())?,
            aug(
                "color_jitter",
                r#"{"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8}"#.into(),
            )?,
            aug("grayscale", r#"{"p": 0.2}"#.into())?,
        ];
        chain.truncate(ops);
        if ops == 0 {
            chain.push(aug("resize", format!(r#"{{"size": [{size}, {size}]}}"#))?);
        }
        Ok(chain)
    };
    let params = serde_json::from_value(serde_json::json!({ "root": root })).map_err(visage_core::Error::msg)?;
    let dataset = Arc::new(ImageFolder::new(params, Split::Train)?);
    let augmentations: Arc<[Box<dyn Augmentation>]> = Arc::from(chain()?);
    let views: Arc<[ViewGroup]> = Arc::from(vec![ViewGroup {
        count: 1,
        augmentations: chain()?,
        shared_steps: vec![],
    }]);
    let consumer_ms: u64 = std::env::var("PIPELINE_BENCH_CONSUMER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (mut images, mut start) = (0usize, None);
    for epoch in 0..epochs as u64 {
        let config = LoaderConfig {
            batch_size: batch,
            workers,
            prefetch,
            seed: 0,
            sampling: Sampling::Epoch {
                epoch,
                shuffle: true,
                drop_last: true,
            },
            per_identity: None,
            device: Device::Cpu,
        };
        for b in Loader::with_views(dataset.clone(), augmentations.clone(), views.clone(), config)? {
            let b = b?;
            let n = b.images.size()[0] as usize;
            assert_eq!(b.images.size(), [n as i64, 3, size as i64, size as i64]);
            assert_eq!(b.views[0].images.size(), b.images.size());
            if consumer_ms > 0 {
                // A slow training step (PIPELINE_BENCH_CONSUMER_MS): the loader
                // runs up to `prefetch` batches ahead and then waits.
                std::thread::sleep(std::time::Duration::from_millis(consumer_ms));
            }
            if start.is_none() {
                start = Some(Instant::now()); // after the first batch: thread start-up excluded
            } else {
                images += n;
            }
        }
    }
    let seconds = start.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
    println!(
        "{}",
        serde_json::json!({
            "side": "visage", "size": size, "workers": workers, "prefetch": prefetch, "images": images,
            "seconds": (seconds * 1000.0).round() / 1000.0, "images_per_s": images as f64 / seconds,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
    Ok(())
}
