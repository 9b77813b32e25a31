//! `runner embed`: features of a trained backbone for a folder of images or
//! a dataset, written as a NumPy `.npy` with a sidecar listing the inputs.
//!
//! ```text
//! runner embed --checkpoint runs/pcl/RUN --images faces/ --size 64 --out feats.npy
//! runner embed --checkpoint resnet50.pth --backbone resnet --params '{depth: 50}' \
//!     --dataset synthface --split test --output pooled --out feats.npy
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use clap::{Args, ValueEnum};
use tch::{nn, Device, Kind, Tensor};
use visage_core::backbone::{feature, BackboneContext};
use visage_core::dataset::{DatasetContext, Split};
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
    /// A folder of JPEG/PNG images (searched recursively, sorted by path).
    #[arg(long, conflicts_with = "dataset", required_unless_present = "dataset")]
    images: Option<PathBuf>,
    /// Resize images to SIZE x SIZE.
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
    ensure!(inputs.len() > 0, "no inputs to embed");
    ensure!(args.batch_size > 0, "--batch-size must be positive");
    let mut rows = vec![];
    let progress = indicatif::ProgressBar::new(inputs.len() as u64);
    for start in (0..inputs.len()).step_by(args.batch_size) {
        let end = (start + args.batch_size).min(inputs.len());
        let images: Vec<Tensor> = (start..end).map(|i| inputs.image(i)).collect::<anyhow::Result<_>>()?;
        let batch = Tensor::f_stack(&images, 0).context("the inputs have different sizes (use --size)")?;
        let batch = normalize(batch, args.normalize).to_device(device);
        let features = tch::no_grad(|| backbone.forward(&batch, false))?;
        rows.push(feature(&features, &args.output)?.flatten(1, -1).to_device(Device::Cpu));
        progress.inc((end - start) as u64);
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
        bail!("--backbone is required when --checkpoint is a file");
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

/// What is embedded, in order.
struct Inputs {
    names: Vec<String>,
    files: Vec<PathBuf>,
    dataset: Option<Box<dyn visage_core::dataset::Dataset>>,
    size: Option<i64>,
}

impl Inputs {
    fn new(args: &EmbedArgs, registry: &Registry) -> anyhow::Result<Self> {
        if let Some(dir) = &args.images {
            let files = image_files(dir)?;
            let names = files
                .iter()
                .map(|f| f.strip_prefix(dir).unwrap_or(f).display().to_string())
                .collect();
            return Ok(Inputs {
                names,
                files,
                dataset: None,
                size: args.size,
            });
        }
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
        Ok(Inputs {
            names,
            files: vec![],
            dataset: Some(dataset),
            size: args.size,
        })
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    /// Input `i` as a float image `[3, H, W]` in [0, 1].
    fn image(&self, i: usize) -> anyhow::Result<Tensor> {
        let image = match &self.dataset {
            Some(d) => d.get(i)?.image,
            None => {
                let file = &self.files[i];
                let pixels = tch::vision::image::load(file)
                    .map_err(|e| anyhow::anyhow!("{}: not a readable JPEG or PNG image ({e})", file.display()))?;
                ensure!(
                    pixels.size()[0] == 3,
                    "{}: expected an RGB image, got {} channels",
                    file.display(),
                    pixels.size()[0]
                );
                pixels.to_kind(Kind::Float) / 255.0
            }
        };
        Ok(match self.size {
            Some(s) => image
                .unsqueeze(0)
                .upsample_bilinear2d([s, s], false, None, None)
                .squeeze_dim(0),
            None => image,
        })
    }
}

/// JPEG and PNG files under `dir`, at any depth, sorted by path.
fn image_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("{}: cannot read the folder", d.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `<out>` (the features) and `<out>.inputs.txt` (one input per line),
/// each written atomically.
fn write_outputs(out: &Path, features: &Tensor, names: &[String]) -> anyhow::Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = out.with_extension("npy.tmp");
    features
        .write_npy(&tmp)
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, out)?;
    let list = PathBuf::from(format!("{}.inputs.txt", out.display()));
    visage_core::fs::write_atomic(&list, (names.join("\n") + "\n").as_bytes())?;
    Ok(())
}
