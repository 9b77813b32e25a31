//! `runner export`: writes the first samples of a registered dataset in the
//! on-disk layout of a real face benchmark (`shared/design/datasets.md`), so
//! that the task plugins' loaders can be tested end to end on synthetic
//! faces.
//!
//! ```text
//! runner export --dataset synthface --dataset-params '{resolution: 64}' \
//!     --format rafdb --out /tmp/raf --count 20
//! ```
//!
//! ## Conventions shared by every format
//! - Sample `i` (0-based) of a split is file number `i + 1`, as the real
//!   benchmarks count from 1 (`train_00001.jpg`).
//! - Images are the dataset's `[C, H, W]` floats in 0..1, clamped, scaled to
//!   0..255 and rounded; JPEG (quality 90) or PNG by extension. `--size S`
//!   resizes to `S x S` (bilinear, antialiased) and scales landmarks and
//!   parsing masks (nearest) with the image.
//! - Landmark coordinates: our labels put pixel `(i, j)` on
//!   `[j, j+1) x [i, i+1)` (`visage_core::labels`). Files of MATLAB origin
//!   (300W `.pts`, AFLW2000-3D and AFLW `.mat`) use 1-based pixel centres:
//!   the centre of the top-left pixel is `(1, 1)`, so they hold `x + 0.5`.
//!   The other text formats (WFLW, LaPa) use 0-based pixel centres (the
//!   top-left pixel's centre is `(0, 0)`, as in OpenCV), so they hold
//!   `x - 0.5`.
//! - Every file is written to a temporary name in its folder and renamed,
//!   so a killed export never leaves a half-written file.

mod alignment;
mod au;
mod fer;
mod fr;
mod io;
mod matfile;
mod parsing;
mod pickle;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use clap::{Args, ValueEnum};
use tch::{Kind, Tensor};
use visage_core::dataset::{Dataset, DatasetContext, Split};

use crate::host::Host;

/// Arguments of `runner export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The registered dataset to export.
    #[arg(long)]
    dataset: String,
    /// The dataset's parameters as YAML or JSON.
    #[arg(long)]
    dataset_params: Option<String>,
    /// Seed of generated datasets, and of the verification pairs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The benchmark layout to write (see the list in the error for an unknown one).
    #[arg(long)]
    format: String,
    /// The folder to write into (created; existing files of the same names are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Samples per split: the first N (default: all).
    #[arg(long)]
    count: Option<usize>,
    /// Splits to export (default: both, or `test` for the evaluation-only
    /// formats verification-bin, lfw-pairs and aflw2000, `train` for imagefolder).
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// Resize images to SIZE x SIZE (rafdb: 100 by default, as RAF-DB's aligned images).
    #[arg(long)]
    size: Option<i64>,
    /// imagefolder: the label that names the folders.
    #[arg(long, value_enum, default_value = "identity")]
    label: FolderLabel,
    /// verification-bin, lfw-pairs: cross-validation folds.
    #[arg(long, default_value_t = 10)]
    folds: usize,
    /// verification-bin, lfw-pairs: same-identity pairs per fold, and as many
    /// different-identity pairs (default: count / (2 * folds), at least 1).
    #[arg(long)]
    pairs: Option<usize>,
    /// verification-bin: the file is `<out>/<name>.bin`.
    #[arg(long, default_value = "lfw")]
    name: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitArg {
    Train,
    Test,
    Both,
}

/// What names the folders of `imagefolder`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FolderLabel {
    /// The identity index.
    Identity,
    /// The expression name.
    Expression,
}

/// Which splits a format holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Splits {
    /// Train and test (default both).
    Both,
    /// One split per export (default test), e.g. an evaluation-only benchmark.
    One,
    /// Both allowed, default train.
    TrainFirst,
}

/// One format: its name, the labels it needs, and its writer.
struct Format {
    name: &'static str,
    needs: &'static [&'static str],
    splits: Splits,
    default_size: Option<i64>,
    write: fn(&Export) -> anyhow::Result<()>,
}

use visage_core::labels as l;

const FORMATS: &[Format] = &[
    Format {
        name: "rafdb",
        needs: &[l::EXPRESSION],
        splits: Splits::Both,
        default_size: Some(100),
        write: fer::rafdb,
    },
    Format {
        name: "verification-bin",
        needs: &[l::IDENTITY],
        splits: Splits::One,
        default_size: None,
        write: fr::verification_bin,
    },
    Format {
        name: "lfw-pairs",
        needs: &[l::IDENTITY],
        splits: Splits::One,
        default_size: None,
        write: fr::lfw_pairs,
    },
    Format {
        name: "disfa",
        needs: &[l::AU],
        splits: Splits::Both,
        default_size: None,
        write: au::disfa,
    },
    Format {
        name: "bp4d",
        needs: &[l::AU],
        splits: Splits::Both,
        default_size: None,
        write: au::bp4d,
    },
    Format {
        name: "aflw2000",
        needs: &[l::POSE, l::LANDMARKS],
        splits: Splits::One,
        default_size: None,
        write: alignment::aflw2000,
    },
    Format {
        name: "pts300w",
        needs: &[l::LANDMARKS],
        splits: Splits::Both,
        default_size: None,
        write: alignment::pts300w,
    },
    Format {
        name: "wflw",
        needs: &[l::LANDMARKS],
        splits: Splits::Both,
        default_size: None,
        write: alignment::wflw,
    },
    Format {
        name: "aflw19",
        needs: &[l::LANDMARKS, l::LANDMARKS_VISIBLE],
        splits: Splits::Both,
        default_size: None,
        write: alignment::aflw19,
    },
    Format {
        name: "lapa",
        needs: &[l::PARSING, l::LANDMARKS],
        splits: Splits::Both,
        default_size: None,
        write: parsing::lapa,
    },
    Format {
        name: "celebamask",
        needs: &[l::PARSING],
        splits: Splits::Both,
        default_size: None,
        write: parsing::celebamask,
    },
    Format {
        name: "imagefolder",
        needs: &[],
        splits: Splits::TrainFirst,
        default_size: None,
        write: fer::imagefolder,
    },
];

/// The largest `--size` of `runner export` and `runner embed`.
pub const MAX_SIZE: i64 = 8192;

/// Checks a `--size` (export and embed): 1..=[`MAX_SIZE`] pixels.
pub fn check_size(size: i64) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_SIZE).contains(&size),
        "--size must be 1..={MAX_SIZE}, got {size}"
    );
    Ok(())
}

/// Names of the known formats.
fn format_names() -> Vec<&'static str> {
    FORMATS.iter().map(|f| f.name).collect()
}

/// Runs `runner export`.
pub fn export(args: &ExportArgs, host: &Host) -> anyhow::Result<()> {
    let format = FORMATS.iter().find(|f| f.name == args.format).with_context(|| {
        format!(
            "unknown export format `{}`; known formats: {}",
            args.format,
            format_names().join(", ")
        )
    })?;
    let splits = match (args.split, format.splits) {
        (Some(SplitArg::Both), Splits::One) => bail!(
            "format `{}` writes one split per export: pass --split train or --split test",
            format.name
        ),
        (Some(SplitArg::Train), _) => vec![Split::Train],
        (Some(SplitArg::Test), _) => vec![Split::Test],
        (Some(SplitArg::Both), _) | (None, Splits::Both) => vec![Split::Train, Split::Test],
        (None, Splits::One) => vec![Split::Test],
        (None, Splits::TrainFirst) => vec![Split::Train],
    };
    let size = args.size.or(format.default_size);
    if let Some(s) = size {
        check_size(s)?;
    }
    ensure!(
        args.count != Some(0),
        "--count must be at least 1 (leave it out for every sample), got 0"
    );
    let params = match &args.dataset_params {
        Some(text) => serde_yaml::from_str::<serde_json::Value>(text)
            .with_context(|| format!("--dataset-params: not YAML or JSON: {text}"))?,
        None => serde_json::json!({}),
    };
    let mut sources = vec![];
    for &split in &splits {
        let ctx = DatasetContext { split, seed: args.seed };
        let dataset = host
            .registry
            .build_dataset(&args.dataset, &params.to_string(), &ctx)
            .with_context(|| format!("dataset `{}`", args.dataset))?;
        let n = args.count.map_or(dataset.len(), |c| c.min(dataset.len()));
        sources.push((split, dataset, n));
    }
    let ex = Export {
        format: format.name,
        dataset: Arc::from(args.dataset.as_str()),
        out: args.out.clone(),
        sources,
        size,
        args,
    };
    ensure!(
        ex.sources.iter().any(|s| s.2 > 0),
        "dataset `{}` has no samples in the split(s) asked",
        args.dataset
    );
    // A missing label is reported before anything is written.
    let (split, _, _) = ex.sources.iter().find(|s| s.2 > 0).expect("checked above");
    let first = ex.item(*split, 0)?;
    for need in format.needs {
        first.label(need)?;
    }
    std::fs::create_dir_all(&ex.out).with_context(|| format!("{}: cannot create the folder", ex.out.display()))?;
    (format.write)(&ex)?;
    let total: usize = ex.sources.iter().map(|s| s.2).sum();
    println!(
        "exported {total} samples of `{}` as {} to {}",
        args.dataset,
        format.name,
        ex.out.display()
    );
    Ok(())
}

/// One export in progress: the datasets of the asked splits and the options.
pub(crate) struct Export<'a> {
    /// The format's name, for messages.
    pub format: &'static str,
    /// The dataset's name, for messages.
    pub dataset: Arc<str>,
    /// The output folder.
    pub out: PathBuf,
    sources: Vec<(Split, Box<dyn Dataset>, usize)>,
    size: Option<i64>,
    /// The command line.
    pub args: &'a ExportArgs,
}

impl Export<'_> {
    /// The splits exported, in order (train first).
    pub fn splits(&self) -> Vec<Split> {
        self.sources.iter().map(|s| s.0).collect()
    }

    /// Number of samples exported from `split`.
    pub fn count(&self, split: Split) -> usize {
        self.sources.iter().find(|s| s.0 == split).map_or(0, |s| s.2)
    }

    /// Sample `index` of `split`, resized when asked.
    pub fn item(&self, split: Split, index: usize) -> anyhow::Result<Item> {
        let (_, dataset, _) = self
            .sources
            .iter()
            .find(|s| s.0 == split)
            .context("split not exported")?;
        let sample = dataset
            .get(index)
            .with_context(|| format!("dataset `{}`, {} sample {index}", self.dataset, split_name(split)))?;
        let mut item = Item {
            split,
            index,
            image: sample.image,
            labels: sample.labels,
            format: self.format,
            dataset: self.dataset.clone(),
        };
        if let Some(size) = self.size {
            item.resize(size)?;
        }
        Ok(item)
    }

    /// Every exported sample of `split`, in order.
    pub fn items(&self, split: Split) -> impl Iterator<Item = anyhow::Result<Item>> + '_ {
        (0..self.count(split)).map(move |i| self.item(split, i))
    }
}

/// `train` or `test`.
pub(crate) fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "test",
    }
}

/// One sample being exported.
pub(crate) struct Item {
    /// Its split.
    pub split: Split,
    /// Its index in the split (0-based).
    pub index: usize,
    image: Tensor,
    labels: BTreeMap<String, Tensor>,
    format: &'static str,
    dataset: Arc<str>,
}

impl Item {
    /// Where this sample is, for messages.
    pub fn what(&self) -> String {
        format!("{} sample {}", split_name(self.split), self.index)
    }

    /// The 1-based file number.
    pub fn number(&self) -> usize {
        self.index + 1
    }

    /// Label `name`, or an error naming it and the format that needs it.
    pub fn label(&self, name: &str) -> anyhow::Result<&Tensor> {
        self.labels.get(name).with_context(|| {
            let have: Vec<&str> = self.labels.keys().map(String::as_str).collect();
            format!(
                "format `{}` needs the label `{name}`, which dataset `{}` does not provide (it has: {})",
                self.format,
                self.dataset,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            )
        })
    }

    /// The dataset's name.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// Whether the sample has label `name`.
    pub fn has(&self, name: &str) -> bool {
        self.labels.contains_key(name)
    }

    /// Label `name` as floats, with its shape.
    pub fn floats(&self, name: &str) -> anyhow::Result<(Vec<i64>, Vec<f64>)> {
        let t = self.label(name)?;
        let values = t
            .f_to_kind(Kind::Double)
            .and_then(|t| t.f_flatten(0, -1))
            .and_then(|t| Vec::<f64>::try_from(&t))
            .with_context(|| format!("label `{name}` of {}: not numeric", self.what()))?;
        ensure!(
            values.iter().all(|v| v.is_finite()),
            "label `{name}` of {} has a non-finite value",
            self.what()
        );
        Ok((t.size(), values))
    }

    /// A scalar integer label.
    pub fn int(&self, name: &str) -> anyhow::Result<i64> {
        let (shape, values) = self.floats(name)?;
        ensure!(
            values.len() == 1,
            "label `{name}` of {}: expected a scalar, got shape {shape:?}",
            self.what()
        );
        ensure!(
            values[0].fract() == 0.0 && values[0].abs() < 1e15,
            "label `{name}` of {}: expected an integer, got {}",
            self.what(),
            values[0]
        );
        Ok(values[0] as i64)
    }

    /// A vector label of `len` values.
    pub fn vector(&self, name: &str, len: usize) -> anyhow::Result<Vec<f64>> {
        let (shape, values) = self.floats(name)?;
        ensure!(
            values.len() == len,
            "format `{}` needs label `{name}` with {len} values; {} has shape {shape:?}",
            self.format,
            self.what()
        );
        Ok(values)
    }

    /// The landmarks `[K, 2]` as `(x, y)` in our pixel convention.
    pub fn landmarks(&self) -> anyhow::Result<Vec<[f64; 2]>> {
        let (shape, values) = self.floats(visage_core::labels::LANDMARKS)?;
        ensure!(
            shape.len() == 2 && shape[1] == 2,
            "label `landmarks` of {}: expected shape [K, 2], got {shape:?}",
            self.what()
        );
        Ok(values.chunks(2).map(|p| [p[0], p[1]]).collect())
    }

    /// The visibility of each landmark (all visible when the dataset has no
    /// `landmarks_visible`).
    pub fn visible(&self, points: usize) -> anyhow::Result<Vec<bool>> {
        if !self.has(visage_core::labels::LANDMARKS_VISIBLE) {
            return Ok(vec![true; points]);
        }
        let v = self.vector(visage_core::labels::LANDMARKS_VISIBLE, points)?;
        Ok(v.iter().map(|&v| v > 0.5).collect())
    }

    /// The parsing mask: `(height, width, class ids)`, ids checked to fit
    /// `classes`.
    pub fn parsing(&self, classes: usize) -> anyhow::Result<(usize, usize, Vec<u8>)> {
        let (shape, values) = self.floats(visage_core::labels::PARSING)?;
        ensure!(
            shape.len() == 2,
            "label `parsing` of {}: expected shape [H, W], got {shape:?}",
            self.what()
        );
        let ids = values
            .iter()
            .map(|&v| {
                if v >= 0.0 && v < classes as f64 && v.fract() == 0.0 {
                    Ok(v as u8)
                } else {
                    Err(anyhow::anyhow!(
                        "label `parsing` of {}: class id {v} is not one of 0..{classes}",
                        self.what()
                    ))
                }
            })
            .collect::<anyhow::Result<Vec<u8>>>()?;
        Ok((shape[0] as usize, shape[1] as usize, ids))
    }

    /// The image as uint8 `[3, H, W]`.
    pub fn image_u8(&self) -> anyhow::Result<Tensor> {
        io::to_u8(&self.image).with_context(|| format!("the image of {}", self.what()))
    }

    /// Resizes the image to `size x size` and scales the geometric labels
    /// with it: landmarks by the size ratio (exact in the pixel-corner
    /// convention), the parsing mask by nearest neighbour.
    fn resize(&mut self, size: i64) -> anyhow::Result<()> {
        let shape = self.image.size();
        ensure!(
            shape.len() == 3,
            "the image of {} has shape {shape:?}, expected [C, H, W]",
            self.what()
        );
        let (h, w) = (shape[1], shape[2]);
        if (h, w) == (size, size) {
            return Ok(());
        }
        self.image = self
            .image
            .f_to_kind(Kind::Float)
            .and_then(|t| t.f_unsqueeze(0))
            .and_then(|t| t.f_internal_upsample_bilinear2d_aa([size, size], false, None, None))
            .and_then(|t| t.f_squeeze_dim(0))
            .with_context(|| format!("resizing the image of {}", self.what()))?;
        if let Some(marks) = self.labels.get(visage_core::labels::LANDMARKS) {
            let scale = Tensor::from_slice(&[size as f64 / w as f64, size as f64 / h as f64]);
            let scaled = marks
                .f_to_kind(Kind::Double)
                .and_then(|m| m.f_mul(&scale))
                .and_then(|m| m.f_to_kind(marks.kind()))
                .with_context(|| format!("label `landmarks` of {}: expected shape [K, 2]", self.what()))?;
            self.labels.insert(visage_core::labels::LANDMARKS.into(), scaled);
        }
        if let Some(mask) = self.labels.get(visage_core::labels::PARSING) {
            ensure!(
                mask.size() == [h, w],
                "label `parsing` of {} has shape {:?}, the image {h}x{w}",
                self.what(),
                mask.size()
            );
            // Output pixel centre (i + 0.5) * h / size, in source pixels.
            let rows: Vec<i64> = (0..size).map(|i| ((2 * i + 1) * h / (2 * size)).min(h - 1)).collect();
            let cols: Vec<i64> = (0..size).map(|j| ((2 * j + 1) * w / (2 * size)).min(w - 1)).collect();
            let resized = mask
                .f_index_select(0, &Tensor::from_slice(&rows))
                .and_then(|m| m.f_index_select(1, &Tensor::from_slice(&cols)))?;
            self.labels.insert(visage_core::labels::PARSING.into(), resized);
        }
        Ok(())
    }
}
