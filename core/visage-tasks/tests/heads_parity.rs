//! FaRL's dense head and its losses against PyTorch: the Rust head's
//! variables go to tests/reference/dense_head.py (a PyTorch head written
//! from FaRL's structure with FaRL's and mmseg's names), which loads them
//! strictly and runs the same maps; one training step's outputs, losses
//! and gradients, the updated batch-norm statistics and an eval forward
//! must agree. Needs the venv's torch and safetensors (`VIRTUAL_ENV`, set by
//! scripts/env.sh).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{nn, Device, Kind, Tensor};
use visage_core::nn::weights::{export_safetensors, variables_under};
use visage_tasks::heads::{pixel_cross_entropy, upsample_logits, AlignmentLoss, DenseHead, Pyramid};

const OPTS: (Kind, Device) = (Kind::Float, Device::Cpu);
const HEATMAP_SIZE: i64 = 40;
const RADIUS: f64 = 5.0;
const PARSING_SIZE: [i64; 2] = [48, 44];
const LANDMARKS: i64 = 5;

struct Case {
    name: &'static str,
    kind: Pyramid,
    in_channels: Vec<i64>,
    grids: Vec<i64>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "vit",
            kind: Pyramid::Vit,
            in_channels: vec![12; 4],
            grids: vec![8; 4],
        },
        Case {
            name: "stages",
            kind: Pyramid::Stages,
            in_channels: vec![6, 10, 12, 16],
            grids: vec![12, 6, 3, 2],
        },
    ]
}

/// Batch norms away from their initial values, and a classifier whose
/// heatmaps vary, so that every path is exercised.
fn perturb(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let shape = var.size();
            let value = if name.ends_with("running_mean") || name.ends_with("bias") {
                Tensor::randn(&shape, OPTS) * 0.1
            } else if name.ends_with("running_var") || (shape.len() == 1 && name.ends_with("weight")) {
                Tensor::rand(&shape, OPTS) + 0.5
            } else if name.contains("conv_seg") {
                Tensor::randn(&shape, OPTS) * 0.2
            } else {
                continue;
            };
            var.copy_(&value);
        }
    });
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn python() -> PathBuf {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: source scripts/env.sh and run visage_env");
    Path::new(&venv).join("bin/python")
}

#[test]
fn dense_head_and_losses_match_pytorch() {
    tch::manual_seed(7);
    let dir = std::env::temp_dir().join(format!("visage-dense-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ours = Vec::new();
    let mut json = serde_json::Map::new();
    for case in cases() {
        let vs = nn::VarStore::new(Device::Cpu);
        let head = DenseHead::new(&(vs.root() / "dense"), &case.in_channels, case.kind, 8, LANDMARKS)
            .unwrap()
            .with_dropout(0.0);
        perturb(&vs);
        export_safetensors(&vs, "dense", &dir.join(format!("{}.weights.safetensors", case.name))).unwrap();
        let maps: Vec<Tensor> = (case.in_channels.iter().zip(&case.grids))
            .map(|(&c, &g)| Tensor::randn([2, c, g, g], OPTS))
            .collect();
        let targets = Tensor::rand([2, LANDMARKS, 2], OPTS) * 0.8 + 0.1;
        let labels = Tensor::randint(
            LANDMARKS,
            [2, PARSING_SIZE[0], PARSING_SIZE[1]],
            (Kind::Int64, Device::Cpu),
        );
        let mut named: Vec<(String, &Tensor)> = maps.iter().enumerate().map(|(i, m)| (format!("map{i}"), m)).collect();
        named.push(("targets".into(), &targets));
        named.push(("labels".into(), &labels));
        let named: Vec<(&str, &Tensor)> = named.iter().map(|(k, t)| (k.as_str(), *t)).collect();
        Tensor::write_safetensors(&named, dir.join(format!("{}.inputs.safetensors", case.name))).unwrap();
        json.insert(
            case.name.into(),
            serde_json::json!({
                "in_channels": case.in_channels,
                "vit": case.kind == Pyramid::Vit,
                "channels": 8,
                "out_channels": LANDMARKS,
                "heatmap_size": HEATMAP_SIZE,
                "radius": RADIUS,
                "parsing_size": PARSING_SIZE,
            }),
        );
        ours.push((case, vs, head, maps, targets, labels));
    }
    std::fs::write(dir.join("cases.json"), serde_json::Value::Object(json).to_string()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/dense_head.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "dense_head.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    for (case, vs, head, maps, targets, labels) in ours {
        let reference: HashMap<String, Tensor> =
            Tensor::read_safetensors(dir.join(format!("{}.reference.safetensors", case.name)))
                .unwrap()
                .into_iter()
                .collect();
        let check = |what: &str, a: &Tensor, b: &str| {
            let diff = max_diff(a, &reference[b]);
            assert!(diff < 1e-4, "{}: {what} differs from PyTorch's by {diff}", case.name);
        };
        let maps: Vec<Tensor> = maps.iter().map(|m| m.set_requires_grad(true)).collect();
        let logits = head.forward(&maps, true).unwrap();
        let loss = AlignmentLoss {
            heatmap_size: HEATMAP_SIZE,
            radius: RADIUS,
        };
        let alignment = loss.compute(&logits, &targets).unwrap();
        let parsing = upsample_logits(&logits, PARSING_SIZE[0], PARSING_SIZE[1]).unwrap();
        let ce = pixel_cross_entropy(&parsing, &labels).unwrap();
        (&alignment.total + &ce).backward();

        check("train logits", &logits, "logits");
        check("points", &alignment.points, "points");
        check("coordinate loss", &alignment.coord, "coord");
        check("heatmap BCE", &alignment.heatmap_bce, "bce");
        check("cross-entropy", &ce, "ce");
        for (i, m) in maps.iter().enumerate() {
            check(&format!("gradient of map {i}"), &m.grad(), &format!("grad.map{i}"));
        }
        let vars = variables_under(&vs, "dense");
        let mut grads = 0;
        for (name, var) in &vars {
            if name.contains("running") {
                check(name, var, &format!("state.{name}"));
            } else {
                check(&format!("gradient of {name}"), &var.grad(), &format!("grad.{name}"));
                grads += 1;
            }
        }
        // Every PyTorch parameter was compared: the names agree one to one.
        assert_eq!(
            grads,
            reference
                .keys()
                .filter(|k| k.starts_with("grad.") && !k.starts_with("grad.map"))
                .count()
        );
        let eval = tch::no_grad(|| head.forward(&maps, false).unwrap());
        check("eval logits", &eval, "eval_logits");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
