//! The `synthface` dataset: [`crate::render::render`] wrapped as a
//! `visage_core` dataset, converting a [`Face`] to tensors with the label
//! names and conventions of `visage_core::labels`.

use visage_core::dataset::{Dataset, DatasetContext, DatasetInfo, LandmarkLayout, Split};
use visage_core::labels;
use visage_core::tch::Tensor;
use visage_core::{Result, Sample};

use crate::params::SynthFaceParams;
use crate::render::{identity_of, render, split_len, Face};

/// The dataset for one split.
pub struct SynthFace {
    params: SynthFaceParams,
    seed: u64,
    split: Split,
}

impl SynthFace {
    /// Checks the parameters.
    pub fn new(params: SynthFaceParams, ctx: &DatasetContext) -> Result<Self> {
        params.validate()?;
        let identities = params.split_identities(ctx.split);
        tracing::debug!(
            split = ?ctx.split,
            identities = ?identities,
            samples = split_len(&params, ctx.split),
            resolution = params.resolution,
            "synthface dataset"
        );
        Ok(SynthFace {
            params,
            seed: ctx.seed,
            split: ctx.split,
        })
    }
}

/// The sample's tensors (see the module docs of `visage_core::labels`).
pub fn to_sample(face: &Face) -> Sample {
    let side = face.side as i64;
    let image = Tensor::from_slice(&face.image).view([3, side, side]);
    let parsing: Vec<i64> = face.parsing.iter().map(|&c| c as i64).collect();
    let landmarks: Vec<f32> = face.landmarks.iter().flatten().copied().collect();
    let visible: Vec<f32> = face.visible.iter().map(|&v| if v { 1.0 } else { 0.0 }).collect();
    let pose = [face.pose.yaw as f32, face.pose.pitch as f32, face.pose.roll as f32];
    Sample::new(image)
        .with_label(labels::IDENTITY, Tensor::from(face.identity as i64))
        .with_label(labels::EXPRESSION, Tensor::from(face.expression as i64))
        .with_label(labels::AU, Tensor::from_slice(&face.au()))
        .with_label(labels::POSE, Tensor::from_slice(&pose))
        .with_label(
            labels::LANDMARKS,
            Tensor::from_slice(&landmarks).view([labels::IBUG68 as i64, 2]),
        )
        .with_label(labels::LANDMARKS_VISIBLE, Tensor::from_slice(&visible))
        .with_label(labels::PARSING, Tensor::from_slice(&parsing).view([side, side]))
}

impl Dataset for SynthFace {
    fn len(&self) -> usize {
        split_len(&self.params, self.split)
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let face = render(&self.params, self.seed, self.split, index)?;
        Ok(to_sample(&face))
    }

    fn identity(&self, index: usize) -> Option<usize> {
        (index < self.len()).then(|| identity_of(&self.params, self.split, index))
    }

    fn info(&self) -> DatasetInfo {
        let names = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect());
        DatasetInfo {
            labels: [
                labels::IDENTITY,
                labels::EXPRESSION,
                labels::AU,
                labels::POSE,
                labels::LANDMARKS,
                labels::LANDMARKS_VISIBLE,
                labels::PARSING,
            ]
            .map(String::from)
            .to_vec(),
            classes: names(&labels::EXPRESSIONS),
            action_units: names(&labels::AU_NAMES),
            landmarks: Some(LandmarkLayout::ibug68(false)),
            // Identity labels run over both splits; the test split's are
            // disjoint from the train split's.
            identities: Some(self.params.identities),
            pairs: None,
            subjects: false,
            parsing_classes: names(&labels::LAPA_CLASSES),
        }
    }
}
