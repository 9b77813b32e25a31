//! PyTorch weight interop: read `.safetensors` and `.pth`/`.pt` state dicts,
//! load them into a backbone by name, and export a backbone under the names
//! of the matching PyTorch model.
//!
//! Backbones name their parameters as the PyTorch model does (torchvision for
//! ResNet, timm/MAE for ViT), so loading is a matter of finding the prefix
//! under which a checkpoint stores the backbone: `module.` (DDP),
//! `module.base_encoder.` (MoCo v3), `backbone.`, `encoder.`... The prefix is
//! found automatically (the one that matches most names) or given.
//!
//! ```no_run
//! # use visage_core::nn::weights::{read_state_dict, load_state_dict};
//! # fn demo(vs: &tch::nn::VarStore) -> visage_core::Result<()> {
//! let state = read_state_dict("resnet18.pth".as_ref())?;
//! let report = load_state_dict(vs, "backbone", state, None)?;
//! report.check_strict("resnet18.pth")?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::{Error, Result};

/// Pretrained weights for a backbone, as an experiment names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightsSpec {
    /// A `.safetensors`, `.pth`, `.pt` or `.bin` state dict.
    pub path: PathBuf,
    /// The prefix of the backbone's keys in the file (e.g.
    /// `module.base_encoder.`); found automatically when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Refuse missing and mis-shaped parameters (unexpected ones, such as a
    /// classifier head, are always only reported).
    #[serde(default = "yes")]
    pub strict: bool,
}

fn yes() -> bool {
    true
}

/// Reads a state dict: `.safetensors`, or a `torch.save` file (`.pth`,
/// `.pt`, `.bin`, `.ckpt`) whose nested dicts are flattened with `.`.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.exists() {
        return Err(Error::msg(format!("{}: no such file", path.display())));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let read = match ext {
        "safetensors" => Tensor::read_safetensors(path),
        "pth" | "pt" | "bin" | "ckpt" => return super::pickle::read_torch_zip(path),
        _ => {
            return Err(Error::msg(format!(
                "{}: unknown weights format `.{ext}` (expected .safetensors, .pth, .pt or .bin)",
                path.display()
            )))
        }
    };
    read.map_err(|e| {
        Error::msg(format!(
            "{}: cannot read a state dict ({})",
            path.display(),
            first_line(&e.to_string())
        ))
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// A parameter whose shape differs between model and file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Parameter name in the model.
    pub name: String,
    /// Shape in the model.
    pub model: Vec<i64>,
    /// Shape in the file.
    pub file: Vec<i64>,
}

/// What [`load_state_dict`] did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The prefix of the backbone's keys in the file.
    pub prefix: String,
    /// Parameters copied from the file.
    pub loaded: usize,
    /// Model parameters absent from the file (left as initialised).
    pub missing: Vec<String>,
    /// File keys under the prefix that the model has no parameter for.
    pub unexpected: Vec<String>,
    /// Parameters present in both with different shapes (not copied).
    pub mismatched: Vec<Mismatch>,
    /// Keys skipped by design (`num_batches_tracked`).
    pub ignored: usize,
}

impl LoadReport {
    /// An error naming `file` and every missing or mis-shaped parameter.
    pub fn check_strict(&self, file: &str) -> Result<()> {
        if self.missing.is_empty() && self.mismatched.is_empty() {
            return Ok(());
        }
        Err(Error::msg(format!(
            "{file}: the weights do not fit the backbone: {self}"
        )))
    }
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s += &format!(", ... ({} in all)", names.len());
    }
    s
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} loaded with prefix `{}`", self.loaded, self.prefix)?;
        if !self.missing.is_empty() {
            write!(f, "; missing: {}", list(&self.missing))?;
        }
        if !self.mismatched.is_empty() {
            let m: Vec<String> = self
                .mismatched
                .iter()
                .map(|m| format!("{} (model {:?}, file {:?})", m.name, m.model, m.file))
                .collect();
            write!(f, "; mis-shaped: {}", list(&m))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "; unexpected: {}", list(&self.unexpected))?;
        }
        Ok(())
    }
}

/// The variables of `vs` under `under` (e.g. `backbone`), by their names
/// relative to it.
pub fn variables_under(vs: &nn::VarStore, under: &str) -> BTreeMap<String, Tensor> {
    let prefix = if under.is_empty() {
        String::new()
    } else {
        format!("{under}.")
    };
    vs.variables()
        .into_iter()
        .filter_map(|(name, t)| name.strip_prefix(&prefix).map(|n| (n.to_string(), t)))
        .collect()
}

/// The prefix under which `keys` store most of `names`: every key that ends
/// with a name at a `.` boundary votes for what precedes it.
pub fn detect_prefix<'a>(names: impl Iterator<Item = &'a String>, keys: &[&str]) -> String {
    let mut votes: HashMap<&str, usize> = HashMap::new();
    for name in names {
        for key in keys {
            if let Some(prefix) = key.strip_suffix(name.as_str()) {
                if prefix.is_empty() || prefix.ends_with('.') {
                    *votes.entry(prefix).or_default() += 1;
                }
            }
        }
    }
    // Most votes; among equals the shortest prefix, then the first in order.
    votes
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.len().cmp(&a.0.len())).then(b.0.cmp(a.0)))
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

/// Copies `state` into the variables of `vs` under `under`, matching names
/// after `prefix` (found with [`detect_prefix`] when `None`). Shapes must
/// agree; dtypes are converted to the model's.
pub fn load_state_dict(
    vs: &nn::VarStore,
    under: &str,
    state: Vec<(String, Tensor)>,
    prefix: Option<&str>,
) -> Result<LoadReport> {
    let model = variables_under(vs, under);
    if model.is_empty() {
        return Err(Error::msg(format!("the model has no variables under `{under}`")));
    }
    let keys: Vec<&str> = state.iter().map(|(k, _)| k.as_str()).collect();
    let prefix = match prefix {
        Some(p) => p.to_string(),
        None => detect_prefix(model.keys(), &keys),
    };
    let mut file: BTreeMap<&str, &Tensor> = BTreeMap::new();
    let mut report = LoadReport {
        prefix: prefix.clone(),
        ..Default::default()
    };
    for (key, tensor) in &state {
        if let Some(name) = key.strip_prefix(&prefix) {
            if name.ends_with("num_batches_tracked") {
                report.ignored += 1;
            } else {
                file.insert(name, tensor);
            }
        }
    }
    tch::no_grad(|| -> Result<()> {
        for (name, var) in &model {
            let Some(src) = file.remove(name.as_str()) else {
                report.missing.push(name.clone());
                continue;
            };
            if src.size() != var.size() {
                report.mismatched.push(Mismatch {
                    name: name.clone(),
                    model: var.size(),
                    file: src.size(),
                });
                continue;
            }
            let mut var = var.shallow_clone();
            var.f_copy_(&src.to_kind(var.kind()).to_device(var.device()))?;
            report.loaded += 1;
        }
        Ok(())
    })?;
    report.unexpected = file.keys().map(|k| k.to_string()).collect();
    Ok(report)
}

/// Loads the weights `spec` names into the variables of `vs` under
/// `under`: strict loading refuses missing and mis-shaped parameters,
/// naming the file and the keys; unexpected ones (a classifier head) are
/// reported in the log.
pub fn load_weights(vs: &nn::VarStore, under: &str, spec: &WeightsSpec) -> Result<LoadReport> {
    let file = spec.path.display().to_string();
    let state = read_state_dict(&spec.path)?;
    let report = load_state_dict(vs, under, state, spec.prefix.as_deref())?;
    if spec.strict {
        report.check_strict(&file)?;
    }
    if !report.unexpected.is_empty() || !report.missing.is_empty() {
        tracing::warn!(file = %file, "weights: {report}");
    }
    tracing::info!(file = %file, loaded = report.loaded, prefix = %report.prefix, under, "weights loaded");
    Ok(report)
}

/// Writes the variables under `under` as a `.safetensors` file with their
/// relative names, i.e. the names of the matching PyTorch model, so that
/// `model.load_state_dict(safetensors.torch.load_file(path))` works.
pub fn export_safetensors(vs: &nn::VarStore, under: &str, path: &Path) -> Result<()> {
    let vars = variables_under(vs, under);
    let cpu: Vec<(String, Tensor)> = vars
        .into_iter()
        .map(|(k, t)| (k, t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    let named: Vec<(&str, &Tensor)> = cpu.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let tmp = path.with_extension("safetensors.tmp");
    Tensor::write_safetensors(&named, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_detection_prefers_the_most_matches() {
        let names: Vec<String> = ["conv1.weight", "bn1.weight", "fc.weight"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let keys = [
            "module.base_encoder.conv1.weight",
            "module.base_encoder.bn1.weight",
            "module.base_encoder.fc.weight",
            "module.predictor.fc.weight",
        ];
        assert_eq!(detect_prefix(names.iter(), &keys), "module.base_encoder.");
        let plain = ["conv1.weight", "bn1.weight"];
        assert_eq!(detect_prefix(names.iter(), &plain), "");
    }

    #[test]
    fn report_lists_missing_unexpected_and_misshaped() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let root = vs.root() / "backbone";
        let _a = root.zeros("a", &[2, 3]);
        let _b = root.zeros("b", &[4]);
        let _c = root.zeros("c", &[1]);
        let state = vec![
            (
                "enc.a".to_string(),
                Tensor::ones([2, 3], (tch::Kind::Double, tch::Device::Cpu)),
            ),
            (
                "enc.b".to_string(),
                Tensor::ones([5], (tch::Kind::Float, tch::Device::Cpu)),
            ),
            (
                "enc.head".to_string(),
                Tensor::ones([1], (tch::Kind::Float, tch::Device::Cpu)),
            ),
            ("enc.bn.num_batches_tracked".to_string(), Tensor::from(3i64)),
        ];
        let report = load_state_dict(&vs, "backbone", state, None).unwrap();
        assert_eq!(report.prefix, "enc.");
        assert_eq!(report.loaded, 1);
        assert_eq!(report.missing, vec!["c".to_string()]);
        assert_eq!(report.unexpected, vec!["head".to_string()]);
        assert_eq!(report.mismatched[0].name, "b");
        assert_eq!(report.ignored, 1);
        let vars = variables_under(&vs, "backbone");
        assert_eq!(vars["a"].sum(tch::Kind::Float).double_value(&[]), 6.0);
        assert_eq!(vars["a"].kind(), tch::Kind::Float);
        let err = report.check_strict("w.pth").unwrap_err().to_string();
        assert!(
            err.contains("w.pth") && err.contains("missing: c") && err.contains("b (model [4], file [5])"),
            "{err}"
        );
    }

    #[test]
    fn unknown_format_and_missing_file_are_named() {
        let err = read_state_dict(Path::new("/nonexistent/w.pth"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/w.pth: no such file"), "{err}");
        let dir = std::env::temp_dir().join(format!("visage-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let odd = dir.join("w.npz");
        std::fs::write(&odd, b"x").unwrap();
        let err = read_state_dict(&odd).unwrap_err().to_string();
        assert!(err.contains("unknown weights format `.npz`"), "{err}");
        let bad = dir.join("w.pth");
        std::fs::write(&bad, b"not a zip").unwrap();
        let err = read_state_dict(&bad).unwrap_err().to_string();
        assert!(err.contains("w.pth: not a PyTorch zip checkpoint"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
