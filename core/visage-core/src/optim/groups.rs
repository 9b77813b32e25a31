//! Parameter groups: which parameters get weight decay and at what
//! learning-rate multiplier.

use tch::{nn, Tensor};

use crate::backbone::ParameterLayers;

/// Parameters that share hyper-parameters.
#[derive(Debug)]
pub struct ParamGroup {
    /// A name for messages (`decay`, `no_decay`, ...).
    pub name: String,
    /// The parameters, by var-store name.
    pub params: Vec<(String, Tensor)>,
    /// Weight decay for this group.
    pub weight_decay: f64,
    /// Multiplier of the learning rate for this group.
    pub lr_scale: f64,
}

/// The trainable variables of `vs`, sorted by name.
fn trainable(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Two groups, as SSL recipes use: weight decay on weights of dimension 2
/// and more; none on biases and normalisation parameters (dimension <= 1).
pub fn decay_groups(vs: &nn::VarStore, weight_decay: f64) -> Vec<ParamGroup> {
    let (decay, no_decay): (Vec<_>, Vec<_>) = trainable(vs).into_iter().partition(|(_, t)| t.dim() > 1);
    vec![
        ParamGroup {
            name: "decay".into(),
            params: decay,
            weight_decay,
            lr_scale: 1.0,
        },
        ParamGroup {
            name: "no_decay".into(),
            params: no_decay,
            weight_decay: 0.0,
            lr_scale: 1.0,
        },
    ]
}

/// One group holding every trainable variable, as `torch.optim` does given
/// `model.parameters()`.
pub fn single_group(vs: &nn::VarStore, weight_decay: f64) -> Vec<ParamGroup> {
    vec![ParamGroup {
        name: "all".into(),
        params: trainable(vs),
        weight_decay,
        lr_scale: 1.0,
    }]
}

/// How parameters are grouped: weight decay, layer-wise learning-rate decay
/// and per-module learning-rate multipliers. Every built-in optimiser takes
/// these fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSpec {
    /// Weight decay of the decayed parameters.
    pub weight_decay: f64,
    /// Decay biases and normalisation parameters too.
    pub decay_norm_and_bias: bool,
    /// Layer-wise lr decay (BEiT, MAE fine-tuning): a parameter of layer
    /// `i` of `L` gets `decay^(L + 1 - i)`; see [`layer_id`].
    pub layer_decay: Option<f64>,
    /// Learning-rate multipliers by variable-name prefix (`method.predictor`:
    /// 10); the longest matching prefix applies.
    pub lr_multipliers: std::collections::BTreeMap<String, f64>,
}

/// Where a backbone's variables live in the var store (`backbone`), and
/// the layer structure it reports ([`crate::backbone::Backbone::layers`]).
#[derive(Clone, Copy)]
pub struct BackboneLayers<'a> {
    /// Var-store path of the backbone, without the trailing dot.
    pub prefix: &'a str,
    /// What the backbone reports; `None` when it reports nothing.
    pub layers: Option<&'a dyn ParameterLayers>,
}

impl BackboneLayers<'_> {
    /// The backbone-relative name of var-store variable `name`, if it is
    /// one of the backbone's.
    fn relative<'n>(&self, name: &'n str) -> Option<&'n str> {
        name.strip_prefix(self.prefix)?.strip_prefix('.')
    }
}

/// Parameter groups for `spec`: one per (decayed or not, lr multiplier),
/// named like `decay@0.25`. Layer-wise decay and the backbone's no-decay
/// parameters come from what `backbone` reports; variables outside it
/// (method heads) keep the full learning rate. A multiplier prefix that
/// matches no variable is an error, so a typo cannot go unnoticed, and so
/// is layer-wise decay on a backbone that reports no layers.
pub fn build_groups(
    vs: &nn::VarStore,
    spec: &GroupSpec,
    backbone: Option<BackboneLayers<'_>>,
) -> crate::Result<Vec<ParamGroup>> {
    let vars = trainable(vs);
    for (prefix, m) in &spec.lr_multipliers {
        if !(m.is_finite() && *m >= 0.0) {
            return Err(crate::Error::msg(format!(
                "lr_multipliers.{prefix}: expected a non-negative number, got {m}"
            )));
        }
        if !vars.iter().any(|(n, _)| n.starts_with(prefix.as_str())) {
            let roots: std::collections::BTreeSet<&str> =
                vars.iter().filter_map(|(n, _)| n.split('.').next()).collect();
            return Err(crate::Error::msg(format!(
                "lr_multipliers.{prefix}: no trainable variable starts with `{prefix}` (top-level modules: {})",
                roots.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let reported = backbone.and_then(|b| b.layers.map(|l| (b, l)));
    if let Some(d) = spec.layer_decay {
        if !(d > 0.0 && d <= 1.0) {
            return Err(crate::Error::msg(format!(
                "layer_decay: expected a number in (0, 1], got {d}"
            )));
        }
        if reported.is_none() {
            return Err(crate::Error::msg(
                "layer_decay: the backbone reports no layers (Backbone::layers), so layer-wise decay cannot be applied",
            ));
        }
    }
    let layers = reported.map_or(0, |(_, l)| l.num_layers());
    let mut groups: Vec<ParamGroup> = vec![];
    for (name, tensor) in vars {
        let inside = reported.and_then(|(b, l)| b.relative(&name).map(|rel| (l, rel)));
        let excluded = inside.is_some_and(|(l, rel)| l.no_weight_decay(rel));
        let decays = spec.decay_norm_and_bias || (tensor.dim() > 1 && !excluded);
        let layer = inside.map_or(layers + 1, |(l, rel)| l.layer_of(rel).min(layers + 1));
        let mut scale = match spec.layer_decay {
            Some(d) => d.powi((layers + 1 - layer) as i32),
            None => 1.0,
        };
        if let Some((_, m)) = spec
            .lr_multipliers
            .iter()
            .filter(|(p, _)| name.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
        {
            scale *= m;
        }
        let group_name = format!("{}@{scale}", if decays { "decay" } else { "no_decay" });
        match groups.iter_mut().find(|g| g.name == group_name) {
            Some(g) => g.params.push((name, tensor)),
            None => groups.push(ParamGroup {
                name: group_name,
                params: vec![(name, tensor)],
                weight_decay: if decays { spec.weight_decay } else { 0.0 },
                lr_scale: scale,
            }),
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::Backbone;
    use crate::nn::{ResNet, ResNetParams, VisionTransformer, VitParams, VitSize};

    fn scales(groups: &[ParamGroup]) -> std::collections::BTreeMap<String, (f64, f64)> {
        groups
            .iter()
            .flat_map(|g| {
                g.params
                    .iter()
                    .map(move |(n, _)| (n.clone(), (g.lr_scale, g.weight_decay)))
            })
            .collect()
    }

    fn at_backbone(model: &dyn Backbone) -> Option<BackboneLayers<'_>> {
        Some(BackboneLayers {
            prefix: "backbone",
            layers: model.layers(),
        })
    }

    #[test]
    fn layer_decay_follows_vit_depth_and_multipliers_follow_prefixes() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let params = VitParams {
            depth: Some(2),
            image_size: 32,
            pos_embed: crate::nn::vit::PosEmbed::Learned,
            ..VitParams::sized(VitSize::Tiny)
        };
        let vit = VisionTransformer::new(&(vs.root() / "backbone"), 3, &params).unwrap();
        let _head = vs
            .root()
            .sub("method")
            .sub("head")
            .var("weight", &[4, 4], nn::Init::Const(0.0));
        let spec = GroupSpec {
            weight_decay: 0.05,
            layer_decay: Some(0.5),
            lr_multipliers: [("method.head".to_string(), 10.0)].into(),
            ..Default::default()
        };
        let s = scales(&build_groups(&vs, &spec, at_backbone(&vit)).unwrap());
        // Two blocks: embeddings 0.5^3, block 0 0.5^2, block 1 0.5, the rest 1;
        // no decay on the class token and positions (timm's no_weight_decay).
        assert_eq!(s["backbone.cls_token"], (0.125, 0.0));
        assert_eq!(s["backbone.pos_embed"], (0.125, 0.0));
        assert_eq!(s["backbone.patch_embed.proj.weight"], (0.125, 0.05));
        assert_eq!(s["backbone.patch_embed.proj.bias"], (0.125, 0.0));
        assert_eq!(s["backbone.blocks.0.attn.qkv.weight"], (0.25, 0.05));
        assert_eq!(s["backbone.blocks.1.mlp.fc2.weight"], (0.5, 0.05));
        assert_eq!(s["backbone.norm.weight"], (1.0, 0.0));
        assert_eq!(s["method.head.weight"], (10.0, 0.05));
    }

    #[test]
    fn resnet_stages_are_layers_and_typos_are_errors() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let resnet = ResNet::new(
            &(vs.root() / "backbone"),
            3,
            &ResNetParams {
                width: 4,
                ..Default::default()
            },
        )
        .unwrap();
        let spec = GroupSpec {
            layer_decay: Some(0.5),
            ..Default::default()
        };
        let s = scales(&build_groups(&vs, &spec, at_backbone(&resnet)).unwrap());
        assert_eq!(s["backbone.conv1.weight"].0, 0.5f64.powi(5));
        assert_eq!(s["backbone.layer1.0.conv1.weight"].0, 0.5f64.powi(4));
        assert_eq!(s["backbone.layer4.1.bn2.bias"].0, 0.5);
        let typo = GroupSpec {
            lr_multipliers: [("method.predictr".to_string(), 10.0)].into(),
            ..Default::default()
        };
        let err = build_groups(&vs, &typo, None).unwrap_err().to_string();
        assert!(
            err.contains("lr_multipliers.method.predictr: no trainable variable"),
            "{err}"
        );
        assert!(err.contains("top-level modules: backbone"), "{err}");
    }

    #[test]
    fn layer_decay_on_a_backbone_that_reports_nothing_is_an_error() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _w = vs.root().sub("backbone").var("w", &[2, 2], nn::Init::Const(0.0));
        let spec = GroupSpec {
            layer_decay: Some(0.7),
            ..Default::default()
        };
        let silent = BackboneLayers {
            prefix: "backbone",
            layers: None,
        };
        let err = build_groups(&vs, &spec, Some(silent)).unwrap_err().to_string();
        assert!(err.contains("the backbone reports no layers"), "{err}");
        // Without layer decay, nothing is asked of it.
        let plain = GroupSpec::default();
        assert_eq!(build_groups(&vs, &plain, Some(silent)).unwrap().len(), 1);
    }
}
