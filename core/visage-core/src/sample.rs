//! Samples and batches.

use std::collections::BTreeMap;

use tch::{Device, Tensor};

use crate::{Error, Result};

/// One sample: an image `[C, H, W]` (float, 0..1) and named labels.
#[derive(Debug)]
pub struct Sample {
    /// The image, channels first.
    pub image: Tensor,
    /// Labels by name (`class`, `identity`, `landmarks`, ...).
    pub labels: BTreeMap<String, Tensor>,
    /// Extra augmented views of the image (multi-view methods: DINO/LAFS
    /// global and local crops), in the order of the loader's view groups.
    pub views: Vec<Tensor>,
}

impl Sample {
    /// A sample with no labels.
    pub fn new(image: Tensor) -> Self {
        Sample {
            image,
            labels: BTreeMap::new(),
            views: vec![],
        }
    }

    /// Adds a label.
    pub fn with_label(mut self, name: impl Into<String>, value: Tensor) -> Self {
        self.labels.insert(name.into(), value);
        self
    }
}

/// A batch: images `[N, C, H, W]` and labels stacked along a new first axis.
#[derive(Debug)]
pub struct Batch {
    /// The images.
    pub images: Tensor,
    /// Stacked labels by name.
    pub labels: BTreeMap<String, Tensor>,
    /// The samples' extra views, each stacked `[N, C, h, w]` (sizes may
    /// differ between views).
    pub views: Vec<Tensor>,
}

impl Batch {
    /// Stacks samples. Every sample must carry the same label names and
    /// shapes.
    pub fn collate(samples: Vec<Sample>) -> Result<Batch> {
        let first = samples
            .first()
            .ok_or_else(|| Error::msg("cannot collate an empty batch"))?;
        let names: Vec<String> = first.labels.keys().cloned().collect();
        let shape = first.image.size();
        let view_shapes: Vec<Vec<i64>> = first.views.iter().map(|v| v.size()).collect();
        let mut views: Vec<Vec<Tensor>> = view_shapes.iter().map(|_| vec![]).collect();
        let mut images = Vec::with_capacity(samples.len());
        let mut labels: BTreeMap<String, Vec<Tensor>> = names.iter().map(|n| (n.clone(), vec![])).collect();
        for (i, sample) in samples.into_iter().enumerate() {
            if sample.image.size() != shape {
                return Err(Error::msg(format!(
                    "sample {i} of the batch has image shape {:?}, the first has {shape:?}",
                    sample.image.size()
                )));
            }
            images.push(sample.image);
            let shapes: Vec<Vec<i64>> = sample.views.iter().map(|v| v.size()).collect();
            if shapes != view_shapes {
                return Err(Error::msg(format!(
                    "sample {i} of the batch has views of shapes {shapes:?}, the first has {view_shapes:?}"
                )));
            }
            for (stack, view) in views.iter_mut().zip(sample.views) {
                stack.push(view);
            }
            for (name, value) in sample.labels {
                labels
                    .get_mut(&name)
                    .ok_or_else(|| Error::msg(format!("sample {i} has label `{name}` that the first sample lacks")))?
                    .push(value);
            }
        }
        let mut stacked = BTreeMap::new();
        for (name, values) in labels {
            if values.len() != images.len() {
                return Err(Error::msg(format!(
                    "label `{name}` is missing from some samples of the batch"
                )));
            }
            stacked.insert(name, Tensor::f_stack(&values, 0)?);
        }
        Ok(Batch {
            images: Tensor::f_stack(&images, 0)?,
            labels: stacked,
            views: views
                .iter()
                .map(|v| Tensor::f_stack(v, 0))
                .collect::<std::result::Result<_, _>>()?,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> i64 {
        self.images.size()[0]
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Label `name`, with an error listing the labels that exist.
    pub fn label(&self, name: &str) -> Result<&Tensor> {
        self.labels.get(name).ok_or_else(|| {
            let have: Vec<&str> = self.labels.keys().map(String::as_str).collect();
            Error::msg(format!("the batch has no label `{name}` (it has: {})", have.join(", ")))
        })
    }

    /// The same batch on `device`.
    pub fn to_device(&self, device: Device) -> Batch {
        Batch {
            images: self.images.to_device(device),
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.to_device(device)))
                .collect(),
            views: self.views.iter().map(|v| v.to_device(device)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn collate_stacks_images_and_labels() {
        let samples = (0..3)
            .map(|i| {
                Sample::new(Tensor::full([3, 4, 4], i as f64, (Kind::Float, Device::Cpu)))
                    .with_label("class", Tensor::from(i as i64))
            })
            .collect();
        let batch = Batch::collate(samples).unwrap();
        assert_eq!(batch.images.size(), vec![3, 3, 4, 4]);
        assert_eq!(
            Vec::<i64>::try_from(batch.label("class").unwrap()).unwrap(),
            vec![0, 1, 2]
        );
        assert!(batch.label("pose").unwrap_err().to_string().contains("it has: class"));
    }

    #[test]
    fn collate_rejects_mixed_shapes() {
        let a = Sample::new(Tensor::zeros([3, 4, 4], (Kind::Float, Device::Cpu)));
        let b = Sample::new(Tensor::zeros([3, 5, 4], (Kind::Float, Device::Cpu)));
        let err = Batch::collate(vec![a, b]).unwrap_err().to_string();
        assert!(err.contains("sample 1 of the batch has image shape [3, 5, 4]"), "{err}");
    }
}
