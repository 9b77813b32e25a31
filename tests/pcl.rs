//! The `pcl` method end to end: it pre-trains `facecycle` on `synthface`
//! from a YAML (PCL's four view groups, small sizes), its reconstruction
//! and pose losses fall, Dynamic Weight Averaging moves the contrastive
//! weights from its third period on, and the backbone is saved under the
//! official names.

mod common;

use common::{ok, runner_with_env};

const EXPERIMENT: &str = r#"
name: pcl_smoke
seed: 0
device: cpu
backbone: {name: facecycle, params: {width: 8, image_size: 64}}
pretrain:
  method:
    name: pcl
    params: {projector_dim: 32, decoder_width: 32, pose_negatives: 2, dwa: {period: 5}}
  dataset: {name: synthface, params: {identities: 12, test_identities: 2, samples_per_identity: 4, resolution: 64}}
  augmentations: [{name: resize, params: {size: 64}}]
  views:
    - count: 1
      shared_steps: [0]
      augmentations:
        - {name: distance_crop, params: {view: 0}}
        - {name: resize, params: {size: 64}}
        - {name: color_jitter, params: {brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 0.8}}
        - {name: grayscale, params: {p: 0.2}}
    - count: 1
      shared_steps: [0]
      augmentations:
        - {name: distance_crop, params: {view: 1}}
        - {name: resize, params: {size: 64}}
        - {name: color_jitter, params: {brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 0.8}}
        - {name: grayscale, params: {p: 0.2}}
    - count: 2
      augmentations:
        - {name: color_jitter, params: {brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 0.8}}
        - {name: grayscale, params: {p: 0.2}}
    - count: 2
      augmentations:
        - {name: hflip, params: {p: 1.0}}
        - {name: color_jitter, params: {brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 0.8}}
        - {name: grayscale, params: {p: 0.2}}
  steps: 40
  batch_size: 16
  optimizer: {name: adam, params: {lr: 0.001, weight_decay: 0.001}}
  log_every: 10
"#;

/// The mean of `f` over `rows`.
fn mean(rows: &[serde_json::Value], f: impl Fn(&serde_json::Value) -> f64) -> f64 {
    rows.iter().map(f).sum::<f64>() / rows.len() as f64
}

#[test]
fn pcl_pretrains_facecycle_on_synthface() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("pcl.yaml");
    std::fs::write(&yaml, EXPERIMENT).unwrap();
    let out = dir.path().join("run");
    // One libtorch thread: the model is tiny, and on a loaded two-core
    // machine two spinning OpenMP threads make each step ten times slower.
    ok(runner_with_env(
        &[yaml.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &[("OMP_NUM_THREADS", "1")],
    ));

    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 40);
    // The logged contrastive losses are weighted; DWA's weights are logged.
    let unweighted = |name: &'static str| {
        move |r: &serde_json::Value| {
            r["losses"][name].as_f64().unwrap() / r["values"][format!("dwa/{name}")].as_f64().unwrap()
        }
    };
    let loss = |name: &'static str| move |r: &serde_json::Value| r["losses"][name].as_f64().unwrap();
    let (first, last) = (&rows[..8], &rows[32..]);
    for (name, f) in [
        (
            "reconstruction",
            Box::new(loss("reconstruction")) as Box<dyn Fn(&serde_json::Value) -> f64>,
        ),
        ("pose", Box::new(unweighted("pose"))),
    ] {
        let (a, b) = (mean(first, &f), mean(last, &f));
        assert!(
            b < 0.9 * a,
            "{name} should fall: {a} over the first 8 steps, {b} over the last 8"
        );
    }
    for r in &rows {
        assert!(
            unweighted("face")(r).is_finite() && loss("orthogonal")(r).is_finite(),
            "{r}"
        );
    }

    // DWA: weights 1 in periods 0 and 1 (steps 0-9), then two weights
    // that sum to 2 and differ.
    let weights = |r: &serde_json::Value| {
        (
            r["values"]["dwa/face"].as_f64().unwrap(),
            r["values"]["dwa/pose"].as_f64().unwrap(),
        )
    };
    assert!(rows[..10].iter().all(|r| weights(r) == (1.0, 1.0)));
    let (f, p) = weights(&rows[10]);
    assert!((f + p - 2.0).abs() < 1e-9 && f != p, "{f} {p}");
    assert_eq!(weights(&rows[14]), (f, p), "weights change only between periods");

    // The backbone is saved under the official names.
    let saved = tch::Tensor::read_safetensors(out.join("backbone.safetensors")).unwrap();
    let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"layer1.2.theta.weight") && names.contains(&"layer3_2_pose.2.bias"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("decoder") || n.contains("exp_fc")),
        "{names:?}"
    );
}

#[test]
fn the_warm_up_trains_the_reconstructions_alone_then_every_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("pcl.yaml");
    std::fs::write(&yaml, EXPERIMENT).unwrap();
    let out = dir.path().join("run");
    let stdout = ok(runner_with_env(
        &[
            yaml.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--set",
            "pretrain.steps=16",
            "--set",
            "pretrain.method.params.warmup_steps=10",
        ],
        &[("OMP_NUM_THREADS", "1")],
    ));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 16);
    let keys =
        |r: &serde_json::Value, field: &str| -> Vec<String> { r[field].as_object().unwrap().keys().cloned().collect() };
    // Steps 0-9: one optimiser step, on the reconstructions alone.
    for r in &rows[..10] {
        assert_eq!(keys(r, "losses"), ["reconstruction"], "{r}");
        let norms: Vec<String> = keys(r, "values")
            .into_iter()
            .filter(|k| k.starts_with("grad_norm"))
            .collect();
        assert_eq!(norms, ["grad_norm/0"], "{r}");
    }
    // Then the three steps, DWA at weight 1 until it has two periods.
    for r in &rows[10..] {
        assert_eq!(
            keys(r, "losses"),
            ["face", "orthogonal", "pose", "reconstruction"],
            "{r}"
        );
        for k in ["grad_norm/0", "grad_norm/1", "grad_norm/2"] {
            assert!(r["values"][k].as_f64().is_some_and(f64::is_finite), "{k} in {r}");
        }
        assert_eq!(r["values"]["dwa/face"].as_f64(), Some(1.0), "{r}");
    }
    // The summary's first face loss is that of step 10, its first step.
    let first_face = rows[10]["losses"]["face"].as_f64().unwrap();
    assert!(
        stdout.contains(&format!("face {first_face:.4} -> ")) && !stdout.contains("NaN"),
        "{stdout}"
    );
}
