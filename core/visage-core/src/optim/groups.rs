//! Parameter groups: which parameters get weight decay and at what
//! learning-rate multiplier.

use tch::{nn, Tensor};

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
