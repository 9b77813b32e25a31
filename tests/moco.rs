//! The `moco_v3` method end to end: it pre-trains a small ViT on
//! `synthface` from a YAML with the frozen random patch projection, its
//! contrastive loss falls, the momentum follows the cosine schedule, the
//! patch projection is never updated while the blocks are, and MCF's
//! frozen teacher loads the run's backbone through `from_run`.

mod common;

use common::{ok, runner_with_env};

const EXPERIMENT: &str = r#"
name: moco_smoke
seed: 0
device: cpu
backbone: {name: vit, params: {width: 64, depth: 2, heads: 2, image_size: 32, patch: 8}}
pretrain:
  method:
    name: moco_v3
    params: {hidden: 128, dim: 32, frozen_patch_projection: true}
  dataset: {name: synthface, params: {identities: 32, test_identities: 2, samples_per_identity: 4, resolution: 32}}
  views:
    - count: 2
      augmentations:
        - {name: random_resized_crop, params: {size: 32, scale: [0.4, 1.0]}}
        - {name: hflip, params: {p: 0.5}}
        - {name: color_jitter, params: {brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1, p: 0.8}}
  steps: 40
  batch_size: 16
  optimizer: {name: adamw, params: {lr: 0.002, weight_decay: 0.05}}
  scheduler: {name: cosine, params: {warmup_steps: 4}}
  checkpoint_every: 40
  log_every: 10
"#;

/// The mean of the contrastive loss over `rows`.
fn mean_loss(rows: &[serde_json::Value]) -> f64 {
    rows.iter()
        .map(|r| r["losses"]["contrastive"].as_f64().unwrap())
        .sum::<f64>()
        / rows.len() as f64
}

#[test]
fn moco_v3_pretrains_a_vit_on_synthface() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("moco.yaml");
    std::fs::write(&yaml, EXPERIMENT).unwrap();
    let out = dir.path().join("run");
    // One libtorch thread: on a loaded two-core machine two spinning
    // OpenMP threads make each step many times slower.
    let one_thread = [("OMP_NUM_THREADS", "1")];
    ok(runner_with_env(
        &[yaml.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &one_thread,
    ));

    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 40);
    // Uniform logits cost 2 * ln(16) * 2 * 0.2 = 2.22 for the two
    // directions; random heads start at about that or above.
    let (first, last) = (mean_loss(&rows[..8]), mean_loss(&rows[32..]));
    assert!(first > 2.0, "the first steps know nothing yet: {first}");
    assert!(
        last < 0.9 * first,
        "the loss should fall: {first} over the first 8 steps, {last} over the last 8"
    );
    // The momentum: cosine from 0.99 towards 1, for backbone and projector.
    let momentum = |r: &serde_json::Value, name: &str| r["values"][format!("momentum/{name}")].as_f64().unwrap();
    assert_eq!(momentum(&rows[0], "momentum_encoder"), 0.99);
    let halfway = 1.0 - 0.01 * 0.5 * (1.0 + (std::f64::consts::PI * 20.0 / 40.0).cos());
    assert!((momentum(&rows[20], "momentum_projector") - halfway).abs() < 1e-12);
    // The collapse monitor, every step: a run whose loss falls this way
    // keeps its queries spread out (a collapsed one reads near 0).
    let spread: Vec<f64> = rows.iter().map(|r| r["values"]["spread"].as_f64().unwrap()).collect();
    assert!(spread.iter().all(|s| (0.3..1.5).contains(s)), "{spread:?}");

    // The patch projection stayed as its momentum copy (both never moved);
    // the blocks were trained, and so differ from their moving average.
    let model: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(out.join("checkpoints/step-00000040/model.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let same =
        |name: &str| model[&format!("backbone.{name}")].equal(&model[&format!("teachers.momentum_encoder.{name}")]);
    assert!(same("patch_embed.proj.weight") && same("patch_embed.proj.bias"));
    assert!(!same("blocks.0.attn.qkv.weight"));

    // MCF's frozen teacher loads the run (`teacher: {from_run: ...}`):
    // the backbone it rebuilds holds the trained weights and encodes.
    let mut registry = visage_core::Registry::new();
    visage_core::builtin::register(&mut registry).unwrap();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let spec = visage_core::teacher::BackboneSpec {
        name: "resnet".into(),
        params: serde_json::json!({"width": 4}),
    };
    let teachers = visage_core::teacher::Teachers::new(&registry, &vs, spec, "backbone", 3);
    let source = visage_core::teacher::TeacherSource {
        from_run: Some(out.clone()),
        weights: None,
        backbone: None,
    };
    let teacher = teachers.frozen_backbone("mim", &source).unwrap();
    let loaded = vs.variables();
    let trained = &model["backbone.blocks.1.mlp.fc2.weight"];
    assert!(loaded["teachers.mim.blocks.1.mlp.fc2.weight"].equal(trained));
    let x = tch::Tensor::rand([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
    let features = teacher.forward(&x, false).unwrap();
    assert_eq!(features["tokens"].size(), [2, 16, 64]);
}
