//! The typed form of an experiment file.
//!
//! Component parameters are typed by the plugin that owns the component:
//! here they are plain JSON values, checked against the plugin's type by
//! [`super::validate`].

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::features::Feature;
use visage_core::nn::weights::WeightsSpec;
use visage_core::params::check;
use visage_core::task::Protocol;
pub use visage_core::train::Precision;
use visage_core::Kind;

/// One experiment: a backbone, optionally pre-trained by a method, then
/// evaluated on downstream tasks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name of the experiment; runs go to `<output_dir>/<name>/<timestamp>`.
    pub name: String,
    /// Free text describing the experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Experiment files this one builds on, relative to this file. Later
    /// files and this file override earlier ones.
    /// (Read from each file by the loader; kept here so that it is in the schema.)
    #[serde(default, skip_serializing)]
    #[schemars(with = "Extends")]
    #[allow(dead_code)]
    pub extends: serde_json::Value,
    /// Seed of everything random: initialisation, data order, augmentation.
    #[serde(default)]
    pub seed: u64,
    /// `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    #[schemars(regex(pattern = r"^(auto|cpu|cuda(:[0-9]+)?)$"))]
    pub device: String,
    /// Extra folders to load plugins from, relative to the file that sets them.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// Where run directories are created, relative to the working directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The backbone under study.
    pub backbone: BackboneSpec,
    /// Self-supervised pre-training; omit to evaluate the initial backbone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<Pretrain>,
    /// Downstream evaluations, run in order after pre-training.
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
}

/// `extends:` takes one path or a list of paths.
#[allow(dead_code)]
#[derive(JsonSchema)]
#[serde(untagged)]
enum Extends {
    One(String),
    Many(Vec<String>),
}

fn default_device() -> String {
    "auto".into()
}

fn default_output_dir() -> PathBuf {
    "runs".into()
}

/// A registered component and its parameters.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Registered name (see `runner plugins`).
    pub name: String,
    /// Parameters, typed by the component.
    #[serde(default = "empty_params")]
    pub params: serde_json::Value,
}

fn empty_params() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// The backbone: a registered component, optionally initialised from a
/// PyTorch or Visage checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackboneSpec {
    /// Registered name (see `runner plugins`).
    pub name: String,
    /// Parameters, typed by the backbone.
    #[serde(default = "empty_params")]
    pub params: serde_json::Value,
    /// Pretrained weights loaded after construction (path relative to the
    /// file that sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightsSpec>,
    /// A finished Visage run's directory (relative to the working
    /// directory, as `output_dir`): its pre-trained backbone
    /// (`backbone.safetensors`) is loaded, and its `backbone.json` must name
    /// the same backbone. With no `pretrain` section, this is how a run
    /// scores another run's backbone. Not with `weights`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_run: Option<PathBuf>,
}

impl Component {
    /// A component with default parameters.
    pub fn named(name: &str) -> Self {
        Component {
            name: name.into(),
            params: empty_params(),
        }
    }
}

/// Self-supervised pre-training.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pretrain {
    /// The self-supervised method.
    pub method: Component,
    /// Unlabelled training data (its train split is read).
    pub dataset: Component,
    /// Applied in order to every sample.
    #[serde(default)]
    pub augmentations: Vec<Component>,
    /// Extra augmented views of every sample for multi-view methods (e.g.
    /// `[{count: 2, augmentations: [...]}, {count: 8, augmentations: [...]}]`
    /// for DINO's global and local crops); a method finds them in
    /// `Batch::views`, group by group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<Views>,
    /// Optimisation steps.
    pub steps: u64,
    /// Samples per micro-batch; a step sees `batch_size * accumulate`
    /// (at least 1, at most the dataset's size).
    #[serde(deserialize_with = "check::positive")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed before each optimiser step
    /// (gradient accumulation); the loss is averaged over them.
    #[serde(default = "one", deserialize_with = "check::positive")]
    #[schemars(range(min = 1))]
    pub accumulate: u32,
    /// Arithmetic of the forward pass: `fp32`; `bf16` (autocast to bfloat16,
    /// on the CPU or CUDA); or `fp16` (CUDA autocast to float16 with dynamic
    /// loss scaling). Backward passes, optimiser steps and evaluation stay
    /// in float32.
    #[serde(default)]
    pub precision: Precision,
    /// Fill each batch with runs of this many pictures of one identity
    /// (P x K sampling): a batch of `batch_size` then holds
    /// `batch_size / per_identity` people, and a contrastive method's
    /// in-batch negatives share the anchor's identity, as frames of one
    /// video do in PCL's VoxCeleb batches. The dataset must know each
    /// sample's identity without reading it (`synthface` does). Absent: a
    /// uniform shuffle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_identity: Option<std::num::NonZeroUsize>,
    /// Threads that decode and augment batches ahead of the training step
    /// (0: on the training thread; at most 256). Results are identical for
    /// any value.
    #[serde(default = "default_workers", deserialize_with = "check::int_in::<_, _, 0, 256>")]
    #[schemars(range(max = 256))]
    pub workers: usize,
    /// Batches prepared ahead of the training step, at most (>= 1; bounds
    /// the loader's memory).
    #[serde(default = "default_prefetch", deserialize_with = "check::positive")]
    #[schemars(range(min = 1))]
    pub prefetch: usize,
    /// Clip the global gradient norm to this value before each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// The optimiser (`sgd`, `adam`, `adamw`, or a plugin's).
    pub optimizer: Component,
    /// The learning-rate schedule.
    #[serde(default = "default_scheduler")]
    pub scheduler: Component,
    /// Log a line every this many steps when the output is not a terminal.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Write a checkpoint every this many steps (0: only at the end).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Steps with a non-finite loss that may be skipped (no update) before
    /// the run stops.
    #[serde(default)]
    pub skip_nonfinite: u32,
    /// How many checkpoints to keep.
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// Watch the representation during pre-training with a kNN classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn_monitor: Option<KnnMonitor>,
}

/// A group of extra views: `count` views, each made by `augmentations`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Views {
    /// Number of views.
    pub count: usize,
    /// The chain that makes each view from the augmented sample.
    pub augmentations: Vec<Component>,
    /// Positions in `augmentations` whose random draw is shared: step `k`
    /// listed here gets one seed per sample, the same in every view of
    /// every group that lists `k`. PCL's two distance crops are two groups
    /// with `shared_steps: [0]` and `distance_crop` views 0 and 1 first, so
    /// that they take two different quadrants of one draw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_steps: Vec<usize>,
}

/// A kNN monitor: every `every` steps, the backbone's `feature` of the
/// dataset's train split is the memory bank, and its test split is
/// classified by a cosine-similarity kNN vote (InstDisc's weighting,
/// temperature 0.07). The top-1 accuracy goes to metrics.jsonl and
/// TensorBoard as `knn/<label>`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnnMonitor {
    /// Labelled data.
    pub dataset: Component,
    /// The integer label to classify (e.g. `expression`, `identity`).
    pub label: String,
    /// Steps between measurements (and at the last step).
    #[serde(default = "default_knn_every")]
    pub every: u64,
    /// Neighbours.
    #[serde(default = "default_knn_k")]
    pub k: i64,
    /// Backbone output to use.
    #[serde(default = "default_output")]
    pub feature: String,
    /// At most this many samples of each split.
    #[serde(default = "default_knn_samples")]
    pub max_samples: usize,
}

fn default_knn_every() -> u64 {
    100
}

fn default_knn_k() -> i64 {
    20
}

fn default_knn_samples() -> usize {
    2000
}

fn one() -> u32 {
    1
}

fn default_workers() -> usize {
    2
}

fn default_prefetch() -> usize {
    4
}

fn default_checkpoint_every() -> u64 {
    100
}

fn default_keep() -> usize {
    2
}

fn default_scheduler() -> Component {
    Component::named("constant")
}

fn default_log_every() -> u64 {
    10
}

/// One downstream evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// The task.
    pub task: Component,
    /// How the backbone is used.
    pub protocol: Protocol,
    /// Labelled data: its train split trains the head, its test split is scored.
    pub dataset: Component,
    /// Applied in order to every sample of the train split when the task
    /// reads it in batches (e.g. fine-tuning's random crops and flips).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub augmentations: Vec<Component>,
    /// Applied in order to every sample of the test split (e.g. a centre
    /// crop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_augmentations: Vec<Component>,
    /// Loader threads that decode and augment the task's batches (0: the
    /// evaluating thread; at most 256). Results are identical for any value.
    #[serde(default = "default_workers", deserialize_with = "check::int_in::<_, _, 0, 256>")]
    #[schemars(range(max = 256))]
    pub workers: usize,
    /// What the task's head reads: a backbone output (`pooled`, `cls`,
    /// `trunk`, ...) or `{blocks: [...]}`, intermediate blocks or stages.
    #[serde(default = "default_feature")]
    pub feature: Feature,
    /// Metrics to report instead of the task's own (empty: the task's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Component>,
    /// Also evaluate the randomly initialised backbone under the same
    /// protocol, as a baseline.
    #[serde(default = "yes")]
    pub random_init: bool,
    /// Also train the same architecture from random initialisation end to
    /// end on the task (the `fine_tune` protocol): the supervised upper
    /// bound.
    #[serde(default)]
    pub supervised: bool,
    /// The task's parameters for the supervised twin, in place of
    /// `task.params` (e.g. a fine-tuning recipe of a few epochs beside a
    /// linear probe's 300); default: `task.params`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervised_params: Option<serde_json::Value>,
}

fn default_output() -> String {
    visage_core::backbone::POOLED.into()
}

fn default_feature() -> Feature {
    Feature::Output(visage_core::backbone::POOLED.into())
}

fn yes() -> bool {
    true
}

/// Where the experiment names a component: key path and kind.
pub struct ComponentSite<'a> {
    /// Key path, e.g. `["pretrain", "augmentations", "1"]`.
    pub path: Vec<String>,
    /// What kind of component must be registered under the name.
    pub kind: Kind,
    /// The component's registered name.
    pub name: &'a str,
    /// The component's parameters.
    pub params: &'a mut serde_json::Value,
}

impl Experiment {
    /// Every component the experiment names, with its key path and kind.
    pub fn components_mut<'a>(&'a mut self) -> Vec<ComponentSite<'a>> {
        let p = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let site = |path: Vec<String>, kind: Kind, c: &'a mut Component| ComponentSite {
            path,
            kind,
            name: &c.name,
            params: &mut c.params,
        };
        let mut out = vec![ComponentSite {
            path: p(&["backbone"]),
            kind: Kind::Backbone,
            name: &self.backbone.name,
            params: &mut self.backbone.params,
        }];
        if let Some(pre) = &mut self.pretrain {
            out.push(site(p(&["pretrain", "method"]), Kind::Method, &mut pre.method));
            out.push(site(p(&["pretrain", "dataset"]), Kind::Dataset, &mut pre.dataset));
            for (i, a) in pre.augmentations.iter_mut().enumerate() {
                out.push(site(
                    p(&["pretrain", "augmentations", &i.to_string()]),
                    Kind::Augmentation,
                    a,
                ));
            }
            for (g, group) in pre.views.iter_mut().enumerate() {
                for (k, a) in group.augmentations.iter_mut().enumerate() {
                    let path = p(&["pretrain", "views", &g.to_string(), "augmentations", &k.to_string()]);
                    out.push(site(path, Kind::Augmentation, a));
                }
            }
            out.push(site(p(&["pretrain", "optimizer"]), Kind::Optimizer, &mut pre.optimizer));
            out.push(site(p(&["pretrain", "scheduler"]), Kind::Scheduler, &mut pre.scheduler));
            if let Some(knn) = &mut pre.knn_monitor {
                out.push(site(
                    p(&["pretrain", "knn_monitor", "dataset"]),
                    Kind::Dataset,
                    &mut knn.dataset,
                ));
            }
        }
        for (i, e) in self.evaluations.iter_mut().enumerate() {
            let i = i.to_string();
            out.push(site(p(&["evaluations", &i, "task"]), Kind::Task, &mut e.task));
            out.push(site(p(&["evaluations", &i, "dataset"]), Kind::Dataset, &mut e.dataset));
            for (key, chain) in [
                ("augmentations", &mut e.augmentations),
                ("test_augmentations", &mut e.test_augmentations),
            ] {
                for (k, a) in chain.iter_mut().enumerate() {
                    out.push(site(
                        p(&["evaluations", &i, key, &k.to_string()]),
                        Kind::Augmentation,
                        a,
                    ));
                }
            }
            for (j, m) in e.metrics.iter_mut().enumerate() {
                out.push(site(
                    p(&["evaluations", &i, "metrics", &j.to_string()]),
                    Kind::Metric,
                    m,
                ));
            }
        }
        out
    }
}
