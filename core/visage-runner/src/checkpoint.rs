//! Checkpoints: model and method variables, optimiser state and the step,
//! written atomically under `<run>/checkpoints/step-NNNNNNNN/`, the last K
//! kept, `checkpoints/latest` naming the newest complete one.
//!
//! Data order and augmentation are functions of (seed, epoch, index), so the
//! step alone fixes the data position: a resumed run sees the same batches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use visage_core::fs::write_atomic;
use visage_core::optim::OptimizerState;
use visage_core::optimizer::Optimizer;

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
    pub loss_scaler: Option<visage_core::optim::GradScaler>,
}

/// The checkpoint folder of a run.
pub struct Checkpoints {
    dir: PathBuf,
    keep: usize,
    resume: bool,
}

impl Checkpoints {
    /// Checkpoints under `<run_dir>/checkpoints`, keeping the last `keep`;
    /// `resume` says whether training continues from the newest one.
    pub fn new(run_dir: &Path, keep: usize, resume: bool) -> anyhow::Result<Self> {
        let dir = run_dir.join("checkpoints");
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        // A process killed while writing leaves a temporary folder behind.
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(Checkpoints {
            dir,
            keep: keep.max(1),
            resume,
        })
    }

    /// Writes a checkpoint atomically (a temporary folder renamed into place,
    /// then the `latest` pointer), and removes the oldest beyond `keep`.
    pub fn save(&self, vs: &nn::VarStore, optimizer: &dyn Optimizer, progress: &Progress) -> anyhow::Result<PathBuf> {
        let name = format!("step-{:08}", progress.step);
        let tmp = self.dir.join(format!(".tmp-{name}"));
        std::fs::create_dir_all(&tmp)?;
        vs.save(tmp.join("model.safetensors"))?;
        let state = optimizer.state()?;
        let buffers: Vec<(&str, &Tensor)> = state.buffers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Tensor::write_safetensors(&buffers, tmp.join("optimizer.safetensors"))?;
        let meta = serde_json::json!({ "progress": progress, "optimizer_step": state.step });
        write_atomic(&tmp.join("state.json"), serde_json::to_string_pretty(&meta)?.as_bytes())?;
        let done = self.dir.join(&name);
        if done.exists() {
            std::fs::remove_dir_all(&done)?;
        }
        std::fs::rename(&tmp, &done)?;
        write_atomic(&self.dir.join("latest"), name.as_bytes())?;
        self.prune()?;
        Ok(done)
    }

    fn prune(&self) -> anyhow::Result<()> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        names.sort();
        let excess = names.len().saturating_sub(self.keep);
        for name in &names[..excess] {
            std::fs::remove_dir_all(self.dir.join(name))?;
        }
        Ok(())
    }

    /// The run directory the checkpoints belong to.
    pub fn run_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("."))
    }

    /// The checkpoint to continue from: the newest, when resuming.
    pub fn resume_from(&self) -> anyhow::Result<Option<PathBuf>> {
        if self.resume {
            self.latest()
        } else {
            Ok(None)
        }
    }

    /// The newest complete checkpoint, if any.
    pub fn latest(&self) -> anyhow::Result<Option<PathBuf>> {
        match std::fs::read_to_string(self.dir.join("latest")) {
            Ok(name) => Ok(Some(self.dir.join(name.trim()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read", self.dir.join("latest").display())),
        }
    }

    /// Restores variables and optimiser state from `checkpoint`.
    pub fn load(
        &self,
        checkpoint: &Path,
        vs: &mut nn::VarStore,
        optimizer: &mut dyn Optimizer,
    ) -> anyhow::Result<Progress> {
        let model = checkpoint.join("model.safetensors");
        vs.load(&model)
            .with_context(|| format!("{}: cannot restore the model", model.display()))?;
        let meta_path = checkpoint.join("state.json");
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path)?)
            .with_context(|| format!("{}: not a checkpoint state", meta_path.display()))?;
        let progress: Progress = serde_json::from_value(meta["progress"].clone())
            .with_context(|| format!("{}: `progress`", meta_path.display()))?;
        let opt_path = checkpoint.join("optimizer.safetensors");
        let buffers =
            Tensor::read_safetensors(&opt_path).with_context(|| format!("{}: cannot read", opt_path.display()))?;
        let step = meta["optimizer_step"]
            .as_u64()
            .with_context(|| format!("{}: `optimizer_step`", meta_path.display()))?;
        optimizer
            .load_state(OptimizerState {
                step,
                buffers: buffers.into_iter().collect(),
            })
            .with_context(|| format!("{}: cannot restore the optimiser", opt_path.display()))?;
        Ok(progress)
    }
}
