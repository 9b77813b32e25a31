//! The `mcf` method end to end: a tiny MoCo v3 run pre-trains the teacher,
//! then MCF pre-trains a ViT from a YAML whose frozen MIM teacher is that
//! run (`teacher: {from_run: ...}`): both loss terms fall, the target
//! encoder follows the backbone at momentum 0.99, and the teacher stays
//! exactly the MoCo v3 run's backbone.

mod common;

use common::{ok, runner_with_env};

const MOCO: &str = r#"
name: mcf_teacher
seed: 0
device: cpu
backbone: {name: vit, params: {width: 64, depth: 4, heads: 2, image_size: 32, patch: 8}}
pretrain:
  method: {name: moco_v3, params: {hidden: 128, dim: 32}}
  dataset: {name: synthface, params: {identities: 32, test_identities: 2, samples_per_identity: 4, resolution: 32}}
  views:
    - count: 2
      augmentations:
        - {name: random_resized_crop, params: {size: 32, scale: [0.4, 1.0]}}
        - {name: hflip, params: {p: 0.5}}
  steps: 10
  batch_size: 16
  optimizer: {name: adamw, params: {lr: 0.002, weight_decay: 0.05}}
  log_every: 10
"#;

const MCF: &str = r#"
name: mcf_smoke
seed: 0
device: cpu
backbone: {name: vit, params: {width: 64, depth: 2, heads: 2, image_size: 32, patch: 8}}
pretrain:
  method:
    name: mcf
    params: {teacher: {from_run: TEACHER}, decoder_width: 32, decoder_depth: 1, decoder_heads: 2, hidden: 128, dim: 32}
  dataset: {name: synthface, params: {identities: 32, test_identities: 2, samples_per_identity: 4, resolution: 32}}
  views:
    - count: 1
      augmentations:
        - {name: hflip, params: {p: 0.5}}
  steps: 40
  batch_size: 16
  optimizer: {name: adamw, params: {lr: 0.002, weight_decay: 0.05}}
  scheduler: {name: cosine, params: {warmup_steps: 4}}
  checkpoint_every: 40
  log_every: 10
"#;

/// The mean of loss term `name` over `rows`.
fn mean(rows: &[serde_json::Value], name: &str) -> f64 {
    rows.iter().map(|r| r["losses"][name].as_f64().unwrap()).sum::<f64>() / rows.len() as f64
}

#[test]
fn mcf_pretrains_a_vit_against_a_moco_v3_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let one_thread = [("OMP_NUM_THREADS", "1")];
    let teacher = dir.path().join("moco");
    let moco = dir.path().join("moco.yaml");
    std::fs::write(&moco, MOCO).unwrap();
    ok(runner_with_env(
        &[moco.to_str().unwrap(), "--out", teacher.to_str().unwrap()],
        &one_thread,
    ));

    let yaml = dir.path().join("mcf.yaml");
    std::fs::write(&yaml, MCF.replace("TEACHER", teacher.to_str().unwrap())).unwrap();
    let out = dir.path().join("mcf");
    ok(runner_with_env(
        &[yaml.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &one_thread,
    ));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 40);
    // Uniform logits cost ln(16) * 2 * 0.2 = 1.11.
    let (first, last) = (mean(&rows[..8], "contrastive"), mean(&rows[32..], "contrastive"));
    assert!(first > 0.9, "the first steps know nothing yet: {first}");
    assert!(
        last < 0.9 * first,
        "the contrastive loss should fall: {first} -> {last}"
    );
    // The collapse monitor on the queries: spread out (a collapsed one reads near 0).
    let spread: Vec<f64> = rows.iter().map(|r| r["values"]["spread"].as_f64().unwrap()).collect();
    assert!(spread.iter().all(|s| (0.3..1.5).contains(s)), "{spread:?}");
    let (first, last) = (mean(&rows[..8], "mim"), mean(&rows[32..], "mim"));
    assert!(last < 0.8 * first, "the MIM loss should fall: {first} -> {last}");
    // The target encoder and projector follow at the official constant 0.99.
    for name in ["target_encoder", "target_projector"] {
        assert_eq!(
            rows[20]["values"][format!("momentum/{name}")].as_f64(),
            Some(0.99),
            "{name}"
        );
    }

    // The teacher is the MoCo v3 run's backbone, untouched after 40 steps
    // (its four blocks, all compared by default).
    let read = |path: std::path::PathBuf| -> std::collections::HashMap<String, tch::Tensor> {
        tch::Tensor::read_safetensors(path).unwrap().into_iter().collect()
    };
    let model = read(out.join("checkpoints/step-00000040/model.safetensors"));
    let moco_backbone = read(teacher.join("backbone.safetensors"));
    assert!(moco_backbone.len() > 40, "{}", moco_backbone.len());
    for (name, t) in &moco_backbone {
        let ours = &model[&format!("teachers.mim_teacher.{name}")];
        assert!(ours.equal(t), "teacher {name} moved");
    }
    let same =
        |name: &str| model[&format!("backbone.{name}")].equal(&model[&format!("teachers.target_encoder.{name}")]);
    assert!(
        !same("blocks.0.attn.qkv.weight"),
        "the target is an average, not a copy"
    );
    assert!(model.contains_key("method.decoder_pred.weight"));
}
