//! PCL's FaceCycle encoder against PyTorch: a checkpoint nested as PCL's
//! training script saves it loads by name and gives the features of a
//! PyTorch model written from the paper with the official names (made by
//! tests/reference/facecycle.py with the venv's torch; ./scripts/test sets
//! VIRTUAL_ENV).

use std::path::{Path, PathBuf};
use std::process::Command;

use pcl::facecycle::{FACE, POSE};
use pcl::{FaceCycle, FaceCycleParams};
use tch::{nn, Device, Tensor};
use visage_core::backbone::{Backbone, POOLED};
use visage_core::nn::weights::{load_state_dict, read_state_dict};

/// Runs tests/reference/facecycle.py into a fresh folder, which it returns.
fn reference_dir() -> PathBuf {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    let dir = std::env::temp_dir().join(format!("visage-pcl-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/facecycle.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "facecycle.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn facecycle_from_a_pcl_checkpoint_gives_pytorch_features() {
    let dir = reference_dir();
    let reference: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("reference.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let x = &reference["x"];

    let vs = nn::VarStore::new(Device::Cpu);
    let params = FaceCycleParams {
        width: 16,
        image_size: 64,
    };
    let model = FaceCycle::new(&(vs.root() / "backbone"), 3, &params).unwrap();
    let report = load_state_dict(&vs, "backbone", read_state_dict(&dir.join("pcl.pth")).unwrap(), None).unwrap();
    assert_eq!(report.prefix, "state_dict.module.encoder.");
    assert!(report.missing.is_empty() && report.unexpected.is_empty(), "{report}");
    let out = tch::no_grad(|| model.forward(x, false).unwrap());
    for (ours, theirs) in [
        (POOLED, "facecycle_fea"),
        (FACE, "facecycle_face"),
        (POSE, "facecycle_pose"),
    ] {
        let diff = max_diff(&out[ours], &reference[theirs]);
        assert!(diff < 1e-4, "facecycle `{ours}` differs by {diff}");
    }

    std::fs::remove_dir_all(&dir).unwrap();
}
