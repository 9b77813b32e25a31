//! `runner embed`: features of a trained backbone for a folder of images or
//! a dataset, written as a NumPy `.npy` with a sidecar listing the inputs.
//!
//! ```text
//! runner embed --checkpoint runs/pcl/RUN --images faces/ --size 64 --out feats.npy
//! runner embed --checkpoint resnet50.pth --backbone resnet --params '{depth: 50}' \
//!     --dataset synthface --split test --output pooled --out feats.npy
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use clap::{Args, ValueEnum};
use tch::{nn, Device, Kind, Tensor};
use visage_core::augmentation::Augmentation;
use visage_core::backbone::{feature, BackboneContext};
use visage_core::data::sources::ImageFolder;
use visage_core::data::{Loader, LoaderConfig};
use visage_core::dataset::{Dataset, DatasetContext, Split};
use visage_core::error::torch_message;
use visage_core::fs::io_error;
use visage_core::nn::weights::{load_state_dict, read_state_dict};
use visage_core::Registry;

use crate::config::{Component, Experiment};
use crate::host::Host;
use crate::run::{BACKBONE, IN_CHANNELS};

/// Arguments of `runner embed`.
#[derive(Args)]
pub struct EmbedArgs {
    /// Weights: a `.safetensors`/`.pth` file, or a run directory (its
    /// `backbone.safetensors`, and its backbone unless `--backbone` is given).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Registered backbone name (default: the run directory's).
    #[arg(long)]
    backbone: Option<String>,
    /// Backbone parameters as YAML or JSON, e.g. `{depth: 50}`.
    #[arg(long)]
    params: Option<String>,
    /// Key prefix of the backbone in the checkpoint (default: found).
    #[arg(long)]
    prefix: Option<String>,
    /// The backbone output to write.
    #[arg(long, default_value = "pooled")]
    output: String,
    /// A folder of JPEG/PNG images (searched recursively, sorted by path;
    /// read as the `image_folder` dataset reads them).
    #[arg(long, conflicts_with = "dataset", required_unless_present = "dataset")]
    images: Option<PathBuf>,
    /// Resize inputs to SIZE x SIZE (the `resize` augmentation).
    #[arg(long)]
    size: Option<i64>,
    /// Pixel normalisation of images.
    #[arg(long, value_enum, default_value = "none")]
    normalize: Normalize,
    /// A registered dataset instead of a folder.
    #[arg(long)]
    dataset: Option<String>,
    /// The dataset's parameters as YAML or JSON.
    #[arg(long)]
    dataset_params: Option<String>,
    /// The dataset split.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// Seed for generated datasets.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Threads that decode and resize the inputs ahead of the backbone.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// The `.npy` file to write; the inputs are listed in `<out>.inputs.txt`.
    #[arg(long)]
    out: PathBuf,
}

/// Image normalisation.
#[derive(Clone, Copy, ValueEnum)]
enum Normalize {
    /// Pixels in [0, 1].
    None,
    /// ImageNet mean and standard deviation.
    Imagenet,
}

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Train,
    Test,
}

/// Runs `runner embed`.
pub fn embed(args: &EmbedArgs, host: &Host) -> anyhow::Result<()> {
    if let Some(size) = args.size {
        crate::export::check_size(size)?;
    }
    let device = crate::run::device(&args.device)?;
    let (spec, weights) = backbone_spec(args)?;
    let registry = &host.registry;
    let params = checked_params(registry, &spec)?;
    let vs = nn::VarStore::new(device);
    let ctx = BackboneContext {
        vs: vs.root() / BACKBONE,
        in_channels: IN_CHANNELS,
    };
    let backbone = registry.build_backbone(&spec.name, &params, &ctx)?;
    let report = load_state_dict(&vs, BACKBONE, read_state_dict(&weights)?, args.prefix.as_deref())?;
    report.check_strict(&weights.display().to_string())?;
    tracing::info!(file = %weights.display(), "{report}");

    let inputs = Inputs::new(args, registry)?;
    ensure!(args.batch_size > 0, "--batch-size must be positive");
    let config = LoaderConfig::in_order(args.batch_size, args.workers, args.seed, device);
    let mut rows = vec![];
    let progress = indicatif::ProgressBar::new(inputs.names.len() as u64);
    for batch in Loader::new(inputs.dataset, inputs.augmentations, config)? {
        let images = batch?.images;
        let n = images.size()[0];
        let batch = normalize(images, args.normalize).to_device(device);
        let features = tch::no_grad(|| backbone.forward(&batch, false))?;
        rows.push(feature(&features, &args.output)?.flatten(1, -1).to_device(Device::Cpu));
        progress.inc(n as u64);
    }
    progress.finish_and_clear();
    let features = Tensor::cat(&rows, 0).to_kind(Kind::Float);
    write_outputs(&args.out, &features, &inputs.names)?;
    tracing::info!(out = %args.out.display(), shape = ?features.size(), "features written");
    Ok(())
}

/// The backbone to build and the weights file.
fn backbone_spec(args: &EmbedArgs) -> anyhow::Result<(Component, PathBuf)> {
    let params = match &args.params {
        Some(text) => Some(yaml_value(text, "--params")?),
        None => None,
    };
    match std::fs::metadata(&args.checkpoint) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("--checkpoint {}: no such file or directory", args.checkpoint.display())
        }
        Err(e) => bail!("--checkpoint {}: {e}", args.checkpoint.display()),
        Ok(_) => {}
    }
    if args.checkpoint.is_dir() {
        let weights = args.checkpoint.join("backbone.safetensors");
        ensure!(
            weights.exists(),
            "{}: no such file (not a finished run directory?)",
            weights.display()
        );
        let config = args.checkpoint.join("config.yaml");
        let text = std::fs::read_to_string(&config).with_context(|| format!("{}: cannot read", config.display()))?;
        let experiment: Experiment =
            serde_yaml::from_str(&text).with_context(|| format!("{}: not a resolved experiment", config.display()))?;
        let spec = Component {
            name: args.backbone.clone().unwrap_or(experiment.backbone.name),
            params: params.unwrap_or(experiment.backbone.params),
        };
        return Ok((spec, weights));
    }
    let Some(name) = &args.backbone else {
        bail!(
            "--backbone is required when --checkpoint is a weights file ({}), not a run directory",
            args.checkpoint.display()
        );
    };
    let spec = Component {
        name: name.clone(),
        params: params.unwrap_or_else(|| serde_json::json!({})),
    };
    Ok((spec, args.checkpoint.clone()))
}

fn yaml_value(text: &str, what: &str) -> anyhow::Result<serde_json::Value> {
    serde_yaml::from_str(text).with_context(|| format!("{what}: not YAML or JSON: {text}"))
}

fn checked_params(registry: &Registry, spec: &Component) -> anyhow::Result<String> {
    let info = registry
        .info(visage_core::Kind::Backbone, &spec.name)
        .with_context(|| {
            format!(
                "unknown backbone `{}`; registered: {}",
                spec.name,
                registry.names(visage_core::Kind::Backbone).join(", ")
            )
        })?;
    info.normalize(&spec.params.to_string())
        .map_err(|e| anyhow::anyhow!("backbone `{}` params: {e}", spec.name))
}

fn normalize(batch: Tensor, how: Normalize) -> Tensor {
    match how {
        Normalize::None => batch,
        Normalize::Imagenet => {
            let mean = Tensor::from_slice(&[0.485f32, 0.456, 0.406]).view([1, 3, 1, 1]);
            let std = Tensor::from_slice(&[0.229f32, 0.224, 0.225]).view([1, 3, 1, 1]);
            (batch - mean) / std
        }
    }
}

/// What is embedded, in order: a dataset (an `image_folder` for
/// `--images`, so that files are decoded exactly as in training), the
/// `resize` augmentation for `--size`, and a name per sample.
struct Inputs {
    names: Vec<String>,
    dataset: Arc<dyn Dataset>,
    augmentations: Arc<[Box<dyn Augmentation>]>,
}

impl Inputs {
    fn new(args: &EmbedArgs, registry: &Registry) -> anyhow::Result<Self> {
        let augmentations: Vec<Box<dyn Augmentation>> = match args.size {
            Some(s) => vec![registry.build_augmentation("resize", &serde_json::json!({ "size": [s, s] }).to_string())?],
            None => vec![],
        };
        let (dataset, names): (Arc<dyn Dataset>, Vec<String>) = match &args.images {
            Some(dir) => {
                let params = serde_json::from_value(serde_json::json!({ "root": dir }))?;
                let folder = ImageFolder::new(params, Split::Train)?;
                let names = folder
                    .paths()
                    .iter()
                    .map(|f| f.strip_prefix(dir).unwrap_or(f).display().to_string())
                    .collect();
                (Arc::new(folder), names)
            }
            None => {
                let name = args.dataset.as_deref().context("--images or --dataset is required")?;
                let params = match &args.dataset_params {
                    Some(text) => yaml_value(text, "--dataset-params")?,
                    None => serde_json::json!({}),
                };
                let split = match args.split {
                    SplitArg::Train => Split::Train,
                    SplitArg::Test => Split::Test,
                };
                let ctx = DatasetContext { split, seed: args.seed };
                let dataset = registry.build_dataset(name, &params.to_string(), &ctx)?;
                let names = (0..dataset.len()).map(|i| format!("{name}:{i}")).collect();
                (Arc::from(dataset), names)
            }
        };
        ensure!(!names.is_empty(), "no inputs to embed");
        Ok(Inputs {
            names,
            dataset,
            augmentations: Arc::from(augmentations),
        })
    }
}

/// `<out>` (the features) and `<out>.inputs.txt` (one input per line),
/// each written atomically.
fn write_outputs(out: &Path, features: &Tensor, names: &[String]) -> anyhow::Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let tmp = out.with_extension("npy.tmp");
    features.write_npy(&tmp).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("{}: cannot write: {}", tmp.display(), torch_message(&e))
    })?;
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error(out)(e)
    })?;
    let list = PathBuf::from(format!("{}.inputs.txt", out.display()));
    visage_core::fs::write_atomic(&list, (names.join("\n") + "\n").as_bytes())?;
    Ok(())
}
