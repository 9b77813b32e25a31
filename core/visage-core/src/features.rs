//! The one feature-extraction loop: a frozen backbone over batches, what
//! a head reads ([`Feature`]) and the labels kept, on the CPU. Every task's
//! frozen pass and the pre-training kNN monitor go through it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::backbone::{feature, Backbone};
use crate::{Batch, Error, Result};

/// What [`extract`] returns: `features` `[N, ...]` as the backbone gives
/// the output, and each kept label `[N, ...]`, both on the CPU.
#[derive(Debug)]
pub struct Extracted {
    /// The backbone output, one row per sample.
    pub features: Tensor,
    /// The labels asked for, by name.
    pub labels: BTreeMap<String, Tensor>,
}

impl Extracted {
    /// The features flattened to `[N, D]`.
    pub fn flat(&self) -> Tensor {
        self.features.flatten(1, -1)
    }

    /// Label `name`, with an error naming the labels that were kept.
    pub fn label(&self, name: &str) -> Result<&Tensor> {
        self.labels.get(name).ok_or_else(|| {
            let kept: Vec<&str> = self.labels.keys().map(String::as_str).collect();
            Error::msg(format!("label `{name}` was not extracted (kept: {})", kept.join(", ")))
        })
    }
}

/// What a task's head reads from a backbone.
///
/// ```yaml
/// feature: pooled            # a named output (`pooled`, `cls`, `trunk`, ...)
/// feature: {blocks: [3, 5, 7, 11]}   # intermediate blocks or stages, 0-based
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Feature {
    /// One named output of [`Backbone::forward`].
    Output(String),
    /// The maps of these intermediate blocks or stages (0-based), in order
    /// ([`crate::backbone::Intermediates`]).
    Blocks {
        /// Block or stage indices.
        blocks: Vec<usize>,
    },
}

impl Feature {
    /// The tensors the head reads for `images`: one for an output, one map
    /// per block for blocks.
    pub fn read(&self, backbone: &dyn Backbone, images: &Tensor, train: bool) -> Result<Vec<Tensor>> {
        match self {
            Feature::Output(name) => {
                let out = backbone.forward(images, train)?;
                Ok(vec![feature(&out, name)?.shallow_clone()])
            }
            Feature::Blocks { blocks } => {
                let maps = backbone
                    .intermediate_outputs()?
                    .forward_intermediates(images, blocks, train)?;
                Ok(maps.into_iter().map(|m| m.map).collect())
            }
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Feature::Output(name) => write!(f, "{name}"),
            Feature::Blocks { blocks } => write!(f, "blocks {blocks:?}"),
        }
    }
}

/// What [`extract_inputs`] returns: each tensor the head reads `[N, ...]`
/// and each kept label `[N, ...]`, all on the CPU.
#[derive(Debug)]
pub struct ExtractedInputs {
    /// One tensor per input of the [`Feature`], one row per sample.
    pub inputs: Vec<Tensor>,
    /// The labels asked for, by name.
    pub labels: BTreeMap<String, Tensor>,
}

/// Runs `backbone` in evaluation mode without gradient over `batches`
/// (moved to `device`), keeping its output `output` and the labels
/// `labels` of every sample, in order. An empty stream is an error.
pub fn extract(
    backbone: &dyn Backbone,
    batches: impl IntoIterator<Item = Result<Batch>>,
    output: &str,
    labels: &[&str],
    device: Device,
) -> Result<Extracted> {
    let mut all = extract_inputs(backbone, batches, &Feature::Output(output.into()), labels, device)?;
    Ok(Extracted {
        features: all.inputs.remove(0),
        labels: all.labels,
    })
}

/// [`extract`] for any [`Feature`]: the one loop.
pub fn extract_inputs(
    backbone: &dyn Backbone,
    batches: impl IntoIterator<Item = Result<Batch>>,
    feature: &Feature,
    labels: &[&str],
    device: Device,
) -> Result<ExtractedInputs> {
    let _no_grad = tch::no_grad_guard();
    let mut inputs: Vec<Vec<Tensor>> = vec![];
    let mut kept: BTreeMap<String, Vec<Tensor>> = labels.iter().map(|l| (l.to_string(), vec![])).collect();
    for batch in batches {
        let batch = batch?.to_device(device);
        let read = feature.read(backbone, &batch.images, false)?;
        inputs.resize_with(read.len(), Vec::new);
        for (parts, t) in inputs.iter_mut().zip(read) {
            parts.push(t.to_device(Device::Cpu));
        }
        for (name, parts) in kept.iter_mut() {
            parts.push(batch.label(name)?.to_device(Device::Cpu));
        }
    }
    if inputs.is_empty() {
        return Err(Error::msg("no samples to extract features from (the split is empty)"));
    }
    Ok(ExtractedInputs {
        inputs: inputs.iter().map(|parts| Tensor::cat(parts, 0)).collect(),
        labels: kept.into_iter().map(|(k, v)| (k, Tensor::cat(&v, 0))).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::BackboneContext;
    use crate::{Registry, Sample};
    use tch::{nn, Kind};

    #[test]
    fn one_row_per_sample_in_order_with_the_labels_asked_for() {
        let mut registry = Registry::new();
        crate::builtin::register(&mut registry).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let ctx = BackboneContext {
            vs: vs.root(),
            in_channels: 3,
        };
        let resnet = registry
            .build_backbone("resnet", r#"{"width": 4, "small_stem": true}"#, &ctx)
            .unwrap();
        let images: Vec<Tensor> = (0..5)
            .map(|_| Tensor::rand([3, 8, 8], (Kind::Float, Device::Cpu)))
            .collect();
        let batch = |range: std::ops::Range<usize>| {
            let samples = range
                .map(|i| Sample::new(images[i].shallow_clone()).with_label("id", Tensor::from(i as i64)))
                .collect();
            Batch::collate(samples)
        };
        let out = extract(
            resnet.as_ref(),
            [batch(0..3), batch(3..5)],
            "pooled",
            &["id"],
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(out.flat().size(), [5, 32]);
        assert_eq!(Vec::<i64>::try_from(out.label("id").unwrap()).unwrap(), [0, 1, 2, 3, 4]);
        // Row 4 is sample 4's features, computed alone.
        let alone = resnet
            .forward(&images[4].unsqueeze(0), false)
            .unwrap()
            .remove("pooled")
            .unwrap();
        assert!((out.features.get(4) - alone.get(0)).abs().max().double_value(&[]) < 1e-5);
        let err = out.label("class").unwrap_err().to_string();
        assert_eq!(err, "label `class` was not extracted (kept: id)");
        let none: Vec<Result<Batch>> = vec![];
        assert!(extract(resnet.as_ref(), none, "pooled", &[], Device::Cpu).is_err());
    }
}
