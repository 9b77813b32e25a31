//! The engine on a tiny learner: two phases with different losses per
//! step, dropout (libtorch's generator), an EMA copy and accumulation; an
//! interrupted run resumed from its checkpoint ends bit-identical to an
//! uninterrupted one.

use std::path::Path;

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use super::*;
use crate::optim::{single_group, Sgd, SgdConfig};
use crate::schedule::Schedule;
use crate::Sample;

/// Phase 0 regresses `w . x` to `sum(x)`, phase 1 pulls `b` towards 3.
struct TwoPhases {
    linear: nn::Linear,
    phases_seen: Vec<(u64, usize)>,
}

impl Learner for TwoPhases {
    fn phases(&self) -> usize {
        2
    }
    fn losses(&mut self, batch: &Batch, step: u64, phase: usize) -> Result<Losses> {
        self.phases_seen.push((step, phase));
        let mut losses = Losses::default();
        if phase == 0 {
            let x = batch.images.flatten(1, -1).dropout(0.5, true);
            let y = self.linear.forward(&x).squeeze_dim(1);
            let target = batch.images.flatten(1, -1).sum_dim_intlist(1, false, Kind::Float);
            losses.push("fit", (y - target).square().mean(Kind::Float));
        } else {
            let b = self.linear.bs.as_ref().unwrap();
            losses.push("bias", (b - 3.0).square().sum(Kind::Float));
        }
        Ok(losses)
    }
    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "calls": self.phases_seen.len() }))
    }
}

fn batches(from_step: u64) -> impl Iterator<Item = Result<Batch>> {
    (from_step * 2..).map(|i| {
        tch::manual_seed(1000 + i as i64);
        let samples = (0..4)
            .map(|_| Sample::new(Tensor::rand([1, 2, 2], (Kind::Float, Device::Cpu))))
            .collect();
        Batch::collate(samples)
    })
}

/// Trains `steps` of 6 in `dir` (resuming when asked); `fail_after`
/// makes the data stream end there, as a killed run would.
fn train(dir: &Path, resume: bool, fail_after: Option<u64>) -> (Result<TrainSummary>, nn::VarStore, usize) {
    tch::manual_seed(7);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let linear = nn::linear(vs.root() / "online", 4, 1, Default::default());
    let _copy = nn::linear(vs.root() / "copy", 4, 1, Default::default());
    let ema = Ema::new("copy", &vs, "online", "copy", Schedule::cosine(0.5, 1.0)).unwrap();
    let groups = single_group(&vs, 0.0);
    let sgd = Sgd::new(
        SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
        },
        groups,
    );
    let config = TrainConfig {
        steps: 6,
        accumulate: 2,
        checkpoint_every: 1,
        keep_checkpoints: 2,
        seed: 3,
        ..TrainConfig::default()
    };
    let scheduler: Box<dyn crate::scheduler::Scheduler> = Box::new(Constant);
    let mut learner = TwoPhases {
        linear,
        phases_seen: vec![],
    };
    let mut trainer = Trainer::new(config, &mut vs, Box::new(sgd), scheduler)
        .with_dir(dir, resume)
        .unwrap()
        .with_emas(vec![ema]);
    let done = trainer.restore(&mut learner).unwrap();
    let mut data = batches(done).take(fail_after.map_or(usize::MAX, |f| ((f - done) * 2) as usize));
    let summary = trainer.fit(&mut learner, &mut data, &mut |_| Ok(vec![]));
    let calls = learner.phases_seen.len();
    drop(trainer);
    (summary, vs, calls)
}

/// SGD at lr 0.1 without momentum on every variable of `vs`.
fn plain_sgd(vs: &nn::VarStore) -> Sgd {
    Sgd::new(
        SgdConfig {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false,
        },
        single_group(vs, 0.0),
    )
}

struct Constant;
impl crate::scheduler::Scheduler for Constant {
    fn factor(&self, _: u64, _: u64) -> Result<f64> {
        Ok(1.0)
    }
}

#[test]
fn two_phases_per_step_resume_to_identical_weights() {
    let root = std::env::temp_dir().join(format!("visage-train-{}", std::process::id()));
    let (whole, interrupted) = (root.join("whole"), root.join("interrupted"));
    let (summary, reference, calls) = train(&whole, false, None);
    let summary = summary.unwrap();
    // Each step: two phases of two micro-batches each.
    assert_eq!(calls, 6 * 2 * 2);
    assert_eq!(summary.final_losses.keys().collect::<Vec<_>>(), ["bias", "fit"]);
    assert!(summary.final_losses["bias"] < summary.first_losses["bias"]);

    let (failed, _, _) = train(&interrupted, false, Some(4));
    let err = failed.unwrap_err().to_string();
    assert!(err.contains("the data stream ended"), "{err}");
    let (resumed, vs, calls) = train(&interrupted, true, None);
    assert_eq!(resumed.unwrap().final_losses, summary.final_losses);
    assert_eq!(calls, 2 * 2 * 2, "the resumed run computes steps 4 and 5 only");
    let (a, b) = (reference.variables(), vs.variables());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "`{name}` differs after resuming");
    }
    // The copy followed the online weights (frozen, not trained, not equal).
    assert!(!b["copy.weight"].requires_grad());
    assert!(!b["copy.weight"].equal(&b["online.weight"]));
    let metrics = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics(&whole), metrics(&interrupted));
    assert!(metrics(&whole).contains("\"momentum/copy\":0.5"), "{}", metrics(&whole));
    // Each phase logs its own gradient norm.
    assert!(metrics(&whole).contains("\"grad_norm/0\":"), "{}", metrics(&whole));
    assert!(metrics(&whole).contains("\"grad_norm/1\":"), "{}", metrics(&whole));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_non_finite_loss_stops_with_the_step_and_says_no_checkpoint_exists() {
    struct Nan;
    impl Learner for Nan {
        fn losses(&mut self, batch: &Batch, _: u64, _: usize) -> Result<Losses> {
            let mut losses = Losses::default();
            losses.push("nan", batch.images.sum(Kind::Float) * f64::NAN);
            Ok(losses)
        }
    }
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _w = vs.root().var("w", &[1], nn::Init::Const(0.0));
    let sgd = plain_sgd(&vs);
    let config = TrainConfig {
        steps: 3,
        label: "fine_tune".into(),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &mut vs, Box::new(sgd), Box::new(Constant));
    let err = trainer
        .fit(&mut Nan, &mut batches(0), &mut |_| Ok(vec![]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "fine_tune: loss term `nan` is NaN at step 0; stopping before the update (no checkpoint was written yet;"
        ),
        "{err}"
    );
}

#[test]
fn the_gradient_norm_before_clipping_is_logged_and_the_step_is_clipped() {
    // loss = 3 w0 + 4 w1: the gradient is (3, 4) at every step, norm 5.
    let root = std::env::temp_dir().join(format!("visage-train-norm-{}", std::process::id()));
    let mut vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().var("w", &[2], nn::Init::Const(0.0));
    struct Linear(Tensor);
    impl Learner for Linear {
        fn losses(&mut self, _: &Batch, _: u64, _: usize) -> Result<Losses> {
            let mut losses = Losses::default();
            losses.push("plane", (&self.0 * Tensor::from_slice(&[3.0f32, 4.0])).sum(Kind::Float));
            Ok(losses)
        }
    }
    let sgd = plain_sgd(&vs);
    let config = TrainConfig {
        steps: 2,
        clip_grad_norm: Some(1.0),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &mut vs, Box::new(sgd), Box::new(Constant))
        .with_dir(&root, false)
        .unwrap();
    trainer
        .fit(&mut Linear(w.shallow_clone()), &mut batches(0), &mut |_| Ok(vec![]))
        .unwrap();
    drop(trainer);
    // Two clipped steps of length lr * 1 along -(3, 4) / 5.
    let moved = Vec::<f32>::try_from(&w).unwrap();
    assert!(
        (moved[0] + 0.12).abs() < 1e-6 && (moved[1] + 0.16).abs() < 1e-6,
        "{moved:?}"
    );
    let metrics = std::fs::read_to_string(root.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"grad_norm\":5.0").count(), 2, "{metrics}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_phase_without_loss_terms_rests_without_an_optimiser_step() {
    // Phase 0 pulls w0 along -1 every step; phase 1 pulls w1 along -1,
    // but returns no terms in steps 0 and 1 (a warm-up).
    let root = std::env::temp_dir().join(format!("visage-train-rest-{}", std::process::id()));
    let mut vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().var("w", &[2], nn::Init::Const(0.0));
    struct WarmUp(Tensor);
    impl Learner for WarmUp {
        fn phases(&self) -> usize {
            2
        }
        fn losses(&mut self, _: &Batch, step: u64, phase: usize) -> Result<Losses> {
            let mut losses = Losses::default();
            match phase {
                0 => losses.push("first", self.0.get(0)),
                _ if step >= 2 => losses.push("second", self.0.get(1)),
                _ => {}
            }
            Ok(losses)
        }
    }
    let sgd = plain_sgd(&vs);
    let config = TrainConfig {
        steps: 5,
        accumulate: 2,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &mut vs, Box::new(sgd), Box::new(Constant))
        .with_dir(&root, false)
        .unwrap();
    let summary = trainer
        .fit(&mut WarmUp(w.shallow_clone()), &mut batches(0), &mut |_| Ok(vec![]))
        .unwrap();
    drop(trainer);
    // Five steps of 0.1 on w0; three on w1 (steps 2, 3, 4).
    let moved = Vec::<f32>::try_from(&w).unwrap();
    assert!(
        (moved[0] + 0.5).abs() < 1e-6 && (moved[1] + 0.3).abs() < 1e-6,
        "{moved:?}"
    );
    let metrics = std::fs::read_to_string(root.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"grad_norm/0\"").count(), 5, "{metrics}");
    assert_eq!(metrics.matches("\"grad_norm/1\"").count(), 3, "{metrics}");
    assert_eq!(metrics.matches("\"second\"").count(), 3, "{metrics}");
    // Each term's first value is that of its first step (w1 = 0 at step 2).
    assert_eq!(
        summary.first_losses.get("second"),
        Some(&0.0),
        "{:?}",
        summary.first_losses
    );
    assert!(
        (summary.final_losses["second"] + 0.2).abs() < 1e-6,
        "{:?}",
        summary.final_losses
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_phase_with_terms_for_some_micro_batches_only_is_an_error() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().var("w", &[1], nn::Init::Const(0.0));
    struct Uneven(Tensor, u32);
    impl Learner for Uneven {
        fn losses(&mut self, _: &Batch, _: u64, _: usize) -> Result<Losses> {
            self.1 += 1;
            let mut losses = Losses::default();
            if self.1 % 2 == 1 {
                losses.push("odd", self.0.sum(Kind::Float));
            }
            Ok(losses)
        }
    }
    let config = TrainConfig {
        steps: 1,
        accumulate: 2,
        label: "pretrain".into(),
        ..TrainConfig::default()
    };
    let sgd = plain_sgd(&vs);
    let mut trainer = Trainer::new(config, &mut vs, Box::new(sgd), Box::new(Constant));
    let err = trainer
        .fit(&mut Uneven(w.shallow_clone(), 0), &mut batches(0), &mut |_| Ok(vec![]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "pretrain: phase 0 of step 0 returned loss terms for some micro-batches and none for others"
    );
}
