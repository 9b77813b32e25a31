//! What fine-tuning adds to `visage_tasks::fit`'s training steps: mixup of
//! the batch ([`crate::mixup`]) and LAFS's landmark-position regulariser
//! ([`crate::landmark_regularisation`]), logged as the loss term
//! `landmarks`.

use visage_core::backbone::Backbone;
use visage_core::method::Losses;
use visage_core::{Batch, Result};
use visage_tasks::fit::FitHooks;

use crate::landmark_regularisation::LandmarkRegularisationParams;
use crate::mixup::{mix, MixupParams};

/// The fr task's hooks of one fine-tuning.
pub struct FineTuneHooks<'a> {
    /// Mixup, when asked for.
    pub mixup: Option<&'a MixupParams>,
    /// The landmark regularisation, when asked for.
    pub landmarks: Option<&'a LandmarkRegularisationParams>,
    /// The frozen pre-trained backbone (the regulariser's reference).
    pub reference: &'a dyn Backbone,
    /// The identity label (mixup's partners).
    pub identity: &'a str,
    /// The evaluation's seed (mixup's draws).
    pub seed: u64,
}

impl FitHooks for FineTuneHooks<'_> {
    fn batch(&self, batch: &Batch, step: u64) -> Result<Option<Batch>> {
        match self.mixup.and_then(|m| m.draw(self.seed, step)) {
            Some(lam) => Ok(Some(mix(batch, self.identity, lam)?)),
            None => Ok(None),
        }
    }

    fn losses(&self, tuned: &dyn Backbone, batch: &Batch, epoch: u64) -> Result<Losses> {
        let mut losses = Losses::default();
        if let Some(landmarks) = self.landmarks {
            if let Some(term) = landmarks.term(self.reference, tuned, &batch.images, epoch)? {
                losses.push("landmarks", term);
            }
        }
        Ok(losses)
    }
}
