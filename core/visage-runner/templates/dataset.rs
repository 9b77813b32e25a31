//! Visage plugin `{{name}}`: a dataset. Registered as `{{name}}`.
//!
//! Solid-colour images labelled `class` by their dominant channel (0 red,
//! 1 green, 2 blue). Replace `get` with your loader; keep it a pure function
//! of the index.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{Dataset, DatasetContext, DatasetInfo, Split};
use visage_core::rng::Rng;
use visage_core::tch::{Kind, Tensor};
use visage_core::{declare_plugin, Registry, Result, Sample};

/// Parameters, checked before anything is built.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Samples per split.
    #[serde(default = "default_count")]
    pub count: usize,
    /// Image side in pixels.
    #[serde(default = "default_resolution")]
    pub resolution: i64,
}

fn default_count() -> usize {
    256
}
fn default_resolution() -> i64 {
    16
}

/// The dataset.
pub struct Colours {
    params: Params,
    seed: [u64; 2],
}

impl Colours {
    fn new(params: Params, ctx: &DatasetContext) -> Result<Self> {
        let split = if ctx.split == Split::Train { 0 } else { 1 };
        Ok(Colours { params, seed: [ctx.seed, split] })
    }
}

impl Dataset for Colours {
    fn len(&self) -> usize {
        self.params.count
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let mut rng = Rng::new(&[self.seed[0], self.seed[1], index as u64]);
        let rgb: Vec<f32> = (0..3).map(|_| rng.uniform() as f32).collect();
        let class = (0..3).max_by(|&a, &b| rgb[a].total_cmp(&rgb[b])).unwrap_or(0) as i64;
        let side = self.params.resolution;
        let image = Tensor::from_slice(&rgb).view([3, 1, 1]).expand([3, side, side], false).to_kind(Kind::Float).contiguous();
        Ok(Sample::new(image).with_label("class", Tensor::from(class)))
    }

    // What the samples carry: tasks check it before anything runs.
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec!["class".into()],
            classes: Some(vec!["red".into(), "green".into(), "blue".into()]),
            ..DatasetInfo::default()
        }
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.dataset("{{name}}", Colours::new)
}

declare_plugin!(name: "{{name}}", register: register);
