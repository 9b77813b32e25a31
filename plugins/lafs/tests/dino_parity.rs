//! LAFS's DINO head and loss against PyTorch: tests/reference/dino.py
//! (written from the DINO and LAFS papers, float64) saves the weights of a
//! student head, a teacher head (both with the norm of the last layer fixed
//! at 1) and a head that trains it, with DINO's parameter names, features
//! for 2 global and 3 local views, a centre, and the loss, the gradients of
//! the student head and of its input, and the centres after two steps.
//! The heads load by name; Visage, in float32, agrees to 1e-5 (values,
//! loss, centres and gradients).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use lafs::method::{DinoHead, DinoHeadParams, DinoLoss};
use tch::{nn, Device, Kind, Tensor};
use visage_core::nn::weights::load_state_dict;
use visage_core::schedule::{Schedule, Shape};

const N: i64 = 4;

/// Runs tests/reference/dino.py into a fresh folder and reads its tensors.
fn reference() -> HashMap<String, Tensor> {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    // One folder per call: the tests run in parallel.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::SeqCst);
    let dir: PathBuf = std::env::temp_dir().join(format!("visage-lafs-dino-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/dino.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "dino.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tensors = Tensor::read_safetensors(dir.join("dino.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    tensors.into_iter().map(|(k, v)| (k, v.to_kind(Kind::Float))).collect()
}

/// `|ours - theirs|` at most 1e-5 everywhere (measured: at most 1.2e-6).
fn assert_close(what: &str, ours: &Tensor, theirs: &Tensor) {
    assert_eq!(ours.size(), theirs.size(), "{what}");
    let diff = (ours - theirs).abs().max().double_value(&[]);
    assert!(diff <= 1e-5, "{what} differs by {diff}");
}

fn head(reference: &HashMap<String, Tensor>, name: &str, norm_last_layer: bool) -> (nn::VarStore, DinoHead) {
    let vs = nn::VarStore::new(Device::Cpu);
    let params = DinoHeadParams {
        hidden: 24,
        bottleneck: 8,
        out_dim: 32,
        layers: 3,
        norm_last_layer,
    };
    let head = DinoHead::new(&(vs.root() / name), 16, &params).unwrap();
    let state: Vec<(String, Tensor)> = reference
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{name}.")))
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect();
    let report = load_state_dict(&vs, name, state, Some(&format!("{name}."))).unwrap();
    assert!(
        report.missing.is_empty() && report.unexpected.is_empty() && report.mismatched.is_empty(),
        "{report}"
    );
    (vs, head)
}

#[test]
fn dino_head_and_loss_with_centring_match_pytorch() {
    let r = reference();
    let (student_vs, student) = head(&r, "student", true);
    let (_teacher_vs, teacher) = head(&r, "teacher", true);
    let xs = r["xs"].set_requires_grad(true);
    let out_s = student.forward(&xs, false);
    let out_t = tch::no_grad(|| teacher.forward(&r["xt"], false));
    assert_close("student head output", &out_s, &r["student_out"]);
    assert_close("teacher head output", &out_t, &r["teacher_out"]);

    let mut loss = DinoLoss::new(32, 0.1, 0.9, Device::Cpu).unwrap();
    loss.set_center(r["center0"].shallow_clone()).unwrap();
    let value = loss.loss(&out_s.split(N, 0), &out_t.split(N, 0), 0.07).unwrap();
    assert_close("loss", &value.view([1]), &r["loss1"]);
    value.backward();
    assert_close("gradient of the head's input", &xs.grad(), &r["grad_xs"]);
    for (name, var) in student_vs.variables() {
        let grad = var.grad();
        if name.ends_with("weight_g") {
            assert!(!grad.defined(), "the fixed norm got a gradient");
            continue;
        }
        assert_close(&format!("gradient of {name}"), &grad, &r[&format!("grad.{name}")]);
    }
    // The centre moves after the step; the next step uses it.
    loss.update_center();
    assert_close("centre after step 1", loss.center(), &r["center1"]);
    let second = loss
        .loss(&out_s.detach().split(N, 0), &out_t.split(N, 0), 0.0625)
        .unwrap();
    assert_close("loss of step 2", &second.view([1]), &r["loss2"]);
    loss.update_center();
    assert_close("centre after step 2", loss.center(), &r["center2"]);
}

#[test]
fn a_head_with_a_trained_norm_matches_pytorch_gradients_of_g_and_v() {
    let r = reference();
    let (vs, free) = head(&r, "free", false);
    let (_teacher_vs, teacher) = head(&r, "teacher", true);
    let out_t = tch::no_grad(|| teacher.forward(&r["xt"], false));
    let mut loss = DinoLoss::new(32, 0.1, 0.9, Device::Cpu).unwrap();
    loss.set_center(r["center0"].shallow_clone()).unwrap();
    let value = loss
        .loss(&free.forward(&r["xs"], false).split(N, 0), &out_t.split(N, 0), 0.07)
        .unwrap();
    assert_close("loss", &value.view([1]), &r["free_loss"]);
    value.backward();
    let vars = vs.variables();
    for name in ["free.last_layer.weight_g", "free.last_layer.weight_v"] {
        assert_close(name, &vars[name].grad(), &r[&format!("grad.{name}")]);
    }
}

/// DINO's warm-up over W epochs (numpy's linspace, both ends included) is
/// a `linear` schedule of W - 1 steps.
#[test]
fn the_teacher_temperature_warm_up_is_dinos_linspace() {
    let r = reference();
    let schedule = Schedule::Shaped(Shape::Linear {
        start: 0.07,
        end: 0.04,
        steps: Some(29),
    });
    let ours: Vec<f32> = (0..100).map(|e| schedule.value(e, 100) as f32).collect();
    assert_close(
        "teacher temperature",
        &Tensor::from_slice(&ours),
        &r["teacher_temperature"],
    );
}
