//! Experiments as typed, layered configuration.
//!
//! [`Resolved::load`] merges the layers and deserialises the typed
//! [`Experiment`]; [`Resolved::check_components`] then checks every named
//! component against the registry and its parameters against the plugin's
//! type. Nothing is built; every error names the file, line and key.

pub mod diagnostic;
pub mod experiment;
#[cfg(test)]
mod fuzz;
pub mod load;
pub mod locate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use visage_core::task::Protocol;
use visage_core::{Kind, Registry};

pub use diagnostic::{ConfigError, Place};
pub use experiment::{Component, Evaluation, Experiment, Pretrain};
use load::Layers;

/// Builds the augmentations of `chain`, in order (their parameters were
/// checked by [`Resolved::check_components`]).
pub fn augmentation_chain(
    registry: &Registry,
    chain: &[Component],
) -> visage_core::Result<Vec<Box<dyn visage_core::augmentation::Augmentation>>> {
    chain
        .iter()
        .map(|a| registry.build_augmentation(&a.name, &a.params.to_string()))
        .collect()
}

/// A loaded experiment and the layers it came from.
pub struct Resolved {
    /// The typed experiment.
    pub experiment: Experiment,
    layers: Layers,
}

impl Resolved {
    /// Reads `path`, its `extends`, the `VISAGE_*` environment and `sets`.
    pub fn load(path: &Path, sets: &[String]) -> Result<Self, ConfigError> {
        let layers = load::layers(path, sets)?;
        let experiment = layers.experiment()?;
        let resolved = Resolved { experiment, layers };
        resolved.check_device()?;
        resolved.check_views()?;
        resolved.backbone_weights()?;
        Ok(resolved)
    }

    /// Every shared step of a view group names a step of its chain.
    fn check_views(&self) -> Result<(), ConfigError> {
        let Some(pretrain) = &self.experiment.pretrain else {
            return Ok(());
        };
        for (g, group) in pretrain.views.iter().enumerate() {
            for (i, &k) in group.shared_steps.iter().enumerate() {
                if k >= group.augmentations.len() {
                    let path: Vec<String> = ["pretrain", "views", &g.to_string(), "shared_steps", &i.to_string()]
                        .map(String::from)
                        .into();
                    let message = format!(
                        "shared step {k} is not a step of this group's chain, which has {} augmentation(s)",
                        group.augmentations.len()
                    );
                    return Err(ConfigError::Invalid(self.layers.diagnose(&path, message)));
                }
            }
        }
        Ok(())
    }

    /// An error about the value at `path` (e.g. `["pretrain", "batch_size"]`),
    /// naming the file, line and column it came from.
    pub fn invalid(&self, path: &[&str], message: String) -> ConfigError {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        ConfigError::Invalid(self.layers.diagnose(&path, message))
    }

    fn check_device(&self) -> Result<(), ConfigError> {
        parse_device(&self.experiment.device)
            .map(|_| ())
            .map_err(|message| ConfigError::Invalid(self.layers.diagnose(&["device".to_string()], message)))
    }

    /// Checks that every component exists with valid parameters, and fills
    /// in the parameters' defaults.
    pub fn check_components(&mut self, registry: &Registry) -> Result<(), ConfigError> {
        let mut experiment = self.experiment.clone();
        for site in experiment.components_mut() {
            let name_path = [site.path.clone(), vec!["name".into()]].concat();
            let Some(info) = registry.info(site.kind, site.name) else {
                let names = registry.names(site.kind);
                let mut d = self.layers.diagnose(
                    &name_path,
                    format!(
                        "unknown {} `{}`; registered: {}",
                        site.kind,
                        site.name,
                        list_or_none(&names)
                    ),
                );
                d.suggestion = diagnostic::did_you_mean(site.name, names.iter().copied());
                return Err(ConfigError::Invalid(d));
            };
            let params_path = [site.path.clone(), vec!["params".into()]].concat();
            let normalized = info.normalize(&site.params.to_string()).map_err(|e| {
                let path = [params_path.clone(), e.path.clone()].concat();
                ConfigError::Invalid(self.layers.diagnose(
                    &path,
                    format!("{} (parameters of {} `{}`)", e.message, site.kind, site.name),
                ))
            })?;
            *site.params = serde_json::from_str(&normalized).unwrap_or_default();
        }
        for (i, evaluation) in experiment.evaluations.iter().enumerate() {
            let info = registry.info(Kind::Task, &evaluation.task.name).expect("checked above");
            if !info.protocols.contains(&evaluation.protocol) {
                let implemented: Vec<&str> = info.protocols.iter().map(|p| p.as_str()).collect();
                let path = vec!["evaluations".into(), i.to_string(), "protocol".into()];
                let message = format!(
                    "task `{}` does not implement the {} protocol (it implements: {})",
                    evaluation.task.name,
                    evaluation.protocol.as_str(),
                    list_or_none(&implemented)
                );
                return Err(ConfigError::Invalid(self.layers.diagnose(&path, message)));
            }
            if evaluation.supervised_params.is_some() && !evaluation.supervised {
                let path = vec!["evaluations".into(), i.to_string(), "supervised_params".into()];
                let message = "set, but `supervised` is false: there is no supervised twin to give them to".to_string();
                return Err(ConfigError::Invalid(self.layers.diagnose(&path, message)));
            }
            if evaluation.supervised && !info.protocols.contains(&Protocol::FineTune) {
                let path = vec!["evaluations".into(), i.to_string(), "supervised".into()];
                let message = format!(
                    "the supervised twin trains the backbone end to end (fine_tune), which task `{}` does not implement",
                    evaluation.task.name
                );
                return Err(ConfigError::Invalid(self.layers.diagnose(&path, message)));
            }
        }
        self.experiment = experiment;
        self.check_run_backbone(registry)
    }

    /// With `backbone.from_run`: the run's backbone has the experiment's
    /// name and, defaults filled in on both sides, its parameters (so that
    /// `{size: tiny}` matches the run's fully spelled ViT).
    fn check_run_backbone(&self, registry: &Registry) -> Result<(), ConfigError> {
        let backbone = &self.experiment.backbone;
        let Some(run) = &backbone.from_run else {
            return Ok(());
        };
        let (spec, _) = visage_core::teacher::BackboneSpec::of_run(run)
            .map_err(|e| self.invalid(&["backbone", "from_run"], e.to_string()))?;
        let normalized = registry
            .info(Kind::Backbone, &spec.name)
            .and_then(|info| info.normalize(&spec.params.to_string()).ok())
            .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok());
        if spec.name != backbone.name || normalized.as_ref() != Some(&backbone.params) {
            return Err(self.other_backbone(&spec.name, &spec.params));
        }
        Ok(())
    }

    /// The error for a `backbone.from_run` whose backbone is not the
    /// experiment's.
    fn other_backbone(&self, name: &str, params: &serde_json::Value) -> ConfigError {
        let backbone = &self.experiment.backbone;
        let message = format!(
            "the run's backbone is `{name}` with params {params}, the experiment's is `{}` with params {}: \
             set `backbone` to the run's",
            backbone.name, backbone.params
        );
        self.invalid(&["backbone", "from_run"], message)
    }

    /// The resolved experiment as YAML: complete, with no `extends`, so that
    /// it can be run again as it is.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&self.experiment).unwrap_or_default()
    }

    /// Every resolved value with the layer it came from.
    pub fn origins(&self) -> BTreeMap<String, (serde_json::Value, Place)> {
        let json = serde_json::to_value(&self.experiment).unwrap_or_default();
        self.layers.origins_of(&json)
    }

    /// `key: value  # origin` lines, one per resolved value.
    pub fn origins_listing(&self) -> String {
        let origins = self.origins();
        let width = origins
            .iter()
            .map(|(k, (v, _))| k.len() + v.to_string().len())
            .max()
            .unwrap_or(0)
            + 2;
        origins
            .iter()
            .map(|(k, (v, place))| {
                let text = format!("{k}: {v}");
                format!("{text:width$}# {place}\n")
            })
            .collect()
    }

    /// The experiment's `plugin_dirs`, each relative to the file that set it.
    pub fn plugin_dirs(&self) -> Vec<PathBuf> {
        self.experiment
            .plugin_dirs
            .iter()
            .enumerate()
            .map(
                |(i, dir)| match self.layers.origin(&["plugin_dirs".into(), i.to_string()]) {
                    Some(Place::File { file, .. }) if dir.is_relative() => {
                        load::normalize(&file.parent().unwrap_or(Path::new("")).join(dir))
                    }
                    _ => dir.clone(),
                },
            )
            .collect()
    }

    /// The backbone's pretrained weights: `backbone.weights`, its path
    /// relative to the file that set it, or the weights of the run
    /// `backbone.from_run`, whose backbone must be the experiment's.
    pub fn backbone_weights(&self) -> Result<Option<visage_core::nn::weights::WeightsSpec>, ConfigError> {
        let backbone = &self.experiment.backbone;
        match (&backbone.weights, &backbone.from_run) {
            (Some(_), Some(_)) => Err(self.invalid(
                &["backbone", "from_run"],
                "give `weights` or `from_run`, not both".into(),
            )),
            (None, Some(run)) => {
                let (spec, weights) = visage_core::teacher::BackboneSpec::of_run(run)
                    .map_err(|e| self.invalid(&["backbone", "from_run"], e.to_string()))?;
                if spec.name != backbone.name {
                    return Err(self.other_backbone(&spec.name, &spec.params));
                }
                Ok(Some(weights))
            }
            (Some(spec), None) => {
                let mut spec = spec.clone();
                let key = ["backbone".to_string(), "weights".into(), "path".into()];
                if let (Some(Place::File { file, .. }), true) = (self.layers.origin(&key), spec.path.is_relative()) {
                    spec.path = load::normalize(&file.parent().unwrap_or(Path::new("")).join(&spec.path));
                }
                Ok(Some(spec))
            }
            (None, None) => Ok(None),
        }
    }

    /// The files that took part, bases first.
    pub fn files(&self) -> Vec<PathBuf> {
        self.layers.files().iter().map(|f| f.path.clone()).collect()
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(text: &str) -> Result<tch::Device, String> {
    let expected = "expected `auto`, `cpu`, `cuda` or `cuda:N`";
    match text {
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => Ok(tch::Device::Cuda(0)),
        _ => match text.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(tch::Device::Cuda(n)),
            _ => Err(format!("unknown device `{text}`; {expected}")),
        },
    }
}
