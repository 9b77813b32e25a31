//! `mcf` against PyTorch: tests/reference/mcf.py, written from the paper,
//! takes one MCF step (timm's ViT, MAE's decoder, a frozen 8-block teacher
//! compared at blocks 2, 4, 6, 8, the EMA target on an independent mask)
//! and saves every module's weights, the images, both masks, the loss
//! terms and every trainable parameter's gradient. Loaded into Visage's
//! modules by name (the teacher through `teacher: {weights: ...}`), with
//! the same masks, the loss terms agree to 1e-5 and every gradient to 1e-5
//! (relative to the largest entry of that gradient, when above 1).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mcf::{Masks, Mcf, McfParams, Mode};
use tch::{nn, Device, Tensor};
use visage_core::backbone::Backbone;
use visage_core::method::MethodContext;
use visage_core::nn::vit::{PosEmbed, VisionTransformer, VitParams, VitSize};
use visage_core::nn::weights::WeightsSpec;
use visage_core::scalars::Scalars;
use visage_core::teacher::{BackboneSpec, TeacherSource, Teachers};
use visage_core::Registry;

/// Runs the reference script into a fresh folder named after `test`
/// (tests run in parallel), which it returns.
fn reference_dir(test: &str) -> PathBuf {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    let dir = std::env::temp_dir().join(format!("visage-mcf-parity-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/mcf.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "mcf.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn vit_json(depth: i64) -> serde_json::Value {
    serde_json::json!({"width": 32, "depth": depth, "heads": 2, "image_size": 32, "patch": 8, "pos_embed": "learned"})
}

/// The reference's sizes; the teacher from its weights file.
fn params(mode: Mode, dir: &Path) -> McfParams {
    let teacher = TeacherSource {
        from_run: None,
        weights: Some(WeightsSpec {
            path: dir.join("teacher.safetensors"),
            prefix: Some(String::new()),
            strict: true,
        }),
        backbone: Some(BackboneSpec {
            name: "vit".into(),
            params: vit_json(8),
        }),
    };
    McfParams {
        mode,
        teacher: Some(teacher),
        decoder_width: 16,
        decoder_depth: 2,
        decoder_heads: 2,
        hidden: 64,
        dim: 16,
        image_size: Some(32),
        patch: Some(8),
        ..McfParams::default()
    }
}

struct Model {
    vs: nn::VarStore,
    backbone: Box<dyn Backbone>,
    mcf: Mcf,
}

/// The online ViT, the method and its teachers.
fn build(p: McfParams) -> visage_core::Result<Model> {
    let vs = nn::VarStore::new(Device::Cpu);
    let params = VitParams {
        width: Some(32),
        depth: Some(4),
        heads: Some(2),
        image_size: 32,
        patch: 8,
        pos_embed: PosEmbed::Learned,
        ..VitParams::sized(VitSize::Tiny)
    };
    let backbone: Box<dyn Backbone> = Box::new(VisionTransformer::new(&(vs.root() / "backbone"), 3, &params).unwrap());
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry).unwrap();
    let spec = BackboneSpec {
        name: "vit".into(),
        params: vit_json(4),
    };
    let teachers = Teachers::new(&registry, &vs, spec, "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
        views: vec![1],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let mcf = Mcf::new(p, &ctx)?;
    drop(ctx);
    drop(teachers);
    Ok(Model { vs, backbone, mcf })
}

fn names(m: &Model, trainable: bool) -> Vec<String> {
    let mut n: Vec<String> =
        m.vs.variables()
            .into_iter()
            .filter(|(_, v)| !trainable || v.requires_grad())
            .map(|(n, _)| n)
            .collect();
    n.sort();
    n
}

#[test]
fn one_mcf_step_equals_pytorch() {
    let dir = reference_dir("step");
    let r: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join("mcf.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    let m = build(params(Mode::Mcf, &dir)).unwrap();
    let vars = m.vs.variables();
    // The frozen teacher came from its file; the decoder's sin-cos
    // positions equal those written in Python from MAE's definition.
    for (name, var) in &vars {
        if name.starts_with("teachers.mim_teacher.") || name == "method.decoder_pos_embed" {
            let diff = (var - &r[name]).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{name} differs by {diff} before loading");
        }
    }
    tch::no_grad(|| {
        for (name, var) in &vars {
            let theirs = r.get(name).unwrap_or_else(|| panic!("the reference has no {name}"));
            var.shallow_clone().copy_(theirs);
        }
    });
    let weights = r
        .keys()
        .filter(|k| {
            !k.starts_with("grad.") && !["x", "keep_a", "keep_b", "mim", "contrastive", "loss"].contains(&k.as_str())
        })
        .count();
    assert_eq!(weights, vars.len(), "every saved weight has a variable");

    let masks = Masks {
        online: r["keep_a"].shallow_clone(),
        target: r["keep_b"].shallow_clone(),
    };
    assert_eq!(m.mcf.kept(), 4, "25% of 16 patches");
    let losses = m.mcf.losses(m.backbone.as_ref(), &r["x"], &masks).unwrap();
    let terms: HashMap<&str, f64> = losses
        .0
        .iter()
        .map(|(n, t)| (n.as_str(), t.double_value(&[])))
        .collect();
    assert_eq!(terms.len(), 2);
    for name in ["mim", "contrastive"] {
        let theirs = r[name].double_value(&[]);
        let tol = 1e-5 * theirs.abs().max(1.0);
        assert!(
            (terms[name] - theirs).abs() < tol,
            "{name}: visage {}, pytorch {theirs}",
            terms[name]
        );
    }
    let total = losses.total().unwrap();
    total.backward();
    let (mut compared, mut worst) = (0, 0f64);
    for (name, var) in m.vs.variables() {
        if !var.requires_grad() {
            assert!(!var.grad().defined(), "frozen {name} has a gradient");
            continue;
        }
        let theirs = r
            .get(&format!("grad.{name}"))
            .unwrap_or_else(|| panic!("{name} is trained here, not in PyTorch"));
        let ours = var.grad();
        assert!(ours.defined(), "no gradient for {name}");
        let scale = theirs.abs().max().double_value(&[]).max(1.0);
        let diff = (&ours - theirs).abs().max().double_value(&[]);
        assert!(
            diff <= 1e-5 * scale,
            "gradient of {name} differs by {diff} (scale {scale})"
        );
        worst = worst.max(diff / scale);
        compared += 1;
    }
    eprintln!("{compared} gradients, worst relative difference {worst:e}");
    let grads = r.keys().filter(|k| k.starts_with("grad.")).count();
    assert_eq!(compared, grads, "every PyTorch gradient compared");
    assert!(grads > 80, "{grads}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each ablation builds only what it trains: `mim_only` no projector and
/// no target encoder, `contrastive_only` no decoder and no teacher,
/// `pixel_mim` the decoder alone; without a teacher the MIM modes are
/// refused naming the key.
#[test]
fn the_ablations_build_only_their_modules() {
    let dir = reference_dir("ablations");
    let has = |m: &Model, prefix: &str| names(m, false).iter().any(|n| n.starts_with(prefix));
    let mim = build(params(Mode::MimOnly, &dir)).unwrap();
    assert!(has(&mim, "method.decoder_pred") && has(&mim, "teachers.mim_teacher."));
    assert!(!has(&mim, "method.projector") && !has(&mim, "teachers.target_encoder."));
    let con = build(params(Mode::ContrastiveOnly, &dir)).unwrap();
    assert!(has(&con, "method.projector") && has(&con, "teachers.target_encoder."));
    assert!(!has(&con, "method.decoder_embed") && !has(&con, "teachers.mim_teacher."));
    let pixel = build(params(Mode::PixelMim, &dir)).unwrap();
    assert!(has(&pixel, "method.mask_token"));
    assert!(names(&pixel, false)
        .iter()
        .all(|n| n.starts_with("backbone.") || n.starts_with("method.decoder") || n == "method.mask_token"));

    // One step of each on random images and masks gives its own terms.
    let x = Tensor::randn([4, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
    for (m, want) in [
        (&mim, vec!["mim"]),
        (&con, vec!["contrastive"]),
        (&pixel, vec!["pixel_mim"]),
    ] {
        let masks = m.mcf.random_masks(4, Device::Cpu);
        let losses = m.mcf.losses(m.backbone.as_ref(), &x, &masks).unwrap();
        let got: Vec<&str> = losses.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(got, want);
        assert!(losses.total().unwrap().double_value(&[]).is_finite());
    }

    let without = McfParams {
        teacher: None,
        ..params(Mode::Mcf, &dir)
    };
    let err = build(without).err().unwrap().to_string();
    assert!(err.starts_with("mcf.teacher: mode Mcf needs a frozen teacher"), "{err}");
    let no_geometry = McfParams {
        image_size: None,
        ..params(Mode::PixelMim, &dir)
    };
    let err = build(no_geometry).err().unwrap().to_string();
    assert!(err.starts_with("mcf.image_size and mcf.patch"), "{err}");
    let blocks = McfParams {
        mim_blocks: Some(vec![0, 9]),
        ..params(Mode::MimOnly, &dir)
    };
    let err = build(blocks).err().unwrap().to_string();
    assert_eq!(err, "mcf.mim_blocks: 1-based blocks of the teacher's 8, got [0, 9]");
    std::fs::remove_dir_all(&dir).unwrap();
}
