//! `moco_v3` against PyTorch: tests/reference/moco_v3.py, written from the
//! paper, takes one MoCo v3 step with timm's ViT and with torchvision's
//! ResNet-18 and saves the weights of every module (the momentum copies at
//! other weights than the online ones), two views, the loss and the
//! gradient of every trainable parameter. Loaded into Visage's modules by
//! name, the loss agrees to 1e-5 and every gradient to 1e-5 (relative to
//! the largest entry of that gradient, when above 1). With
//! `frozen_patch_projection` the ViT's patch embedding gets no gradient
//! and every other gradient is unchanged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use moco::{MocoV3, MocoV3Params};
use tch::{nn, Device, Tensor};
use visage_core::backbone::Backbone;
use visage_core::method::MethodContext;
use visage_core::nn::resnet::{ResNet, ResNetParams};
use visage_core::nn::vit::{PosEmbed, VisionTransformer, VitParams, VitSize};
use visage_core::scalars::Scalars;
use visage_core::teacher::{BackboneSpec, Teachers};
use visage_core::Registry;

/// Runs the reference script into a fresh folder, which it returns.
fn reference_dir() -> PathBuf {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    let dir = std::env::temp_dir().join(format!("visage-moco-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/moco_v3.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "moco_v3.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The reference's backbones, as experiments name them.
fn spec(arch: &str) -> BackboneSpec {
    let params = match arch {
        "vit" => serde_json::json!({
            "width": 32, "depth": 2, "heads": 2, "image_size": 32, "patch": 8, "pos_embed": "learned"
        }),
        _ => serde_json::json!({"depth": 18}),
    };
    BackboneSpec {
        name: arch.into(),
        params,
    }
}

fn backbone(vs: &nn::VarStore, arch: &str) -> Box<dyn Backbone> {
    let p = &(vs.root() / "backbone");
    match arch {
        "vit" => {
            let params = VitParams {
                width: Some(32),
                depth: Some(2),
                heads: Some(2),
                image_size: 32,
                patch: 8,
                pos_embed: PosEmbed::Learned,
                ..VitParams::sized(VitSize::Tiny)
            };
            Box::new(VisionTransformer::new(p, 3, &params).unwrap())
        }
        _ => Box::new(ResNet::new(p, 3, &ResNetParams::default()).unwrap()),
    }
}

/// The reference's method sizes.
fn params(frozen: bool) -> MocoV3Params {
    MocoV3Params {
        hidden: 64,
        dim: 16,
        frozen_patch_projection: frozen,
        ..MocoV3Params::default()
    }
}

struct Model {
    vs: nn::VarStore,
    backbone: Box<dyn Backbone>,
    moco: MocoV3,
}

/// Backbone, momentum copies and MLPs, every variable loaded from the
/// reference by its name.
fn model(arch: &str, frozen: bool, r: &HashMap<String, Tensor>) -> Model {
    let vs = nn::VarStore::new(Device::Cpu);
    let backbone = backbone(&vs, arch);
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry).unwrap();
    let teachers = Teachers::new(&registry, &vs, spec(arch), "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
        views: vec![2],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let moco = MocoV3::new(params(frozen), &ctx).unwrap();
    drop(ctx);
    drop(teachers);
    let vars = vs.variables();
    tch::no_grad(|| {
        for (name, var) in &vars {
            let theirs = r
                .get(name)
                .unwrap_or_else(|| panic!("{arch}: the reference has no {name}"));
            var.shallow_clone().copy_(theirs);
        }
    });
    let saved = r
        .keys()
        .filter(|k| !k.starts_with("grad.") && !["x1", "x2", "loss"].contains(&k.as_str()))
        .count();
    assert_eq!(saved, vars.len(), "{arch}: every saved weight has a variable");
    Model { vs, backbone, moco }
}

/// Back-propagates the step's loss and compares every trainable
/// parameter's gradient with the reference's; returns how many.
fn check(m: &Model, arch: &str, r: &HashMap<String, Tensor>) -> usize {
    let loss = m.moco.loss(m.backbone.as_ref(), &r["x1"], &r["x2"]).unwrap();
    let (ours, theirs) = (loss.double_value(&[]), r["loss"].double_value(&[]));
    assert!(
        (ours - theirs).abs() < 1e-5,
        "{arch} loss: visage {ours}, pytorch {theirs}"
    );
    loss.backward();
    let mut compared = 0;
    for (name, var) in m.vs.variables() {
        if !var.requires_grad() {
            assert!(!var.grad().defined(), "{arch}: frozen {name} has a gradient");
            continue;
        }
        let theirs = r
            .get(&format!("grad.{name}"))
            .unwrap_or_else(|| panic!("{arch}: {name} is trained here, not in PyTorch"));
        let ours = var.grad();
        assert!(ours.defined(), "{arch}: no gradient for {name}");
        let scale = theirs.abs().max().double_value(&[]).max(1.0);
        let diff = (&ours - theirs).abs().max().double_value(&[]);
        assert!(
            diff <= 1e-5 * scale,
            "{arch}: gradient of {name} differs by {diff} (scale {scale})"
        );
        compared += 1;
    }
    compared
}

fn trainable(m: &Model) -> Vec<String> {
    let mut names: Vec<String> =
        m.vs.variables()
            .into_iter()
            .filter(|(_, v)| v.requires_grad())
            .map(|(n, _)| n)
            .collect();
    names.sort();
    names
}

#[test]
fn one_moco_v3_step_equals_pytorch() {
    let dir = reference_dir();
    let read = |arch: &str| -> HashMap<String, Tensor> {
        Tensor::read_safetensors(dir.join(format!("{arch}.safetensors")))
            .unwrap()
            .into_iter()
            .collect()
    };

    // ViT: 3-layer projector, predictor ending in an affine-free BN.
    let r = read("vit");
    let vit = model("vit", false, &r);
    let grads = r.keys().filter(|k| k.starts_with("grad.")).count();
    assert_eq!(check(&vit, "vit", &r), grads, "every PyTorch gradient compared");
    assert!(grads > 40, "{grads}");
    assert!(trainable(&vit).iter().all(|n| n.starts_with("backbone.")
        || n.starts_with("method.projector.")
        || n.starts_with("method.predictor.")));

    // The frozen random patch projection: no gradient, the rest unchanged.
    let frozen = model("vit", true, &r);
    assert_eq!(check(&frozen, "vit (frozen patch projection)", &r), grads - 2);
    let missing: Vec<String> = trainable(&vit)
        .into_iter()
        .filter(|n| !trainable(&frozen).contains(n))
        .collect();
    assert_eq!(
        missing,
        ["backbone.patch_embed.proj.bias", "backbone.patch_embed.proj.weight"]
    );

    // ResNet-18: 2-layer projector, predictor without the last BN.
    let r = read("resnet");
    let resnet = model("resnet", false, &r);
    let grads = r.keys().filter(|k| k.starts_with("grad.")).count();
    assert_eq!(check(&resnet, "resnet", &r), grads);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_frozen_patch_projection_needs_a_vit() {
    let vs = nn::VarStore::new(Device::Cpu);
    let backbone = backbone(&vs, "resnet");
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry).unwrap();
    let teachers = Teachers::new(&registry, &vs, spec("resnet"), "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
        views: vec![2],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let err = MocoV3::new(params(true), &ctx).err().unwrap().to_string();
    assert_eq!(
        err,
        "moco_v3.frozen_patch_projection needs a ViT: the backbone `resnet` has no variables under `patch_embed.proj` to freeze"
    );
}
