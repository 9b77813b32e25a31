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
    /// Extra augmented views (multi-view methods: DINO/LAFS global and
    /// local crops, PCL's distance crops), in the order of the loader's view
    /// groups. Each view is a sample of its own: its image and the labels
    /// its augmentations moved with it (landmarks, masks, pose), without
    /// views of its own.
    pub views: Vec<Sample>,
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
    /// The samples' extra views, view by view: `views[v].images` stacks
    /// view `v` of every sample `[N, C, h, w]` (sizes may differ between
    /// views) and `views[v].labels` its labels, moved with the view's
    /// pixels.
    pub views: Vec<Batch>,
}

impl Batch {
    /// Stacks samples. Every sample must carry the same label names and
    /// shapes.
    pub fn collate(samples: Vec<Sample>) -> Result<Batch> {
        Batch::collate_named(samples, &|i| format!("sample {i} of the batch"))
    }

    /// [`Batch::collate`], naming sample `i` in errors as `name(i)` (the
    /// data loader names the file it was read from).
    pub fn collate_named(samples: Vec<Sample>, name: &dyn Fn(usize) -> String) -> Result<Batch> {
        let first = samples
            .first()
            .ok_or_else(|| Error::msg("cannot collate an empty batch"))?;
        let names: Vec<String> = first.labels.keys().cloned().collect();
        let shape = first.image.size();
        let view_count = first.views.len();
        let mut views: Vec<Vec<Sample>> = (0..view_count).map(|_| vec![]).collect();
        let mut images = Vec::with_capacity(samples.len());
        let mut labels: BTreeMap<String, Vec<Tensor>> = names.iter().map(|n| (n.clone(), vec![])).collect();
        for (i, sample) in samples.into_iter().enumerate() {
            if sample.image.size() != shape {
                return Err(Error::msg(format!(
                    "{} has image shape {:?}, the first of its batch ({}) has {shape:?}; \
                     resize the images (a `resize` augmentation, or the dataset's `resize`)",
                    name(i),
                    sample.image.size(),
                    name(0)
                )));
            }
            images.push(sample.image);
            if sample.views.len() != view_count {
                return Err(Error::msg(format!(
                    "{} has {} views, the first has {view_count}",
                    name(i),
                    sample.views.len()
                )));
            }
            for (stack, view) in views.iter_mut().zip(sample.views) {
                stack.push(view);
            }
            for (label, value) in sample.labels {
                labels
                    .get_mut(&label)
                    .ok_or_else(|| {
                        Error::msg(format!(
                            "{} has label `{label}` that the first of its batch lacks",
                            name(i)
                        ))
                    })?
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
                .into_iter()
                .enumerate()
                .map(|(v, samples)| {
                    Batch::collate_named(samples, name).map_err(|e| Error::msg(format!("view {v}: {e}")))
                })
                .collect::<Result<_>>()?,
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

    /// The same batch sharing its tensors' storage (views and labels
    /// included), as [`Tensor::shallow_clone`]: to feed one batch to many
    /// steps.
    pub fn shallow_clone(&self) -> Batch {
        match self.map_tensors(&|t| Ok::<_, std::convert::Infallible>(t.shallow_clone())) {
            Ok(batch) => batch,
            Err(never) => match never {},
        }
    }

    /// The same batch, views included, on `device`; a failed allocation
    /// there (CUDA out of memory) is an error.
    pub fn f_to_device(&self, device: Device) -> Result<Batch> {
        Ok(self.map_tensors(&|t| t.f_to_device(device))?)
    }

    /// The same batch, views included, on `device`.
    pub fn to_device(&self, device: Device) -> Batch {
        match self.map_tensors(&|t| Ok::<_, std::convert::Infallible>(t.to_device(device))) {
            Ok(batch) => batch,
            Err(never) => match never {},
        }
    }

    /// The same batch with every tensor (images, labels, views) replaced by
    /// `f` of it.
    pub(crate) fn map_tensors<E>(
        &self,
        f: &impl Fn(&Tensor) -> std::result::Result<Tensor, E>,
    ) -> std::result::Result<Batch, E> {
        Ok(Batch {
            images: f(&self.images)?,
            labels: self
                .labels
                .iter()
                .map(|(k, v)| Ok((k.clone(), f(v)?)))
                .collect::<std::result::Result<_, E>>()?,
            views: self
                .views
                .iter()
                .map(|v| v.map_tensors(f))
                .collect::<std::result::Result<_, E>>()?,
        })
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
    fn views_collate_into_batches_with_their_labels() {
        let sample = |i: i64, views: usize| {
            let mut s = Sample::new(Tensor::zeros([3, 4, 4], (Kind::Float, Device::Cpu)));
            s.views = (0..views)
                .map(|v| {
                    Sample::new(Tensor::zeros([3, 2, 2], (Kind::Float, Device::Cpu)))
                        .with_label("class", Tensor::from(10 * i + v as i64))
                })
                .collect();
            s
        };
        let batch = Batch::collate(vec![sample(1, 2), sample(2, 2)]).unwrap();
        assert_eq!(batch.views.len(), 2);
        assert_eq!(batch.views[1].images.size(), vec![2, 3, 2, 2]);
        assert_eq!(
            Vec::<i64>::try_from(batch.views[1].label("class").unwrap()).unwrap(),
            vec![11, 21]
        );
        let err = Batch::collate(vec![sample(1, 2), sample(2, 1)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sample 1 of the batch has 1 views, the first has 2"),
            "{err}"
        );
    }

    #[test]
    fn collate_rejects_mixed_shapes() {
        let a = Sample::new(Tensor::zeros([3, 4, 4], (Kind::Float, Device::Cpu)));
        let b = Sample::new(Tensor::zeros([3, 5, 4], (Kind::Float, Device::Cpu)));
        let err = Batch::collate(vec![a, b]).unwrap_err().to_string();
        assert!(err.contains("sample 1 of the batch has image shape [3, 5, 4]"), "{err}");
    }
}
