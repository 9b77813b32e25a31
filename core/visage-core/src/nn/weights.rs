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
    /// A state dict: safetensors, a `torch.save` zip or a legacy
    /// `torch.save` pickle, recognised by content (`.safetensors`, `.pth`,
    /// `.pt`, `.bin`, `.pth.tar`...).
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

/// Reads a state dict: a `.safetensors` file, a `torch.save` zip (from
/// PyTorch 1.6 on) or a legacy `torch.save` pickle, whose nested dicts are
/// flattened with `.`. The format is recognised by the file's first bytes,
/// whatever its name (`.pth`, `.pt`, `.bin`, `.ckpt`, MoCo v3's
/// `.pth.tar`...); anything else is an error naming the file and the
/// formats read.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let at = |what: &str| Error::msg(format!("{}: {what}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => at("no such file"),
        _ => crate::fs::io_error(path)(e),
    })?;
    if meta.is_dir() {
        return Err(at(&format!("a directory, not a weights file ({FORMATS})")));
    }
    let mut head = [0u8; 16];
    let n = {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(crate::fs::io_error(path))?;
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..]).map_err(crate::fs::io_error(path))? {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    match WeightsFormat::sniff(&head[..n]) {
        Some(WeightsFormat::Safetensors) => Tensor::read_safetensors(path).map_err(|e| {
            at(&format!(
                "cannot read the safetensors file ({})",
                crate::error::torch_message(&e)
            ))
        }),
        Some(WeightsFormat::TorchZip) => super::pickle::read_torch_zip(path),
        Some(WeightsFormat::TorchLegacy) => super::pickle::read_torch_legacy(path),
        None if n == 0 => Err(at(&format!("an empty file, not weights ({FORMATS})"))),
        None => Err(at(&format!(
            "not a weights file: {FORMATS}; its first bytes are {}",
            head[..n.min(8)]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

/// The formats [`read_state_dict`] reads, for messages.
const FORMATS: &str = "expected safetensors, a torch.save zip (PyTorch >= 1.6) or a legacy torch.save pickle";

/// A weight file's format, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// safetensors: an 8-byte little-endian header length, then the JSON
    /// header (`{`).
    Safetensors,
    /// `torch.save`'s zip archive (`PK\x03\x04`).
    TorchZip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)`: pickles
    /// (protocol 2 to 5, `\x80\x02`..`\x80\x05`) followed by raw storages.
    TorchLegacy,
}

impl WeightsFormat {
    /// The format of a file that begins with `head` (its first 9 bytes
    /// suffice), or `None`.
    pub fn sniff(head: &[u8]) -> Option<WeightsFormat> {
        if head.starts_with(b"PK\x03\x04") {
            return Some(WeightsFormat::TorchZip);
        }
        if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
            return Some(WeightsFormat::TorchLegacy);
        }
        // A header length beyond the file's end is still safetensors, cut
        // short: its reader says so.
        if head.len() >= 9 && head[8] == b'{' && u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) >= 2 {
            return Some(WeightsFormat::Safetensors);
        }
        None
    }
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
            src.f_to_kind(var.kind())
                .and_then(|s| s.f_to_device(var.device()))
                .and_then(|s| var.f_copy_(&s))
                .map_err(|e| {
                    Error::msg(format!(
                        "parameter `{name}` (model {:?}, file {:?}): {}",
                        var.size(),
                        src.size(),
                        crate::error::torch_message(&e)
                    ))
                })?;
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
    fn formats_are_recognised_by_content_and_others_named() {
        let err = read_state_dict(Path::new("/nonexistent/w.pth"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/w.pth: no such file"), "{err}");
        let dir = tempdir("formats");
        // Content decides, not the name: MoCo v3 releases `.pth.tar`.
        let zip = dir.join("moco.pth.tar");
        std::fs::write(&zip, crate::nn::pickle::tests::tiny_zip()).unwrap();
        assert_eq!(read_state_dict(&zip).unwrap().len(), 2);
        let legacy = dir.join("old.bin");
        std::fs::write(&legacy, crate::nn::pickle::tests::tiny_legacy()).unwrap();
        assert_eq!(read_state_dict(&legacy).unwrap().len(), 2);
        let st = dir.join("named.pth");
        let t = Tensor::ones([2], (tch::Kind::Float, tch::Device::Cpu));
        Tensor::write_safetensors(&[("a", &t)], &st).unwrap();
        assert_eq!(read_state_dict(&st).unwrap()[0].0, "a");
        // Anything else names the file and the formats read.
        for (name, bytes, expect) in [
            (
                "w.npz",
                b"x".to_vec(),
                "w.npz: not a weights file: expected safetensors, a torch.save zip",
            ),
            ("w.pth", b"not a zip".to_vec(), "w.pth: not a weights file"),
            ("empty.pt", vec![], "empty.pt: an empty file, not weights"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = read_state_dict(&path).unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
        }
        let err = read_state_dict(&dir).unwrap_err().to_string();
        assert!(err.contains("a directory, not a weights file"), "{err}");
        // Cut short, each format is an error naming the file.
        for name in ["moco.pth.tar", "old.bin", "named.pth"] {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).unwrap();
            let cut = dir.join(format!("cut-{name}"));
            std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
            let err = read_state_dict(&cut).unwrap_err().to_string();
            assert!(err.contains(&format!("cut-{name}: ")) && !err.contains('\n'), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sniffing_reads_the_magic_bytes() {
        assert_eq!(WeightsFormat::sniff(b"PK\x03\x04rest"), Some(WeightsFormat::TorchZip));
        assert_eq!(WeightsFormat::sniff(b"\x80\x02\x8a"), Some(WeightsFormat::TorchLegacy));
        assert_eq!(WeightsFormat::sniff(b"\x80\x05\x95"), Some(WeightsFormat::TorchLegacy));
        assert_eq!(WeightsFormat::sniff(b"\x80\x01"), None);
        assert_eq!(
            WeightsFormat::sniff(b"\x10\0\0\0\0\0\0\0{\"a\""),
            Some(WeightsFormat::Safetensors)
        );
        assert_eq!(WeightsFormat::sniff(b"\x10\0\0\0\0\0\0\0["), None);
        assert_eq!(WeightsFormat::sniff(b""), None);
    }

    #[test]
    fn a_copy_that_fails_names_the_parameter_in_one_line() {
        let e = Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu))
            .f_view([3])
            .unwrap_err();
        let text = crate::error::torch_message(&e);
        assert!(!text.contains('\n') && text.contains("shape '[3]'"), "{text}");
        let err = Error::from(e).to_string();
        assert!(err.starts_with("libtorch: ") && !err.contains("frame #"), "{err}");
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("visage-weights-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
