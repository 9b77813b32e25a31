//! The one feature-extraction loop: a frozen backbone over batches, one
//! output and the labels kept, on the CPU. Every task's frozen pass and
//! the pre-training kNN monitor go through it.

use std::collections::BTreeMap;

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
    let _no_grad = tch::no_grad_guard();
    let mut features = vec![];
    let mut kept: BTreeMap<String, Vec<Tensor>> = labels.iter().map(|l| (l.to_string(), vec![])).collect();
    for batch in batches {
        let batch = batch?.to_device(device);
        let out = backbone.forward(&batch.images, false)?;
        features.push(feature(&out, output)?.to_device(Device::Cpu));
        for (name, parts) in kept.iter_mut() {
            parts.push(batch.label(name)?.to_device(Device::Cpu));
        }
    }
    if features.is_empty() {
        return Err(Error::msg("no samples to extract features from (the split is empty)"));
    }
    Ok(Extracted {
        features: Tensor::cat(&features, 0),
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
