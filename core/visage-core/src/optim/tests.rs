//! Our optimisers against libtorch's, step by step, and state round trips.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::*;
use crate::optimizer::{Optimizer, StepInfo};

/// A linear layer in its own var store, with fixed initial weights (set
/// explicitly: tests run in parallel and the global RNG is shared).
fn model() -> (nn::VarStore, nn::Linear) {
    let vs = nn::VarStore::new(Device::Cpu);
    let linear = nn::linear(vs.root() / "fc", 5, 3, Default::default());
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            let n = v.numel() as i64;
            v.copy_(&(Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.7).sin().view_as(&v));
        }
    });
    (vs, linear)
}

fn loss(linear: &nn::Linear, step: i64) -> Tensor {
    let x = (Tensor::arange(20, (Kind::Float, Device::Cpu)).view([4, 5]) * (0.3 + step as f64 * 0.1)).sin();
    let target = Tensor::arange(12, (Kind::Float, Device::Cpu)).view([4, 3]).cos();
    (linear.forward(&x) - target).pow_tensor_scalar(2).mean(Kind::Float)
}

fn weights(vs: &nn::VarStore) -> Tensor {
    let mut vars: Vec<_> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::cat(&vars.iter().map(|(_, t)| t.flatten(0, -1)).collect::<Vec<_>>(), 0)
}

/// Runs ours and libtorch's for `steps` steps from the same start; returns
/// the largest difference of the weights.
fn against_libtorch(ours: impl Fn(&nn::VarStore) -> Box<dyn Optimizer>, theirs: impl OptimizerConfig, lr: f64) -> f64 {
    let (vs_a, fc_a) = model();
    let (vs_b, fc_b) = model();
    assert!(weights(&vs_a).equal(&weights(&vs_b)));
    let mut a = ours(&vs_a);
    let mut b = theirs.build(&vs_b, lr).unwrap();
    for step in 0..6 {
        a.zero_grad().unwrap();
        loss(&fc_a, step).backward();
        a.step(at(0, 1)).unwrap();
        b.zero_grad();
        loss(&fc_b, step).backward();
        b.step();
    }
    assert!(
        !weights(&vs_a).equal(&model().0.variables()["fc.weight"].flatten(0, -1)),
        "nothing moved"
    );
    (weights(&vs_a) - weights(&vs_b)).abs().max().double_value(&[])
}

#[test]
fn sgd_matches_libtorch() {
    for (momentum, nesterov, wd) in [(0.0, false, 0.0), (0.9, false, 0.01), (0.9, true, 0.05)] {
        let config = SgdConfig {
            lr: 0.1,
            momentum,
            nesterov,
        };
        let diff = against_libtorch(
            |vs| Box::new(Sgd::new(config, single_group(vs, wd))),
            nn::Sgd {
                momentum,
                dampening: 0.0,
                wd,
                nesterov,
            },
            0.1,
        );
        assert!(diff < 1e-6, "momentum {momentum} nesterov {nesterov} wd {wd}: {diff}");
    }
}

#[test]
fn adam_and_adamw_match_libtorch() {
    for (decoupled, wd) in [(false, 0.0), (false, 0.05), (true, 0.05)] {
        let config = AdamConfig {
            lr: 0.01,
            betas: [0.9, 0.99],
            eps: 1e-8,
            decoupled,
        };
        let ours = |vs: &nn::VarStore| Box::new(Adam::new(config, single_group(vs, wd))) as Box<dyn Optimizer>;
        let diff = if decoupled {
            against_libtorch(
                ours,
                nn::AdamW {
                    beta1: 0.9,
                    beta2: 0.99,
                    wd,
                    eps: 1e-8,
                    amsgrad: false,
                },
                0.01,
            )
        } else {
            against_libtorch(
                ours,
                nn::Adam {
                    beta1: 0.9,
                    beta2: 0.99,
                    wd,
                    eps: 1e-8,
                    amsgrad: false,
                },
                0.01,
            )
        };
        assert!(diff < 1e-6, "decoupled {decoupled} wd {wd}: {diff}");
    }
}

#[test]
fn lars_scales_matrices_by_the_trust_ratio_and_leaves_biases_plain() {
    let (vs, fc) = model();
    let before: Vec<Tensor> = ["fc.weight", "fc.bias"]
        .iter()
        .map(|n| vs.variables()[*n].copy())
        .collect();
    let config = LarsConfig {
        lr: 0.5,
        momentum: 0.9,
        trust_coefficient: 0.001,
    };
    let mut lars = Lars::new(config, single_group(&vs, 1e-4));
    lars.zero_grad().unwrap();
    loss(&fc, 0).backward();
    let bias_grad = vs.variables()["fc.bias"].grad().copy();
    lars.step(at(0, 1)).unwrap();
    let vars = vs.variables();
    // First step: mu = trust * (g + wd p), whose norm is eta * ||p||.
    let moved = (&before[0] - &vars["fc.weight"]).norm().double_value(&[]);
    let expected = 0.5 * 0.001 * before[0].norm().double_value(&[]);
    assert!(
        (moved - expected).abs() < 1e-6 * expected.max(1.0),
        "{moved} vs {expected}"
    );
    // The bias takes a plain SGD step, without weight decay.
    let bias_step = (&before[1] - &vars["fc.bias"]) - bias_grad * 0.5;
    assert!(bias_step.abs().max().double_value(&[]) < 1e-7);
}

#[test]
fn decay_groups_exempt_biases_and_norms() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _conv = nn::conv2d(vs.root() / "conv", 3, 4, 3, Default::default());
    let _bn = nn::batch_norm2d(vs.root() / "bn", 4, Default::default());
    let groups = decay_groups(&vs, 0.05);
    let names = |g: &ParamGroup| g.params.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&groups[0]), ["conv.weight"]);
    assert_eq!(groups[0].weight_decay, 0.05);
    assert_eq!(names(&groups[1]), ["bn.bias", "bn.weight", "conv.bias"]);
    assert_eq!(groups[1].weight_decay, 0.0);
}

#[test]
fn a_restored_state_continues_exactly() {
    type Make = fn(&nn::VarStore) -> Box<dyn Optimizer>;
    let makers: [(&str, Make); 3] = [
        ("sgd", |vs| {
            Box::new(Sgd::new(
                SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    nesterov: true,
                },
                decay_groups(vs, 0.01),
            ))
        }),
        ("adamw", |vs| {
            Box::new(Adam::new(
                AdamConfig {
                    lr: 0.01,
                    betas: [0.9, 0.999],
                    eps: 1e-8,
                    decoupled: true,
                },
                decay_groups(vs, 0.05),
            ))
        }),
        ("lars", |vs| {
            Box::new(Lars::new(
                LarsConfig {
                    lr: 0.3,
                    momentum: 0.9,
                    trust_coefficient: 0.001,
                },
                decay_groups(vs, 1e-4),
            ))
        }),
    ];
    for (name, make) in makers {
        let (vs_a, fc_a) = model();
        let mut a = make(&vs_a);
        let train = |opt: &mut Box<dyn Optimizer>, fc: &nn::Linear, steps: std::ops::Range<i64>| {
            for step in steps {
                opt.zero_grad().unwrap();
                loss(fc, step).backward();
                opt.step(StepInfo {
                    step: 0,
                    total: 1,
                    lr_scale: 0.7,
                })
                .unwrap();
            }
        };
        train(&mut a, &fc_a, 0..3);
        // A fresh process: same weights, a new optimiser given the saved state.
        let (mut vs_b, fc_b) = model();
        vs_b.copy(&vs_a).unwrap();
        let mut b = make(&vs_b);
        let state = a.state().unwrap();
        assert_eq!(state.step, 3, "{name}");
        b.load_state(state.copy()).unwrap();
        train(&mut a, &fc_a, 3..6);
        train(&mut b, &fc_b, 3..6);
        assert!(weights(&vs_a).equal(&weights(&vs_b)), "{name}: resumed run differs");
        // A state for another model is refused.
        let (vs_c, _) = model();
        let mut c = make(&vs_c);
        let mut bad = state.copy();
        let key = bad.buffers.keys().next().unwrap().clone();
        bad.buffers.insert(key, Tensor::zeros([7], (Kind::Float, Device::Cpu)));
        let err = c.load_state(bad).unwrap_err().to_string();
        assert!(err.contains("has shape [7]"), "{name}: {err}");
    }
}

#[test]
fn clipping_caps_the_global_norm() {
    let (vs, fc) = model();
    (loss(&fc, 0) * 100.0).backward();
    let norm_of = || {
        let n: f64 = vs
            .trainable_variables()
            .iter()
            .map(|v| v.grad().pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]))
            .sum();
        n.sqrt()
    };
    let before = norm_of();
    assert!(before > 1.0, "{before}");
    assert!((clip_grad_norm(&vs, 1.0) - before).abs() < 1e-6 * before);
    assert!((norm_of() - 1.0).abs() < 1e-5, "{}", norm_of());
    // Below the cap nothing changes.
    assert!((clip_grad_norm(&vs, 10.0) - norm_of()).abs() < 1e-5);
    assert!((norm_of() - 1.0).abs() < 1e-5);
}

#[test]
fn the_momentum_copy_starts_equal_then_moves_towards_the_online_module() {
    let vs = nn::VarStore::new(Device::Cpu);
    let online = nn::batch_norm1d(vs.root() / "online", 3, Default::default());
    let _fc = nn::linear(vs.root() / "online" / "fc", 5, 3, Default::default());
    let _target_bn = nn::batch_norm1d(vs.root() / "target", 3, Default::default());
    let _target_fc = nn::linear(vs.root() / "target" / "fc", 5, 3, Default::default());
    let vars = vs.variables();
    let _ = tch::no_grad(|| vars["online.fc.weight"].shallow_clone().fill_(2.0));
    let ema = Ema::new(
        "head",
        &vs,
        "online",
        "target",
        crate::schedule::Schedule::cosine(0.9, 1.0),
    )
    .unwrap();
    // Equal at the start, frozen, and out of the trainable groups.
    assert!(vars["target.fc.weight"].equal(&vars["online.fc.weight"]));
    assert!(!vars["target.fc.weight"].requires_grad());
    let trainable: Vec<String> = single_group(&vs, 0.0)[0]
        .params
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert!(trainable.iter().all(|n| n.starts_with("online.")), "{trainable:?}");
    // m = 0.9 at step 0: target = 0.9 * 2 + 0.1 * 1 after the online weight moves to 1.
    let _ = tch::no_grad(|| vars["online.fc.weight"].shallow_clone().fill_(1.0));
    let _ = tch::no_grad(|| vars["online.running_mean"].shallow_clone().fill_(5.0));
    assert_eq!(ema.update(0, 10).unwrap(), 0.9);
    let expected = vars["online.fc.weight"].ones_like() * 1.9;
    assert!((&vars["target.fc.weight"] - expected).abs().max().double_value(&[]) < 1e-6);
    // Buffers are the target's own: its running mean did not follow.
    assert_eq!(
        vars["target.running_mean"].abs().sum(Kind::Float).double_value(&[]),
        0.0
    );
    let _ = online;
    // A target with a variable the online module lacks is refused, naming it.
    let _extra = vs.root().sub("other").var("w", &[2], nn::Init::Const(0.0));
    let err = Ema::new("x", &vs, "online", "other", 0.99.into())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "momentum copy `x`: `other.w` has no counterpart under `online`");
}

#[test]
fn weight_decay_follows_its_cosine_schedule() {
    // With zero gradients, plain SGD only decays: w_t = w_{t-1} (1 - lr wd_t).
    let (vs, _fc) = model();
    let start = weights(&vs);
    let groups = decay_groups(&vs, 0.04);
    let config = SgdConfig {
        lr: 0.5,
        momentum: 0.0,
        nesterov: false,
    };
    let total = 5;
    let mut sgd = Sgd::new(config, groups).with_weight_decay_end(0.4);
    let mut factor = 1.0;
    for t in 0..total {
        for (_, v) in vs.variables() {
            let mut g = v.grad();
            if !g.defined() {
                (v.sum(Kind::Float) * 0.0).backward();
            } else {
                let _ = g.zero_();
            }
        }
        sgd.step(at(t, total)).unwrap();
        // DINO's cosine_scheduler: the end value after the last step.
        let wd = 0.4 + (0.04 - 0.4) * 0.5 * (1.0 + (std::f64::consts::PI * t as f64 / total as f64).cos());
        factor *= 1.0 - 0.5 * wd;
    }
    let fc_weight = |vs: &nn::VarStore| vs.variables()["fc.weight"].shallow_clone();
    let expected = start.narrow(0, 3, 15) * factor; // fc.weight follows fc.bias (3) in name order
    assert!((fc_weight(&vs).flatten(0, -1) - expected).abs().max().double_value(&[]) < 1e-6);
    // Biases are not decayed.
    assert!(vs.variables()["fc.bias"].equal(&start.narrow(0, 0, 3)));
}

/// Training step `step` of `total` at the base learning rate.
fn at(step: u64, total: u64) -> StepInfo {
    StepInfo {
        step,
        total,
        lr_scale: 1.0,
    }
}
