//! The `pcl` method against PyTorch: tests/reference/pcl_iteration.py
//! writes a PCL checkpoint as the official training script saves it
//! (`state_dict` of the DataParallel model: `module.encoder.`,
//! `module.exp_fc.`, `module.pose_fc.`, `module.decoder.`) together with a
//! batch, the iteration's random draws, and the losses and gradients of
//! its three optimiser steps. The checkpoint loads into `facecycle`
//! through `weights` (prefix found by itself) and into the method's
//! modules by name; with the same draws every loss agrees to 1e-5 and
//! every parameter's gradient to 1e-5 (relative to the largest gradient
//! entry of that parameter, when above 1: some gradients are exactly zero
//! in exact arithmetic, such as the bias of `theta` before a softmax over
//! positions or of a linear layer before batch norm, and both sides give
//! rounding noise there).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pcl::method::mixing::Mixing;
use pcl::method::{DecoderOutput, PclParams};
use pcl::{FaceCycle, FaceCycleParams, Pcl};
use tch::{nn, Device, Tensor};
use visage_core::backbone::{Backbone, POOLED};
use visage_core::method::{Losses, MethodContext};
use visage_core::nn::weights::{load_state_dict, load_weights, read_state_dict, WeightsSpec};
use visage_core::scalars::Scalars;
use visage_core::teacher::{BackboneSpec, Teachers};
use visage_core::Registry;

/// Runs the reference script into a fresh folder, which it returns.
fn reference_dir() -> PathBuf {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    let dir = std::env::temp_dir().join(format!("visage-pcl-method-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/pcl_iteration.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pcl_iteration.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The reference script's sizes.
fn params() -> PclParams {
    PclParams {
        projector_dim: 32,
        decoder_width: 32,
        decoder_depth: 6,
        pose_negatives: 3,
        ..PclParams::default()
    }
}

/// A var store holding `backbone` and `method`, loaded from `pcl.pth`.
struct Model {
    vs: nn::VarStore,
    backbone: FaceCycle,
    pcl: Pcl,
}

fn model(dir: &Path, params: PclParams) -> Model {
    let vs = nn::VarStore::new(Device::Cpu);
    let fc = FaceCycleParams {
        width: 8,
        image_size: 64,
    };
    let backbone = FaceCycle::new(&(vs.root() / "backbone"), 3, &fc).unwrap();
    let registry = Registry::new();
    let spec = BackboneSpec {
        name: "facecycle".into(),
        params: serde_json::Value::Null,
    };
    let teachers = Teachers::new(&registry, &vs, spec, "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
        views: vec![1, 1, 2, 3],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let pcl = Pcl::new(params, &ctx).unwrap();
    drop(ctx);
    drop(teachers);

    // The backbone as an experiment's `backbone.weights` loads it.
    let weights = WeightsSpec {
        path: dir.join("pcl.pth"),
        prefix: None,
        strict: true,
    };
    let report = load_weights(&vs, "backbone", &weights).unwrap();
    assert_eq!(report.prefix, "state_dict.module.encoder.");
    assert!(report.unexpected.is_empty(), "{report}");
    // The method's modules by their official names.
    let report = load_state_dict(&vs, "method", read_state_dict(&dir.join("pcl.pth")).unwrap(), None).unwrap();
    assert_eq!(report.prefix, "state_dict.module.");
    assert!(report.missing.is_empty() && report.mismatched.is_empty(), "{report}");
    Model { vs, backbone, pcl }
}

fn close(name: &str, ours: f64, theirs: f64) {
    assert!((ours - theirs).abs() < 1e-5, "{name}: visage {ours}, pytorch {theirs}");
}

/// Back-propagates `loss` from zero gradients and compares every
/// parameter's gradient with the reference's `grad.<tag>.<name>`.
fn check_gradients(m: &Model, loss: &Tensor, tag: &str, reference: &HashMap<String, Tensor>) {
    for v in m.vs.trainable_variables() {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    loss.backward();
    let mut compared = 0;
    for (name, var) in m.vs.variables() {
        if !var.requires_grad() {
            continue;
        }
        let official = match name.split_once('.') {
            Some(("backbone", rest)) => format!("encoder.{rest}"),
            Some(("method", rest)) => rest.to_string(),
            _ => panic!("unexpected variable {name}"),
        };
        let ours = var.grad();
        match reference.get(&format!("grad.{tag}.{official}")) {
            Some(theirs) => {
                assert!(ours.defined(), "{tag}: no gradient for {name}");
                let scale = theirs.abs().max().double_value(&[]).max(1.0);
                let diff = (&ours - theirs).abs().max().double_value(&[]);
                assert!(
                    diff <= 1e-5 * scale,
                    "{tag}: gradient of {name} differs by {diff} (scale {scale})"
                );
                compared += 1;
            }
            None => assert!(
                !ours.defined() || ours.abs().max().double_value(&[]) == 0.0,
                "{tag}: {name} has a gradient, PyTorch has none"
            ),
        }
    }
    assert!(compared > 20, "{tag}: only {compared} gradients compared");
}

fn term(losses: &Losses, name: &str) -> Tensor {
    losses.0.iter().find(|(n, _)| n == name).unwrap().1.shallow_clone()
}

#[test]
fn one_pcl_iteration_equals_pytorch() {
    let dir = reference_dir();
    let r: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join("reference.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    let m = model(&dir, params());

    // The checkpoint's encoder evaluates as PyTorch's.
    let fea = tch::no_grad(|| m.backbone.forward(&r["x"], false).unwrap());
    let diff = (&fea[POOLED] - &r["fea"]).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "pooled features differ by {diff}");

    // Step 1: reconstructions and orthogonality.
    let noise = [r["noise0"].shallow_clone(), r["noise1"].shallow_clone()];
    let losses = m
        .pcl
        .reconstruction_losses(&m.backbone, &r["x"], &noise, false)
        .unwrap();
    let (rec, orth) = (term(&losses, "reconstruction"), term(&losses, "orthogonal"));
    close(
        "reconstruction",
        rec.double_value(&[]),
        r["loss.reconstruction"].double_value(&[]),
    );
    close(
        "orthogonal",
        orth.double_value(&[]),
        r["loss.orthogonal"].double_value(&[]),
    );
    check_gradients(&m, &losses.total().unwrap(), "reconstruction", &r);

    // Step 2: face-aware contrastive on the distance crops.
    let mixing = Mixing {
        lambda: r["face_lambda"].shallow_clone(),
        permutation: r["face_perm"].shallow_clone(),
    };
    let face = m
        .pcl
        .face_loss(&m.backbone, [&r["crop0"], &r["crop1"]], &mixing)
        .unwrap();
    close("face", face.double_value(&[]), r["loss.face"].double_value(&[]));
    check_gradients(&m, &face, "face", &r);

    // Step 3: pose contrastive with flipped negatives.
    let mixing = Mixing {
        lambda: r["pose_lambda"].shallow_clone(),
        permutation: r["pose_perm"].shallow_clone(),
    };
    let negs: Vec<&Tensor> = (0..3).map(|k| &r[&format!("neg{k}")]).collect();
    let pose = m
        .pcl
        .pose_loss(&m.backbone, [&r["view0"], &r["view1"]], &negs, &mixing)
        .unwrap();
    close("pose", pose.double_value(&[]), r["loss.pose"].double_value(&[]));
    check_gradients(&m, &pose, "pose", &r);

    // The official code's quirks, as options.
    let quirks = model(
        &dir,
        PclParams {
            decoder_output: DecoderOutput::Tanh,
            official_negative_grouping: true,
            ..params()
        },
    );
    let losses = tch::no_grad(|| {
        quirks
            .pcl
            .reconstruction_losses(&quirks.backbone, &r["x"], &noise, false)
            .unwrap()
    });
    close(
        "reconstruction (tanh against [0, 1])",
        term(&losses, "reconstruction").double_value(&[]),
        r["loss.reconstruction_tanh"].double_value(&[]),
    );
    let pose = tch::no_grad(|| {
        quirks
            .pcl
            .pose_loss(&quirks.backbone, [&r["view0"], &r["view1"]], &negs, &mixing)
            .unwrap()
    });
    close(
        "pose (official grouping)",
        pose.double_value(&[]),
        r["loss.pose_official"].double_value(&[]),
    );

    std::fs::remove_dir_all(&dir).unwrap();
}
