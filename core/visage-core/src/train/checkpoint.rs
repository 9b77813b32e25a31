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

use crate::error::torch_message;
use crate::fs::{io_error, write_atomic};
use crate::optim::{GradScaler, OptimizerState};
use crate::optimizer::Optimizer;
use crate::{Error, Result};

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Steps completed.
    pub step: u64,
    /// Each loss term at the first step that had it.
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

/// Copies every variable of `vs` from the safetensors file `model`,
/// checking that the file holds exactly the model's variables with their
/// shapes (a checkpoint of another architecture names the first that
/// differs, with both shapes).
fn restore_model(model: &Path, vs: &mut nn::VarStore) -> Result<()> {
    let cannot = |what: String| Error::msg(format!("{}: cannot restore the model: {what}", model.display()));
    let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(model)
        .map_err(|e| cannot(torch_message(&e)))?
        .into_iter()
        .collect();
    // In name order, so that the variable named is always the same one.
    let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    for (name, var) in &variables {
        let from = saved.get(name).ok_or_else(|| {
            cannot(format!(
                "`{name}` is not in the checkpoint (another model's checkpoint?)"
            ))
        })?;
        if from.size() != var.size() {
            return Err(cannot(format!(
                "`{name}` has shape {:?} in the checkpoint and {:?} in the model",
                from.size(),
                var.size()
            )));
        }
    }
    if let Some(extra) = saved.keys().find(|k| !variables.contains_key(*k)) {
        return Err(cannot(format!(
            "the checkpoint has `{extra}`, which the model does not"
        )));
    }
    tch::no_grad(|| -> Result<()> {
        for (name, var) in &variables {
            var.shallow_clone()
                .f_copy_(&saved[name])
                .map_err(|e| cannot(format!("`{name}`: {}", torch_message(&e))))?;
        }
        Ok(())
    })
}

/// The step of a checkpoint folder named `step-NNNNNNNN` (any width).
fn step_of(name: &str) -> Option<u64> {
    name.strip_prefix("step-")?.parse().ok()
}

/// Where a checkpoint to resume from was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The one `latest` names.
    Latest(PathBuf),
    /// `latest` is missing: the newest complete checkpoint folder.
    Newest(PathBuf),
    /// No checkpoint at all.
    None,
}

impl Checkpoints {
    /// Checkpoints under `<dir>/checkpoints`, keeping the last `keep`.
    /// Temporaries a killed or failed process left behind (a half-written
    /// checkpoint folder, a `latest` pointer being replaced) are removed.
    pub fn new(dir: &Path, keep: usize) -> Result<Self> {
        let dir = dir.join("checkpoints");
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(entry.path());
            } else if name.starts_with(".latest.tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Checkpoints { dir, keep: keep.max(1) })
    }

    /// Writes a checkpoint atomically (a temporary folder renamed into place,
    /// then the `latest` pointer), and removes the oldest beyond `keep`.
    /// A failed write (a full disk) removes its temporary folder and names
    /// the file that could not be written; the previous checkpoint and
    /// `latest` stay intact.
    pub fn save(&self, vs: &nn::VarStore, optimizer: &dyn Optimizer, progress: &Progress) -> Result<PathBuf> {
        let name = format!("step-{:08}", progress.step);
        let tmp = self.dir.join(format!(".tmp-{name}"));
        let written = self.write(&tmp, &name, vs, optimizer, progress);
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        written
    }

    fn write(
        &self,
        tmp: &Path,
        name: &str,
        vs: &nn::VarStore,
        optimizer: &dyn Optimizer,
        progress: &Progress,
    ) -> Result<PathBuf> {
        std::fs::create_dir_all(tmp).map_err(io_error(tmp))?;
        let model = tmp.join("model.safetensors");
        vs.save(&model).map_err(|e| {
            Error::msg(format!(
                "{}: cannot write the checkpoint: {}",
                model.display(),
                torch_message(&e)
            ))
        })?;
        let state = optimizer.state()?;
        let buffers: Vec<(&str, &Tensor)> = state.buffers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let file = tmp.join("optimizer.safetensors");
        Tensor::write_safetensors(&buffers, &file).map_err(|e| {
            Error::msg(format!(
                "{}: cannot write the checkpoint: {}",
                file.display(),
                torch_message(&e)
            ))
        })?;
        let meta = serde_json::json!({ "progress": progress, "optimizer_step": state.step });
        let text = serde_json::to_string_pretty(&meta).map_err(Error::msg)?;
        write_atomic(&tmp.join("state.json"), text.as_bytes())?;
        let done = self.dir.join(name);
        if done.exists() {
            std::fs::remove_dir_all(&done).map_err(io_error(&done))?;
        }
        std::fs::rename(tmp, &done).map_err(io_error(&done))?;
        write_atomic(&self.dir.join("latest"), name.as_bytes())?;
        self.prune()?;
        Ok(done)
    }

    /// The checkpoint folders by step, oldest first.
    fn by_step(&self) -> Result<Vec<(u64, String)>> {
        let mut steps: Vec<(u64, String)> = std::fs::read_dir(&self.dir)
            .map_err(io_error(&self.dir))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                step_of(&name).map(|s| (s, name))
            })
            .collect();
        steps.sort();
        Ok(steps)
    }

    /// Removes the oldest checkpoints beyond `keep`, by step number (not
    /// name order), never the one `latest` names.
    fn prune(&self) -> Result<()> {
        let steps = self.by_step()?;
        let latest = std::fs::read_to_string(self.dir.join("latest")).unwrap_or_default();
        let excess = steps.len().saturating_sub(self.keep);
        for (_, name) in steps.iter().take(excess).filter(|(_, n)| *n != latest.trim()) {
            let path = self.dir.join(name);
            std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
        }
        Ok(())
    }

    /// The checkpoint to resume from: the one `latest` names (which must be
    /// a `step-N` folder inside this `checkpoints/` folder), or, when
    /// `latest` is missing, the newest complete checkpoint folder.
    pub fn find(&self) -> Result<Found> {
        let pointer = self.dir.join("latest");
        match std::fs::read_to_string(&pointer) {
            Ok(name) => {
                let name = name.trim();
                if step_of(name).is_none() || name.contains('/') || name.contains('\\') {
                    return Err(Error::msg(format!(
                        "{}: expected the name of a `step-N` folder in {}, got `{name}`",
                        pointer.display(),
                        self.dir.display()
                    )));
                }
                let path = self.dir.join(name);
                if !path.join("state.json").is_file() {
                    return Err(Error::msg(format!(
                        "{}: names `{name}`, which is not a complete checkpoint (no state.json)",
                        pointer.display()
                    )));
                }
                Ok(Found::Latest(path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let complete = self
                    .by_step()?
                    .into_iter()
                    .rev()
                    .map(|(_, name)| self.dir.join(name))
                    .find(|p| {
                        ["state.json", "model.safetensors", "optimizer.safetensors"]
                            .iter()
                            .all(|f| p.join(f).is_file())
                    });
                Ok(complete.map_or(Found::None, Found::Newest))
            }
            Err(e) => Err(io_error(&pointer)(e)),
        }
    }

    /// Restores variables and optimiser state from `checkpoint` of a run
    /// of `total` steps. State that disagrees with the run (a step beyond
    /// the run's total or other than the folder's, a missing key) is an
    /// error naming the file and the key.
    pub fn load(
        &self,
        checkpoint: &Path,
        total: u64,
        vs: &mut nn::VarStore,
        optimizer: &mut dyn Optimizer,
    ) -> Result<Progress> {
        restore_model(&checkpoint.join("model.safetensors"), vs)?;
        let meta_path = checkpoint.join("state.json");
        let bytes = std::fs::read(&meta_path).map_err(io_error(&meta_path))?;
        let bad = |what: &str| Error::msg(format!("{}: {what}", meta_path.display()));
        let meta: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(&format!("not a checkpoint state: {e}")))?;
        if meta.get("progress").is_none() {
            return Err(bad("missing key `progress`"));
        }
        let progress: Progress =
            serde_json::from_value(meta["progress"].clone()).map_err(|e| bad(&format!("`progress`: {e}")))?;
        if progress.step > total {
            return Err(bad(&format!(
                "`progress.step` is {}, beyond the run's {total} steps",
                progress.step
            )));
        }
        let folder = checkpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if step_of(&folder) != Some(progress.step) {
            return Err(bad(&format!(
                "`progress.step` is {}, but the folder is `{folder}`",
                progress.step
            )));
        }
        let opt_path = checkpoint.join("optimizer.safetensors");
        let buffers = Tensor::read_safetensors(&opt_path)
            .map_err(|e| Error::msg(format!("{}: cannot read: {}", opt_path.display(), torch_message(&e))))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{single_group, Sgd, SgdConfig};
    use tch::Device;

    fn model() -> (nn::VarStore, Sgd) {
        let vs = nn::VarStore::new(Device::Cpu);
        let _w = vs.root().var("w", &[2], nn::Init::Const(1.0));
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false,
        };
        let sgd = Sgd::new(config, single_group(&vs, 0.0));
        (vs, sgd)
    }

    fn at(step: u64) -> Progress {
        Progress {
            step,
            ..Progress::default()
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("visage-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Past step 99,999,999 the names outgrow eight digits: name order
    /// would delete the newest; step order keeps it.
    #[test]
    fn pruning_follows_step_numbers_and_keeps_the_latest() {
        let dir = scratch("prune");
        let checkpoints = Checkpoints::new(&dir, 2).unwrap();
        let (vs, sgd) = model();
        for step in [99_999_998, 99_999_999, 100_000_000] {
            checkpoints.save(&vs, &sgd, &at(step)).unwrap();
        }
        let mut kept: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        kept.sort();
        assert_eq!(kept, ["latest", "step-100000000", "step-99999999"]);
        assert_eq!(
            checkpoints.find().unwrap(),
            Found::Latest(dir.join("checkpoints/step-100000000"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_latest_the_newest_complete_checkpoint_is_found() {
        let dir = scratch("find");
        let checkpoints = Checkpoints::new(&dir, 3).unwrap();
        assert_eq!(checkpoints.find().unwrap(), Found::None);
        let (vs, sgd) = model();
        for step in [1, 2, 3] {
            checkpoints.save(&vs, &sgd, &at(step)).unwrap();
        }
        std::fs::remove_file(dir.join("checkpoints/latest")).unwrap();
        // Step 3 is incomplete (its state is gone): step 2 is the newest complete one.
        std::fs::remove_file(dir.join("checkpoints/step-00000003/state.json")).unwrap();
        assert_eq!(
            checkpoints.find().unwrap(),
            Found::Newest(dir.join("checkpoints/step-00000002"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_that_disagrees_with_the_run_is_an_error_naming_the_file_and_key() {
        let dir = scratch("state");
        let checkpoints = Checkpoints::new(&dir, 2).unwrap();
        let (mut vs, mut sgd) = model();
        let saved = checkpoints.save(&vs, &sgd, &at(5)).unwrap();
        let err = checkpoints.load(&saved, 4, &mut vs, &mut sgd).unwrap_err().to_string();
        assert!(
            err.ends_with("step-00000005/state.json: `progress.step` is 5, beyond the run's 4 steps"),
            "{err}"
        );
        assert_eq!(checkpoints.load(&saved, 5, &mut vs, &mut sgd).unwrap().step, 5);
        let renamed = dir.join("checkpoints/step-00000004");
        std::fs::rename(&saved, &renamed).unwrap();
        let err = checkpoints
            .load(&renamed, 9, &mut vs, &mut sgd)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`progress.step` is 5, but the folder is `step-00000004`"),
            "{err}"
        );
        std::fs::write(dir.join("checkpoints/latest"), "../elsewhere").unwrap();
        let err = checkpoints.find().unwrap_err().to_string();
        assert!(
            err.contains("checkpoints/latest: expected the name of a `step-N` folder"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A write that fails (here `latest` cannot be replaced, as on a full
    /// disk) names the file and leaves no temporary behind; the
    /// temporaries a killed process leaves are removed when the folder is
    /// opened again.
    #[test]
    fn a_failed_write_names_its_file_and_cleans_up() {
        let dir = scratch("fail");
        let checkpoints = Checkpoints::new(&dir, 2).unwrap();
        let (vs, sgd) = model();
        std::fs::create_dir_all(dir.join("checkpoints/latest/blocked")).unwrap();
        let err = checkpoints.save(&vs, &sgd, &at(1)).unwrap_err().to_string();
        assert!(err.contains("checkpoints/latest"), "{err}");
        let leftovers: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        std::fs::create_dir_all(dir.join("checkpoints/.tmp-step-00000009")).unwrap();
        std::fs::write(dir.join("checkpoints/.latest.tmp4242"), "step-").unwrap();
        Checkpoints::new(&dir, 2).unwrap();
        assert!(!dir.join("checkpoints/.tmp-step-00000009").exists());
        assert!(!dir.join("checkpoints/.latest.tmp4242").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
