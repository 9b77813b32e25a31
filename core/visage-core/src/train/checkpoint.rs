//! Checkpoints: model and method variables (teachers and EMA copies
//! included), optimiser state, the step and the learner's own state,
//! written atomically under `<dir>/checkpoints/step-NNNNNNNN/`, the last K
//! kept, `checkpoints/latest` naming the newest complete one.
//!
//! Data order and augmentation are functions of (seed, epoch, index), so the
//! step alone fixes the data position: a resumed run sees the same batches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::fs::{io_error, write_atomic};
use crate::optim::{GradScaler, OptimizerState};
use crate::optimizer::Optimizer;
use crate::{Error, Result};

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Steps completed.
    pub step: u64,
    /// Loss terms of the first step.
    pub first_losses: BTreeMap<String, f64>,
    /// Loss terms of the last completed step.
    pub last_losses: BTreeMap<String, f64>,
    /// The fp16 loss scaler, when training in fp16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scaler: Option<GradScaler>,
    /// Non-finite steps skipped so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// The learner's own state ([`super::Learner::state`]).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub learner: serde_json::Value,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The checkpoint folder of a training run.
pub struct Checkpoints {
    dir: PathBuf,
    keep: usize,
}

impl Checkpoints {
    /// Checkpoints under `<dir>/checkpoints`, keeping the last `keep`.
    pub fn new(dir: &Path, keep: usize) -> Result<Self> {
        let dir = dir.join("checkpoints");
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        // A process killed while writing leaves a temporary folder behind.
        for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(Checkpoints { dir, keep: keep.max(1) })
    }

    /// Writes a checkpoint atomically (a temporary folder renamed into place,
    /// then the `latest` pointer), and removes the oldest beyond `keep`.
    pub fn save(&self, vs: &nn::VarStore, optimizer: &dyn Optimizer, progress: &Progress) -> Result<PathBuf> {
        let name = format!("step-{:08}", progress.step);
        let tmp = self.dir.join(format!(".tmp-{name}"));
        std::fs::create_dir_all(&tmp).map_err(io_error(&tmp))?;
        vs.save(tmp.join("model.safetensors"))?;
        let state = optimizer.state()?;
        let buffers: Vec<(&str, &Tensor)> = state.buffers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Tensor::write_safetensors(&buffers, tmp.join("optimizer.safetensors"))?;
        let meta = serde_json::json!({ "progress": progress, "optimizer_step": state.step });
        let text = serde_json::to_string_pretty(&meta).map_err(Error::msg)?;
        write_atomic(&tmp.join("state.json"), text.as_bytes())?;
        let done = self.dir.join(&name);
        if done.exists() {
            std::fs::remove_dir_all(&done).map_err(io_error(&done))?;
        }
        std::fs::rename(&tmp, &done).map_err(io_error(&done))?;
        write_atomic(&self.dir.join("latest"), name.as_bytes())?;
        self.prune()?;
        Ok(done)
    }

    fn prune(&self) -> Result<()> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(io_error(&self.dir))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        names.sort();
        let excess = names.len().saturating_sub(self.keep);
        for name in &names[..excess] {
            let path = self.dir.join(name);
            std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
        }
        Ok(())
    }

    /// The newest complete checkpoint, if any.
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        let pointer = self.dir.join("latest");
        match std::fs::read_to_string(&pointer) {
            Ok(name) => Ok(Some(self.dir.join(name.trim()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&pointer)(e)),
        }
    }

    /// Restores variables and optimiser state from `checkpoint`.
    pub fn load(&self, checkpoint: &Path, vs: &mut nn::VarStore, optimizer: &mut dyn Optimizer) -> Result<Progress> {
        let model = checkpoint.join("model.safetensors");
        vs.load(&model)
            .map_err(|e| Error::msg(format!("{}: cannot restore the model: {e}", model.display())))?;
        let meta_path = checkpoint.join("state.json");
        let bytes = std::fs::read(&meta_path).map_err(io_error(&meta_path))?;
        let bad = |what: &str| Error::msg(format!("{}: {what}", meta_path.display()));
        let meta: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(&format!("not a checkpoint state: {e}")))?;
        let progress: Progress =
            serde_json::from_value(meta["progress"].clone()).map_err(|e| bad(&format!("`progress`: {e}")))?;
        let opt_path = checkpoint.join("optimizer.safetensors");
        let buffers = Tensor::read_safetensors(&opt_path)
            .map_err(|e| Error::msg(format!("{}: cannot read: {e}", opt_path.display())))?;
        let step = meta["optimizer_step"]
            .as_u64()
            .ok_or_else(|| bad("`optimizer_step`: expected a non-negative integer"))?;
        optimizer
            .load_state(OptimizerState {
                step,
                buffers: buffers.into_iter().collect(),
            })
            .map_err(|e| Error::msg(format!("{}: cannot restore the optimiser: {e}", opt_path.display())))?;
        Ok(progress)
    }
}
