//! The kNN monitor of pre-training (InstDisc, Wu et al. 2018): cosine
//! similarities to a memory bank of train features, the k nearest vote with
//! weights `exp(s / 0.07)`, top-1 accuracy on the test split.

use std::sync::Arc;

use tch::{Device, Kind, Tensor};
use visage_core::backbone::Backbone;
use visage_core::data::{Loader, LoaderConfig};
use visage_core::dataset::{Dataset, DatasetContext, Split};
use visage_core::features::extract;
use visage_core::Registry;

use crate::config::experiment::KnnMonitor;

/// Temperature of the vote weights.
const TEMPERATURE: f64 = 0.07;
/// Samples per forward pass.
const BATCH: usize = 128;

/// A monitor with its data built once.
pub struct Knn {
    config: KnnMonitor,
    train: Arc<dyn Dataset>,
    test: Arc<dyn Dataset>,
}

impl Knn {
    /// Builds both splits of the monitor's dataset.
    pub fn new(registry: &Registry, config: &KnnMonitor, seed: u64) -> anyhow::Result<Self> {
        let split = |split| {
            registry.build_dataset(
                &config.dataset.name,
                &config.dataset.params.to_string(),
                &DatasetContext { split, seed },
            )
        };
        anyhow::ensure!(config.k >= 1, "pretrain.knn_monitor.k must be at least 1");
        Ok(Knn {
            config: config.clone(),
            train: Arc::from(split(Split::Train)?),
            test: Arc::from(split(Split::Test)?),
        })
    }

    /// Whether to measure after `completed` of `total` steps.
    pub fn due(&self, completed: u64, total: u64) -> bool {
        completed == total || (self.config.every > 0 && completed % self.config.every == 0)
    }

    /// The metric's name in logs.
    pub fn name(&self) -> String {
        format!("knn/{}", self.config.label)
    }

    /// Top-1 accuracy in percent.
    pub fn measure(&self, backbone: &dyn Backbone, device: Device) -> anyhow::Result<f64> {
        let (bank, bank_labels) = self.embed(&self.train, backbone, device)?;
        let (queries, labels) = self.embed(&self.test, backbone, device)?;
        let classes = bank_labels.max().int64_value(&[]).max(labels.max().int64_value(&[])) + 1;
        let k = self.config.k.min(bank.size()[0]);
        let similarity = queries.matmul(&bank.tr());
        let (top, index) = similarity.topk(k, 1, true, true);
        let weights = (top / TEMPERATURE).exp();
        let neighbour_labels = bank_labels.index_select(0, &index.flatten(0, -1)).view_as(&index);
        let votes = Tensor::zeros([queries.size()[0], classes], (Kind::Float, Device::Cpu)).scatter_add(
            1,
            &neighbour_labels,
            &weights,
        );
        let correct = votes
            .argmax(1, false)
            .eq_tensor(&labels)
            .to_kind(Kind::Double)
            .mean(Kind::Double);
        Ok(100.0 * correct.double_value(&[]))
    }

    /// L2-normalised features and labels of the first `max_samples`
    /// samples, through the one feature-extraction loop.
    fn embed(
        &self,
        data: &Arc<dyn Dataset>,
        backbone: &dyn Backbone,
        device: Device,
    ) -> anyhow::Result<(Tensor, Tensor)> {
        let n = data.len().min(self.config.max_samples);
        anyhow::ensure!(
            n > 0,
            "pretrain.knn_monitor: the dataset `{}` has an empty split",
            self.config.dataset.name
        );
        let first = Arc::new(First { data: data.clone(), n });
        let loader = Loader::new(first, Arc::from(vec![]), LoaderConfig::in_order(BATCH, 0, 0, device))?;
        let label = self.config.label.as_str();
        let out = extract(backbone, loader, &self.config.feature, &[label], device)?;
        let f = out.flat();
        let features = &f / f.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
        Ok((features, out.label(label)?.to_kind(Kind::Int64).flatten(0, -1)))
    }
}

/// The first `n` samples of a dataset.
struct First {
    data: Arc<dyn Dataset>,
    n: usize,
}

impl Dataset for First {
    fn len(&self) -> usize {
        self.n
    }
    fn get(&self, index: usize) -> visage_core::Result<visage_core::Sample> {
        self.data.get(index)
    }
}
