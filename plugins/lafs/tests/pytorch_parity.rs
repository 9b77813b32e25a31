//! LAFS's fViT and its MobileNetV3 landmark network against PyTorch: a
//! checkpoint laid out as LAFS's DINO training saves it loads by name and
//! gives the landmarks and tokens of PyTorch models written from the papers
//! with LAFS's names (made by tests/reference/fvit.py with the venv's
//! torch; ./scripts/test sets VIRTUAL_ENV).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lafs::fvit::{self, AttentionScale};
use lafs::{Fvit, FvitParams};
use tch::{nn, Device, Tensor};
use visage_core::backbone::Backbone;
use visage_core::nn::weights::{load_state_dict, read_state_dict};

/// Runs tests/reference/fvit.py into a fresh folder, which it returns.
fn reference_dir() -> PathBuf {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    let dir = std::env::temp_dir().join(format!("visage-lafs-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/fvit.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "fvit.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn fvit(attention_scale: AttentionScale) -> (nn::VarStore, Fvit) {
    let vs = nn::VarStore::new(Device::Cpu);
    let params = FvitParams {
        image_size: 32,
        patch: 4,
        landmarks: 9,
        dim: 32,
        depth: 2,
        heads: 3,
        head_dim: 8,
        mlp: 48,
        landmark_width: 0.25,
        attention_scale,
        ..Default::default()
    };
    let model = Fvit::new(&(vs.root() / "backbone"), 3, &params).unwrap();
    (vs, model)
}

/// LAFS's fViT and landmark network from a checkpoint laid out as LAFS's
/// DINO training saves it; the teacher by default, the student on request.
#[test]
fn fvit_from_a_lafs_checkpoint_gives_pytorch_landmarks_and_tokens() {
    let dir = reference_dir();
    let reference: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join("reference.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    let x = &reference["lafs_x"];
    let file = dir.join("lafs_checkpoint.pth");
    let (vs, model) = fvit(AttentionScale::Dim);
    let report = load_state_dict(
        &vs,
        "backbone",
        read_state_dict(&file).unwrap(),
        Some("student.module.backbone."),
    )
    .unwrap();
    assert!(report.missing.is_empty() && report.mismatched.is_empty(), "{report}");
    let points = tch::no_grad(|| model.predict_landmarks(x, false).unwrap());
    let diff = max_diff(&points, &reference["lafs_points"]);
    assert!(diff < 1e-3, "landmarks differ from the reference by {diff} px");
    // Tokens sampled at the reference's points, all and a subset.
    let all = tch::no_grad(|| model.forward_at(x, &reference["lafs_points"], false).unwrap());
    for (ours, theirs) in [(fvit::CLS, "lafs_cls"), (fvit::TOKENS, "lafs_tokens")] {
        let diff = max_diff(&all[ours], &reference[theirs]);
        assert!(diff < 1e-4, "fvit `{ours}` differs by {diff}");
    }
    let sub = reference["lafs_points"].narrow(1, 2, 4);
    let some = tch::no_grad(|| model.forward_at(x, &sub, false).unwrap());
    assert!(max_diff(&some[fvit::CLS], &reference["lafs_sub_cls"]) < 1e-4);
    assert!(max_diff(&some[fvit::TOKENS], &reference["lafs_sub_tokens"]) < 1e-4);
    // The whole forward samples at the network's own landmarks.
    let whole = tch::no_grad(|| model.forward(x, false).unwrap());
    assert!(max_diff(&whole[fvit::CLS], &reference["lafs_cls"]) < 1e-3);

    // The usual attention scale is another model: the comparison can fail.
    let (vs, usual) = fvit(AttentionScale::HeadDim);
    load_state_dict(
        &vs,
        "backbone",
        read_state_dict(&file).unwrap(),
        Some("student.module.backbone."),
    )
    .unwrap();
    let other = tch::no_grad(|| usual.forward_at(x, &reference["lafs_points"], false).unwrap());
    assert!(max_diff(&other[fvit::CLS], &reference["lafs_cls"]) > 1e-3);

    // Without a prefix, the teacher is chosen (DINO evaluates the teacher).
    let (vs, _) = fvit(AttentionScale::Dim);
    let report = load_state_dict(&vs, "backbone", read_state_dict(&file).unwrap(), None).unwrap();
    assert_eq!(report.prefix, "teacher.backbone.");
    assert!(report.missing.is_empty(), "{report}");

    std::fs::remove_dir_all(&dir).unwrap();
}
