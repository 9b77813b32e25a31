//! The built-in backbones against PyTorch: torchvision's ResNet and timm's
//! ViT state dicts, MoCo v3, MAE and MCF checkpoints load by name and give
//! the same features as PyTorch computes (reference made by
//! tests/reference/backbones.py with the venv's torch, torchvision and
//! timm); Visage's export loads back into torchvision. (PCL's and LAFS's
//! backbones are checked in their plugins, plugins/pcl and plugins/lafs.)

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{nn, Device, Tensor};
use visage_core::backbone::{Backbone, POOLED};
use visage_core::nn::vit::{self, PosEmbed, VitSize};
use visage_core::nn::weights::{export_safetensors, load_state_dict, read_state_dict};
use visage_core::nn::{ResNet, ResNetParams, VisionTransformer, VitParams};

fn python() -> PathBuf {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    Path::new(&venv).join("bin/python")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/backbones.py")
}

fn run_python(mode: &str, dir: &Path) {
    let out = Command::new(python())
        .arg(script())
        .arg(mode)
        .arg(dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "backbones.py {mode} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn reference_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    run_python("make", &dir);
    dir
}

fn reference(dir: &Path) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(dir.join("reference.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn resnet(depth: u32) -> (nn::VarStore, ResNet) {
    let vs = nn::VarStore::new(Device::Cpu);
    let params = ResNetParams {
        depth,
        ..Default::default()
    };
    let model = ResNet::new(&(vs.root() / "backbone"), 3, &params).unwrap();
    (vs, model)
}

/// Under bfloat16 autocast, `forward` gives what PyTorch's
/// `torch.autocast("cpu", dtype=torch.bfloat16)` gives (`theirs`): the same
/// libtorch kernels on the same casts, so equal to float32 rounding, while
/// it differs from the float32 result `fp32` by bfloat16's rounding.
fn bf16_autocast_matches_pytorch(forward: impl FnOnce() -> Tensor, fp32: &Tensor, theirs: &Tensor) {
    let ours = tch::no_grad(|| visage_core::amp::autocast(Device::Cpu, tch::Kind::BFloat16, forward).unwrap());
    let ours = ours.to_kind(tch::Kind::Float);
    let (to_pytorch, to_fp32) = (max_diff(&ours, theirs), max_diff(&ours, fp32));
    assert!(
        to_pytorch < 1e-5,
        "bf16 autocast differs from PyTorch's by {to_pytorch}"
    );
    assert!(
        to_fp32 > 1e-3,
        "bf16 autocast is as close to fp32 as {to_fp32}: did it cast?"
    );
}

#[test]
fn torchvision_and_timm_weights_give_pytorch_features() {
    let dir = reference_dir();
    let reference = reference(&dir);
    let x = &reference["x"];

    for depth in [18u32, 50] {
        let (vs, model) = resnet(depth);
        let file = dir.join(format!("resnet{depth}.pth"));
        let report = load_state_dict(&vs, "backbone", read_state_dict(&file).unwrap(), None).unwrap();
        assert_eq!(report.prefix, "");
        assert!(report.missing.is_empty() && report.mismatched.is_empty(), "{report}");
        assert_eq!(report.unexpected, vec!["fc.bias".to_string(), "fc.weight".to_string()]);
        let got = tch::no_grad(|| model.forward(x, false).unwrap().remove(POOLED).unwrap());
        let diff = max_diff(&got, &reference[&format!("resnet{depth}")]);
        assert!(
            diff < 1e-4,
            "resnet{depth} features differ from torchvision's by {diff}"
        );
        if depth == 18 {
            bf16_autocast_matches_pytorch(
                || model.forward(x, false).unwrap().remove(POOLED).unwrap(),
                &got,
                &reference["resnet18_bf16"],
            );
        }
        // A fresh, unloaded model differs: the comparison can fail.
        let (_vs, fresh) = resnet(depth);
        let other = tch::no_grad(|| fresh.forward(x, false).unwrap().remove(POOLED).unwrap());
        assert!(max_diff(&other, &reference[&format!("resnet{depth}")]) > 1e-2);
    }

    // MoCo v3's prefix is found by itself; its predictor is not ours.
    let (vs, model) = resnet(18);
    let moco = read_state_dict(&dir.join("moco_resnet18.safetensors")).unwrap();
    let report = load_state_dict(&vs, "backbone", moco, None).unwrap();
    assert_eq!(report.prefix, "module.base_encoder.");
    assert!(report.missing.is_empty(), "{report}");
    let got = tch::no_grad(|| model.forward(x, false).unwrap().remove(POOLED).unwrap());
    assert!(max_diff(&got, &reference["resnet18"]) < 1e-4);

    // Recognised by content: MoCo v3's `.pth.tar` (a torch.save zip) and a
    // legacy torch.save file give the same features.
    for (file, prefix) in [
        ("moco_resnet18.pth.tar", "state_dict.module.base_encoder."),
        ("resnet18_legacy.pth", ""),
    ] {
        let (vs2, model2) = resnet(18);
        let report = load_state_dict(&vs2, "backbone", read_state_dict(&dir.join(file)).unwrap(), None).unwrap();
        assert_eq!(report.prefix, prefix, "{file}");
        assert!(
            report.missing.is_empty() && report.mismatched.is_empty(),
            "{file}: {report}"
        );
        let got = tch::no_grad(|| model2.forward(x, false).unwrap().remove(POOLED).unwrap());
        assert!(max_diff(&got, &reference["resnet18"]) < 1e-4, "{file}");
    }

    // Visage's export loads into torchvision under the same names.
    export_safetensors(&vs, "backbone", &dir.join("exported_resnet18.safetensors")).unwrap();
    run_python("check", &dir);

    // timm's ViT, whole and with MAE-style masking.
    let vs = nn::VarStore::new(Device::Cpu);
    let vit_params = VitParams {
        depth: Some(2),
        image_size: 64,
        pos_embed: PosEmbed::Learned,
        ..VitParams::sized(VitSize::Tiny)
    };
    let params = vit_params.clone();
    let model = VisionTransformer::new(&(vs.root() / "backbone"), 3, &params).unwrap();
    let report = load_state_dict(&vs, "backbone", read_state_dict(&dir.join("vit.pth")).unwrap(), None).unwrap();
    assert!(report.missing.is_empty() && report.mismatched.is_empty(), "{report}");
    let features = tch::no_grad(|| model.forward(x, false).unwrap());
    assert!(max_diff(&features[vit::CLS], &reference["vit_cls"]) < 1e-4);
    assert!(max_diff(&features[vit::TOKENS], &reference["vit_tokens"]) < 1e-4);
    bf16_autocast_matches_pytorch(
        || model.forward(x, false).unwrap().remove(vit::TOKENS).unwrap(),
        &features[vit::TOKENS],
        &reference["vit_tokens_bf16"].narrow(1, 1, 16),
    );
    let masked = tch::no_grad(|| model.forward_masked(x, &reference["vit_keep"], false).unwrap());
    assert!(max_diff(&masked[vit::CLS], &reference["vit_masked_cls"]) < 1e-4);
    assert!(max_diff(&masked[vit::TOKENS], &reference["vit_masked_tokens"]) < 1e-4);

    // A nested MAE-style checkpoint: the backbone is found under `model.`.
    let nested = read_state_dict(&dir.join("vit_mae_checkpoint.pth")).unwrap();
    let names: Vec<&str> = nested.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        names.contains(&"half") && names.contains(&"model.cls_token"),
        "{names:?}"
    );
    let half = &nested.iter().find(|(k, _)| k == "half").unwrap().1;
    assert_eq!(half.kind(), tch::Kind::Half);
    let vs2 = nn::VarStore::new(Device::Cpu);
    let model2 = VisionTransformer::new(&(vs2.root() / "backbone"), 3, &params).unwrap();
    let report = load_state_dict(&vs2, "backbone", nested, None).unwrap();
    assert_eq!(report.prefix, "model.");
    assert!(report.missing.is_empty() && report.unexpected.is_empty(), "{report}");
    let again = tch::no_grad(|| model2.forward(x, false).unwrap());
    assert!(max_diff(&again[vit::CLS], &reference["vit_cls"]) < 1e-4);

    // A truncated file is an error naming it, not a crash.
    let bytes = std::fs::read(dir.join("vit.pth")).unwrap();
    let cut = dir.join("truncated.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_state_dict(&cut).unwrap_err().to_string();
    assert!(err.contains("truncated.pth"), "{err}");

    // The fixed position embedding is MAE's.
    let diff = max_diff(&vit::sincos_2d(192, 4), &reference["sincos_192_4"]);
    assert!(diff < 1e-6, "sin-cos embedding differs from MAE's by {diff}");

    mcf_encoders_from_an_mcf_checkpoint(&dir, &reference, &vit_params);

    std::fs::remove_dir_all(&dir).unwrap();
}

/// MCF's online encoder (by default) or EMA target encoder (on request)
/// from a checkpoint laid out as MCF's `save_model` writes it.
fn mcf_encoders_from_an_mcf_checkpoint(
    dir: &Path,
    reference: &std::collections::HashMap<String, Tensor>,
    params: &VitParams,
) {
    let x = &reference["x"];
    let file = dir.join("mcf_checkpoint.pth");
    let vs = nn::VarStore::new(Device::Cpu);
    let model = VisionTransformer::new(&(vs.root() / "backbone"), 3, params).unwrap();
    let report = load_state_dict(&vs, "backbone", read_state_dict(&file).unwrap(), None).unwrap();
    assert_eq!(report.prefix, "model.online_encoder.");
    assert!(report.missing.is_empty() && report.mismatched.is_empty(), "{report}");
    assert_eq!(report.unexpected, vec!["fc.0.weight".to_string()], "{report}");
    let online = tch::no_grad(|| model.forward(x, false).unwrap());
    assert!(max_diff(&online[vit::CLS], &reference["vit_cls"]) < 1e-4);
    let report = load_state_dict(
        &vs,
        "backbone",
        read_state_dict(&file).unwrap(),
        Some("model.target_encoder."),
    )
    .unwrap();
    assert!(report.missing.is_empty(), "{report}");
    let target = tch::no_grad(|| model.forward(x, false).unwrap());
    assert!(
        max_diff(&target[vit::CLS], &reference["vit_cls"]) > 1e-2,
        "the target encoder is another model"
    );
}
