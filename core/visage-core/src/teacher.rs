//! Teachers: backbones a method reads but the optimiser does not train.
//!
//! A method asks its [`MethodContext`](crate::method::MethodContext)'s
//! [`Teachers`] for them while it is built, as solo-learn's
//! `BaseMomentumMethod` gives its methods a momentum copy:
//!
//! - [`Teachers::momentum_backbone`]: a copy of the backbone, built by the
//!   same factory with the same parameters, starting from the same weights,
//!   updated by an EMA at a momentum [`Schedule`] after every optimiser
//!   step (MoCo v3's momentum encoder, DINO's teacher, MCF's target);
//! - [`Teachers::frozen_backbone`]: a backbone loaded from weights or from
//!   another Visage run's directory, never updated (MCF's MIM teacher);
//! - [`Teachers::follow`]: an EMA between two modules the method built
//!   itself (a projector and its momentum copy).
//!
//! Teachers live in the run's var store under `teachers.<name>`, so
//! checkpoints hold them and a resumed run continues them exactly. The host
//! runs the EMA updates and logs each momentum as `momentum/<name>`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::backbone::{Backbone, BackboneContext, Features};
use crate::nn::weights::{load_weights, variables_under, WeightsSpec};
use crate::optim::Ema;
use crate::schedule::Schedule;
use crate::{Error, Registry, Result};

/// Var-store path under which teachers live.
pub const TEACHERS: &str = "teachers";

/// File a run writes beside `backbone.safetensors`: the backbone's
/// component name and parameters, so that other runs can rebuild it.
pub const BACKBONE_JSON: &str = "backbone.json";

/// File a run writes with the trained backbone's weights.
pub const BACKBONE_WEIGHTS: &str = "backbone.safetensors";

/// A backbone component: its registered name and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackboneSpec {
    /// Registered name (`vit`, `resnet`, ...).
    pub name: String,
    /// Its parameters.
    #[serde(default)]
    pub params: serde_json::Value,
}

impl BackboneSpec {
    /// The backbone of the Visage run in `dir` (its `backbone.json`) and
    /// the weights it trained (`backbone.safetensors`).
    pub fn of_run(dir: &Path) -> Result<(BackboneSpec, WeightsSpec)> {
        let json = dir.join(BACKBONE_JSON);
        let bytes = std::fs::read(&json).map_err(|e| {
            Error::msg(format!(
                "{}: cannot read ({e}); `from_run` needs the directory of a finished Visage run that pre-trained a backbone",
                json.display()
            ))
        })?;
        let spec: BackboneSpec = serde_json::from_slice(&bytes)
            .map_err(|e| Error::msg(format!("{}: not a backbone description: {e}", json.display())))?;
        let weights = WeightsSpec {
            path: dir.join(BACKBONE_WEIGHTS),
            prefix: Some(String::new()),
            strict: true,
        };
        Ok((spec, weights))
    }
}

/// Where a frozen teacher comes from: exactly one of `from_run` and
/// `weights`.
///
/// ```yaml
/// teacher: {from_run: runs/moco_v3/2026-12-01T10-00-00}
/// teacher: {weights: {path: weights/moco_v3_vit_base.pth.tar}, backbone: {name: vit, params: {size: base}}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeacherSource {
    /// A finished Visage run's directory: its backbone and trained weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_run: Option<PathBuf>,
    /// A weights file (state dict; the prefix is found when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightsSpec>,
    /// The teacher's architecture, with `weights` (default: the run's
    /// backbone with its parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<BackboneSpec>,
}

/// A backbone that the optimiser does not train.
pub struct Teacher {
    backbone: Box<dyn Backbone>,
    path: String,
}

impl Teacher {
    /// The backbone, for capabilities ([`crate::backbone`]).
    pub fn backbone(&self) -> &dyn Backbone {
        self.backbone.as_ref()
    }

    /// Its var-store path (`teachers.<name>`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A forward pass without gradient; `train` as for the online backbone
    /// (a momentum encoder normalises with batch statistics, as MoCo's).
    pub fn forward(&self, images: &Tensor, train: bool) -> Result<Features> {
        tch::no_grad(|| self.backbone.forward(images, train))
    }
}

/// The teacher factory a method is handed while it is built.
pub struct Teachers<'a> {
    registry: &'a Registry,
    vs: &'a nn::VarStore,
    backbone: BackboneSpec,
    online: String,
    in_channels: i64,
    emas: RefCell<Vec<Ema>>,
}

impl<'a> Teachers<'a> {
    /// A factory for copies of the backbone `backbone` that lives under
    /// `online` in `vs`, built through `registry`.
    pub fn new(
        registry: &'a Registry,
        vs: &'a nn::VarStore,
        backbone: BackboneSpec,
        online: &str,
        in_channels: i64,
    ) -> Self {
        Teachers {
            registry,
            vs,
            backbone,
            online: online.to_string(),
            in_channels,
            emas: RefCell::new(vec![]),
        }
    }

    /// A copy of the backbone that follows it by EMA at `momentum`: built
    /// by the same factory with the same parameters, starting from the
    /// backbone's current weights, not trained by the optimiser.
    pub fn momentum_backbone(&self, name: &str, momentum: Schedule) -> Result<Teacher> {
        let teacher = self.build(name, &self.backbone)?;
        self.emas
            .borrow_mut()
            .push(Ema::new(name, self.vs, &self.online, &teacher.path, momentum)?);
        Ok(teacher)
    }

    /// A frozen backbone from `source`, never updated.
    pub fn frozen_backbone(&self, name: &str, source: &TeacherSource) -> Result<Teacher> {
        let (spec, weights) = match (&source.from_run, &source.weights) {
            (Some(run), None) => {
                let (spec, weights) = BackboneSpec::of_run(run)?;
                (source.backbone.clone().unwrap_or(spec), weights)
            }
            (None, Some(weights)) => (
                source.backbone.clone().unwrap_or_else(|| self.backbone.clone()),
                weights.clone(),
            ),
            _ => {
                return Err(Error::msg(format!(
                    "teacher `{name}`: give exactly one of `from_run` (a Visage run directory) and `weights` (a file)"
                )))
            }
        };
        let teacher = self.build(name, &spec)?;
        load_weights(self.vs, &teacher.path, &weights)?;
        for (_, var) in variables_under(self.vs, &teacher.path) {
            let _ = var.set_requires_grad(false);
        }
        Ok(teacher)
    }

    /// Makes the module under `target` follow the one under `online` by
    /// EMA at `momentum` (a momentum projector or predictor): the target
    /// starts as a copy and is frozen. Both were built by the method.
    pub fn follow(&self, name: &str, online: &nn::Path<'_>, target: &nn::Path<'_>, momentum: Schedule) -> Result<()> {
        let prefix = |p: &nn::Path<'_>| p.components().collect::<Vec<_>>().join(".");
        let ema = Ema::new(name, self.vs, &prefix(online), &prefix(target), momentum)?;
        self.emas.borrow_mut().push(ema);
        Ok(())
    }

    /// Freezes the online backbone's variables under `<online>.<under>`
    /// (`patch_embed.proj` for MoCo v3's frozen random patch projection):
    /// no gradient reaches them, so the optimiser, which is built after the
    /// method and sees only trainable variables, never updates them; they
    /// keep the values they were initialised or loaded with. Returns the
    /// frozen variables' names below the backbone; none is an error
    /// naming `under` (the backbone has no such module).
    pub fn freeze_online(&self, under: &str) -> Result<Vec<String>> {
        let path = format!("{}.{under}", self.online);
        let vars = variables_under(self.vs, &path);
        if vars.is_empty() {
            return Err(Error::msg(format!(
                "the backbone `{}` has no variables under `{under}` to freeze",
                self.backbone.name
            )));
        }
        let mut names = vec![];
        for (name, var) in vars {
            let _ = var.set_requires_grad(false);
            names.push(format!("{under}.{name}"));
        }
        Ok(names)
    }

    /// The EMA updates asked for, for the trainer.
    pub fn into_emas(self) -> Vec<Ema> {
        self.emas.into_inner()
    }

    fn build(&self, name: &str, spec: &BackboneSpec) -> Result<Teacher> {
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let path = format!("{TEACHERS}.{name}");
        if !valid || !variables_under(self.vs, &path).is_empty() {
            return Err(Error::msg(format!(
                "teacher name `{name}` must be new and made of letters, digits and `_`"
            )));
        }
        let ctx = BackboneContext {
            vs: self.vs.root() / TEACHERS / name,
            in_channels: self.in_channels,
        };
        let backbone = self
            .registry
            .build_backbone(&spec.name, &spec.params.to_string(), &ctx)
            .map_err(|e| Error::msg(format!("teacher `{name}`: {e}")))?;
        Ok(Teacher { backbone, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::single_group;
    use tch::Device;

    fn registry() -> Registry {
        let mut registry = Registry::new();
        crate::builtin::register(&mut registry).unwrap();
        registry
    }

    fn resnet() -> BackboneSpec {
        BackboneSpec {
            name: "resnet".into(),
            params: serde_json::json!({"width": 4, "small_stem": true}),
        }
    }

    /// A store with a resnet under `backbone`.
    fn store(registry: &Registry) -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let ctx = BackboneContext {
            vs: vs.root() / "backbone",
            in_channels: 3,
        };
        registry
            .build_backbone("resnet", &resnet().params.to_string(), &ctx)
            .unwrap();
        vs
    }

    #[test]
    fn a_momentum_copy_starts_as_the_backbone_and_is_not_trained() {
        let registry = registry();
        let vs = store(&registry);
        let teachers = Teachers::new(&registry, &vs, resnet(), "backbone", 3);
        let teacher = teachers
            .momentum_backbone("momentum", Schedule::cosine(0.99, 1.0))
            .unwrap();
        assert_eq!(teacher.path(), "teachers.momentum");
        let (online, copy) = (
            variables_under(&vs, "backbone"),
            variables_under(&vs, "teachers.momentum"),
        );
        assert_eq!(online.len(), copy.len());
        for (name, t) in &online {
            assert!(t.equal(&copy[name]), "{name}");
            assert!(!copy[name].requires_grad(), "{name}");
        }
        let trained: Vec<String> = single_group(&vs, 0.0)[0]
            .params
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        assert!(trained.iter().all(|n| n.starts_with("backbone.")));
        assert_eq!(teachers.into_emas().len(), 1);
        // The same name twice is refused.
        let teachers = Teachers::new(&registry, &vs, resnet(), "backbone", 3);
        let err = teachers
            .momentum_backbone("momentum", 0.9.into())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("teacher name `momentum` must be new"), "{err}");
    }

    #[test]
    fn part_of_the_online_backbone_is_frozen_by_name() {
        let registry = registry();
        let vs = store(&registry);
        let teachers = Teachers::new(&registry, &vs, resnet(), "backbone", 3);
        let frozen = teachers.freeze_online("bn1").unwrap();
        assert_eq!(
            frozen,
            ["bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.weight"]
        );
        let trained: Vec<String> = single_group(&vs, 0.0)[0]
            .params
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        assert!(!trained.iter().any(|n| n.starts_with("backbone.bn1.")), "{trained:?}");
        assert!(trained.contains(&"backbone.conv1.weight".to_string()));
        let err = teachers.freeze_online("patch_embed.proj").unwrap_err().to_string();
        assert_eq!(
            err,
            "the backbone `resnet` has no variables under `patch_embed.proj` to freeze"
        );
    }

    #[test]
    fn a_frozen_teacher_loads_another_runs_backbone_or_a_weights_file() {
        let registry = registry();
        let dir = std::env::temp_dir().join(format!("visage-teacher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // "Another run": a backbone of other weights, written as a run writes it.
        tch::manual_seed(11);
        let other = store(&registry);
        crate::nn::weights::export_safetensors(&other, "backbone", &dir.join(BACKBONE_WEIGHTS)).unwrap();
        std::fs::write(dir.join(BACKBONE_JSON), serde_json::to_string(&resnet()).unwrap()).unwrap();

        tch::manual_seed(12);
        let vs = store(&registry);
        let teachers = Teachers::new(&registry, &vs, resnet(), "backbone", 3);
        let source = TeacherSource {
            from_run: Some(dir.clone()),
            weights: None,
            backbone: None,
        };
        let teacher = teachers.frozen_backbone("mim", &source).unwrap();
        let (theirs, loaded) = (
            variables_under(&other, "backbone"),
            variables_under(&vs, "teachers.mim"),
        );
        for (name, t) in &theirs {
            assert!(t.equal(&loaded[name]), "{name}");
            assert!(!loaded[name].requires_grad());
        }
        let x = Tensor::rand([2, 3, 16, 16], (tch::Kind::Float, Device::Cpu));
        let features = teacher.forward(&x, false).unwrap();
        assert!(!features["pooled"].requires_grad());

        // The same from the weights file, with the architecture given.
        let by_file = TeacherSource {
            from_run: None,
            weights: Some(WeightsSpec {
                path: dir.join(BACKBONE_WEIGHTS),
                prefix: None,
                strict: true,
            }),
            backbone: Some(resnet()),
        };
        teachers.frozen_backbone("file", &by_file).unwrap();
        assert!(variables_under(&vs, "teachers.file")["conv1.weight"].equal(&theirs["conv1.weight"]));
        assert!(teachers.into_emas().is_empty(), "frozen teachers are not averaged");

        // Neither or both sources, or a folder that is not a run: named errors.
        let teachers = Teachers::new(&registry, &vs, resnet(), "backbone", 3);
        let neither = TeacherSource {
            from_run: None,
            weights: None,
            backbone: None,
        };
        let err = teachers.frozen_backbone("x", &neither).err().unwrap().to_string();
        assert!(err.contains("give exactly one of `from_run`"), "{err}");
        let not_a_run = TeacherSource {
            from_run: Some(dir.join("nowhere")),
            ..neither
        };
        let err = teachers.frozen_backbone("y", &not_a_run).err().unwrap().to_string();
        assert!(err.contains("nowhere/backbone.json: cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
