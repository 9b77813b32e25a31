//! The runner end to end on the example experiment: the run directory, the
//! results contract, plugin logs in the host's log, and a representation
//! that beats its random initialisation.

mod common;

use common::{command, fails, ok, runner, runner_with_env};

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn the_example_experiment_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stdout = ok(runner(&[
        "experiments/example.yaml",
        "--set",
        "device=cpu",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(stdout.contains("example completed in"), "{stdout}");
    assert!(stdout.contains("random init"), "{stdout}");

    let results = read_json(&out.join("results.json"));
    assert_eq!(results["experiment"], "example");
    assert_eq!(results["status"], "completed");
    assert_eq!(results["pretrain"]["steps"], 400);
    let losses = &results["pretrain"];
    let (first, last) = (
        losses["first_losses"]["rotation"].as_f64().unwrap(),
        losses["final_losses"]["rotation"].as_f64().unwrap(),
    );
    assert!(last < first - 0.3, "the rotation loss should fall: {first} -> {last}");
    let evaluation = &results["evaluations"][0];
    assert_eq!(evaluation["task"], "example_classification");
    assert_eq!(evaluation["protocol"], "linear_probe");
    assert_eq!(evaluation["dataset"], "example_shapes");
    let (pretrained, random) = (
        evaluation["metrics"]["accuracy"].as_f64().unwrap(),
        evaluation["random_init"]["accuracy"].as_f64().unwrap(),
    );
    assert!(
        pretrained > random + 15.0,
        "pre-training should beat random init clearly: {pretrained} vs {random}"
    );

    let run = read_json(&out.join("run.json"));
    assert_eq!(run["seed"], 0);
    assert_eq!(run["device"], "Cpu");
    assert_eq!(run["versions"]["tch"], "0.24.0");
    assert!(run["versions"]["torch"].as_str().unwrap().starts_with("2.11.0"));
    assert!(run["git"]["revision"].as_str().is_some_and(|r| r.len() == 40), "{run}");
    let plugins: Vec<&str> = run["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Every plugin found is recorded (the workspace also builds synthface).
    assert!(
        plugins.first() == Some(&"builtin") && plugins.contains(&"example"),
        "{plugins:?}"
    );

    // The resolved config repeats the run's configuration exactly.
    let config = std::fs::read_to_string(out.join("config.yaml")).unwrap();
    let again = ok(runner(&["validate", out.join("config.yaml").to_str().unwrap()]));
    assert!(config.ends_with(&again), "config.yaml is not its own resolution");
    let origins = std::fs::read_to_string(out.join("origins.yaml")).unwrap();
    assert!(origins.contains("device: --set device=cpu\n"), "{origins}");

    // Plugin events reach the host's JSON log, loading included.
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let from_plugin = events
        .iter()
        .find(|e| e["target"] == "example::probe")
        .expect("a log line from the example plugin");
    assert_eq!(from_plugin["fields"]["message"], "linear probe on frozen features");
    assert!(
        events.iter().any(
            |e| e["target"] == "example" && e["fields"]["message"] == "registering the example plugin's components"
        ),
        "{log}"
    );

    // Another experiment scores the run's backbone without pre-training
    // (`backbone.from_run`): the same seed and probe give the same numbers.
    let rescore = dir.path().join("rescore.yaml");
    let yaml = format!(
        "extends: {}\nname: rescore\nbackbone: {{name: example_convnet, params: {{width: 16}}, from_run: {}}}\n",
        common::root().join("experiments/base/example_data.yaml").display(),
        out.display()
    );
    std::fs::write(&rescore, yaml).unwrap();
    let again = dir.path().join("again");
    ok(runner(&[
        rescore.to_str().unwrap(),
        "--set",
        "device=cpu",
        "--out",
        again.to_str().unwrap(),
    ]));
    let rescored = read_json(&again.join("results.json"));
    assert!(rescored.get("pretrain").is_none(), "{rescored}");
    assert_eq!(
        rescored["evaluations"][0]["metrics"], evaluation["metrics"],
        "{rescored}"
    );
    // Parameters compare with their defaults filled in: a run whose
    // backbone.json spells them short (`{}`, width 16 by default) is the
    // experiment's `{width: 16}`.
    std::fs::write(
        out.join("backbone.json"),
        r#"{"name": "example_convnet", "params": {}}"#,
    )
    .unwrap();
    let short = dir.path().join("short");
    ok(runner(&[
        rescore.to_str().unwrap(),
        "--set",
        "device=cpu",
        "--out",
        short.to_str().unwrap(),
    ]));
    assert_eq!(
        read_json(&short.join("results.json"))["evaluations"][0]["metrics"],
        evaluation["metrics"]
    );
    // A run of another backbone is refused before anything runs.
    let err = fails(runner(&[
        rescore.to_str().unwrap(),
        "--set",
        "backbone.params.width=8",
        "--out",
        dir.path().join("refused").to_str().unwrap(),
    ]));
    assert!(
        err.contains("backbone.from_run") && err.contains("the run's backbone is `example_convnet`"),
        "{err}"
    );
    assert!(!dir.path().join("refused").exists());
}

#[test]
fn the_same_seed_gives_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let results = |name: &str| {
        let out = dir.path().join(name);
        ok(runner(&[
            "experiments/example.yaml",
            "--set",
            "pretrain.steps=20",
            "--set",
            "device=cpu",
            "--out",
            out.to_str().unwrap(),
        ]));
        read_json(&out.join("results.json"))
    };
    let (a, b) = (results("a"), results("b"));
    assert_eq!(a["status"], "completed");
    assert_eq!(a, b, "two runs with one seed differ");
}

#[test]
fn any_number_of_loader_workers_gives_the_same_training() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = |workers: &str, prefetch: &str| {
        let out = dir.path().join(format!("w{workers}"));
        ok(runner(&[
            "experiments/example.yaml",
            "--set",
            "pretrain.steps=12",
            "--set",
            "pretrain.batch_size=48",
            "--set",
            &format!("pretrain.workers={workers}"),
            "--set",
            &format!("pretrain.prefetch={prefetch}"),
            "--set",
            "device=cpu",
            "--set",
            "evaluations=[]",
            "--out",
            out.to_str().unwrap(),
        ]));
        std::fs::read_to_string(out.join("metrics.jsonl")).unwrap()
    };
    let inline = metrics("0", "1");
    assert_eq!(inline.lines().count(), 12, "{inline}");
    assert_eq!(inline, metrics("3", "2"), "workers=0 and workers=3 differ");
}

#[test]
fn exported_backbone_weights_reproduce_the_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(runner(&[
        "experiments/example.yaml",
        "--set",
        "pretrain.steps=20",
        "--set",
        "device=cpu",
        "--out",
        a.to_str().unwrap(),
    ]));
    let weights = a.join("backbone.safetensors");
    let names: Vec<String> = tch::Tensor::read_safetensors(&weights)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(names.iter().all(|n| !n.starts_with("backbone.")), "{names:?}");
    // The same backbone, evaluated without pre-training from the export.
    let evaluate_only = dir.path().join("evaluate.yaml");
    let base = common::root().join("experiments/base/example_data.yaml");
    std::fs::write(
        &evaluate_only,
        format!(
            "extends: {}\nname: from_weights\ndevice: cpu\nbackbone:\n  weights: {{path: a/backbone.safetensors}}\n",
            base.display()
        ),
    )
    .unwrap();
    let b = dir.path().join("b");
    ok(runner(&[evaluate_only.to_str().unwrap(), "--out", b.to_str().unwrap()]));
    let (ra, rb) = (read_json(&a.join("results.json")), read_json(&b.join("results.json")));
    assert_eq!(ra["evaluations"][0]["metrics"], rb["evaluations"][0]["metrics"]);
    // The random-init baseline stays random.
    assert_eq!(ra["evaluations"][0]["random_init"], rb["evaluations"][0]["random_init"]);
    assert_ne!(rb["evaluations"][0]["metrics"], rb["evaluations"][0]["random_init"]);

    // Weights that do not fit are refused, naming the file and the keys.
    let stderr = fails(runner(&[
        evaluate_only.to_str().unwrap(),
        "--set",
        "backbone.params.width=8",
        "--out",
        dir.path().join("c").to_str().unwrap(),
    ]));
    assert!(
        stderr.contains("a/backbone.safetensors: the weights do not fit the backbone"),
        "{stderr}"
    );
    assert!(stderr.contains("mis-shaped: "), "{stderr}");

    // `runner embed` on a dataset, with the backbone of the run directory.
    let feats = dir.path().join("feats/shapes.npy");
    ok(runner(&[
        "embed",
        "--checkpoint",
        a.to_str().unwrap(),
        "--dataset",
        "example_shapes",
        "--dataset-params",
        "{count: 10, resolution: 32}",
        "--device",
        "cpu",
        "--batch-size",
        "4",
        "--out",
        feats.to_str().unwrap(),
    ]));
    let f = tch::Tensor::read_npy(&feats).unwrap();
    assert_eq!(f.size()[0], 10);
    let listed = std::fs::read_to_string(dir.path().join("feats/shapes.npy.inputs.txt")).unwrap();
    let expected: String = (0..10).map(|i| format!("example_shapes:{i}\n")).collect();
    assert_eq!(listed, expected);

    // ... and on a folder of images, in path order.
    let images = dir.path().join("images");
    std::fs::create_dir_all(images.join("sub")).unwrap();
    let draw = |seed: i64| {
        tch::manual_seed(seed);
        (tch::Tensor::rand([3, 40, 40], (tch::Kind::Float, tch::Device::Cpu)) * 255.0).to_kind(tch::Kind::Uint8)
    };
    tch::vision::image::save(&draw(1), images.join("z.png")).unwrap();
    tch::vision::image::save(&draw(1), images.join("a.png")).unwrap();
    tch::vision::image::save(&draw(2), images.join("sub/b.png")).unwrap();
    let feats = dir.path().join("images.npy");
    let embed_images = |out: &std::path::Path| {
        runner(&[
            "embed",
            "--checkpoint",
            weights.to_str().unwrap(),
            "--backbone",
            "example_convnet",
            "--params",
            "{width: 16}",
            "--images",
            images.to_str().unwrap(),
            "--size",
            "32",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    ok(embed_images(&feats));
    let listed = std::fs::read_to_string(dir.path().join("images.npy.inputs.txt")).unwrap();
    assert_eq!(listed, "a.png\nsub/b.png\nz.png\n");
    let f = tch::Tensor::read_npy(&feats).unwrap();
    let row = |i: i64| f.get(i);
    assert!(row(0).equal(&row(2)), "the same image gives the same features");
    assert!(!row(0).equal(&row(1)));
    // A corrupt image is named.
    std::fs::write(images.join("sub/broken.png"), b"not a png").unwrap();
    let stderr = fails(embed_images(&dir.path().join("never.npy")));
    assert!(stderr.contains("broken.png: not a JPEG or PNG image"), "{stderr}");
    assert!(!dir.path().join("never.npy").exists());
}

#[test]
fn gradient_accumulation_equals_the_large_batch() {
    // A ViT (layer norm only: no batch statistics) trained with 2 x 16
    // accumulated must match 1 x 32, step for step.
    let dir = tempfile::tempdir().unwrap();
    let train = |name: &str, batch: &str, accumulate: &str| {
        let out = dir.path().join(name);
        ok(runner(&[
            "experiments/example.yaml",
            "--set",
            "backbone={name: vit, params: {image_size: 32, patch: 8, width: 32, depth: 1, heads: 2}}",
            "--set",
            "evaluations=[]",
            "--set",
            "pretrain.steps=3",
            "--set",
            &format!("pretrain.batch_size={batch}"),
            "--set",
            &format!("pretrain.accumulate={accumulate}"),
            "--set",
            "pretrain.clip_grad_norm=1.0",
            "--set",
            // SGD: Adam's normalisation would magnify rounding in tiny gradients.
            "pretrain.optimizer={name: sgd, params: {lr: 0.1, momentum: 0.9}}",
            "--set",
            "device=cpu",
            "--out",
            out.to_str().unwrap(),
        ]));
        let weights: std::collections::BTreeMap<String, tch::Tensor> =
            tch::Tensor::read_safetensors(out.join("backbone.safetensors"))
                .unwrap()
                .into_iter()
                .collect();
        (weights, std::fs::read_to_string(out.join("metrics.jsonl")).unwrap())
    };
    let (accumulated, log_a) = train("a", "16", "2");
    let (large, log_b) = train("b", "32", "1");
    let (small, _) = train("c", "16", "1");
    let diff = |x: &std::collections::BTreeMap<String, tch::Tensor>,
                y: &std::collections::BTreeMap<String, tch::Tensor>| {
        x.iter()
            .map(|(k, v)| (v - &y[k]).abs().max().double_value(&[]))
            .fold(0.0, f64::max)
    };
    let (same, other) = (diff(&accumulated, &large), diff(&small, &large));
    assert!(same < 1e-6, "accumulated differs by {same}");
    assert!(other > 1e-4, "the comparison cannot tell batches apart: {other}");
    let loss = |log: &str| -> Vec<f64> {
        log.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["losses"]["rotation"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let (a, b) = (loss(&log_a), loss(&log_b));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?} vs {b:?}");
}

#[test]
fn the_knn_monitor_tracks_the_representation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(runner(&[
        "experiments/example.yaml",
        "--set",
        "pretrain.steps=100",
        "--set",
        "pretrain.knn_monitor={dataset: {name: example_shapes, params: {count: 400, resolution: 32}}, label: class, every: 50, k: 10}",
        "--set",
        "evaluations=[]",
        "--set",
        "device=cpu",
        "--out",
        out.to_str().unwrap(),
    ]));
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let knn: Vec<(u64, f64)> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| Some((v["step"].as_u64()?, v["knn/class"].as_f64()?)))
        .collect();
    assert_eq!(knn.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![49, 99], "{log}");
    // Four shape classes: chance is 25%.
    assert!(knn.iter().all(|(_, a)| (0.0..=100.0).contains(a)));
    assert!(knn[1].1 > 40.0, "kNN accuracy after pre-training: {knn:?}");
    let stderr = fails(runner(&[
        "validate",
        "experiments/example.yaml",
        "--set",
        "pretrain.knn_monitor={dataset: {name: example_shapez}, label: class}",
    ]));
    assert!(
        stderr.contains("`pretrain.knn_monitor.dataset.name`: unknown dataset `example_shapez`"),
        "{stderr}"
    );
}

#[test]
fn view_augmentations_are_checked_like_the_others() {
    let stderr = fails(runner(&[
        "validate",
        "experiments/example.yaml",
        "--set",
        "pretrain.views=[{count: 2, augmentations: [{name: hflip}, {name: random_resized_crop, params: {sise: 16}}]}]",
    ]));
    assert!(
        stderr.contains("`pretrain.views.0.augmentations.1.params.sise`: unknown field `sise`"),
        "{stderr}"
    );
    let resolved = ok(runner(&[
        "validate",
        "experiments/example.yaml",
        "--set",
        "pretrain.views=[{count: 2, augmentations: [{name: hflip}]}]",
    ]));
    // The resolved view chain has its defaults filled in.
    assert!(
        resolved.contains("count: 2") && resolved.contains("p: 0.5"),
        "{resolved}"
    );
    let stderr = fails(runner(&[
        "validate",
        "experiments/example.yaml",
        "--set",
        "pretrain.views=[{count: 1, shared_steps: [0, 1], augmentations: [{name: hflip}]}]",
    ]));
    assert!(
        stderr.contains("`pretrain.views.0.shared_steps.1`: shared step 1 is not a step of this group's chain, which has 1 augmentation(s)"),
        "{stderr}"
    );
}

#[test]
fn evaluation_augmentations_are_checked_like_the_others() {
    let stderr = fails(runner(&[
        "validate",
        "experiments/example.yaml",
        "--set",
        "evaluations.0.test_augmentations=[{name: center_crop, params: {sise: 16}}]",
    ]));
    assert!(
        stderr.contains("`evaluations.0.test_augmentations.0.params.sise`: unknown field `sise`"),
        "{stderr}"
    );
}

#[test]
fn fp16_needs_cuda_but_bf16_trains_on_the_cpu_close_to_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let never = dir.path().join("never");
    let stderr = fails(runner(&[
        "experiments/example.yaml",
        "--set",
        "pretrain.precision=fp16",
        "--set",
        "device=cpu",
        "--out",
        never.to_str().unwrap(),
    ]));
    assert!(stderr.contains("fp16 runs on CUDA only"), "{stderr}");
    assert!(stderr.contains("use bf16 or fp32"), "{stderr}");
    assert!(!never.exists(), "no run directory for a run that cannot start");

    // The same 15 steps in fp32 and under bf16 autocast.
    let losses = |precision: &str| -> Vec<f64> {
        let out = dir.path().join(precision);
        ok(runner(&[
            "experiments/example.yaml",
            "--set",
            "pretrain.steps=15",
            "--set",
            &format!("pretrain.precision={precision}"),
            "--set",
            "evaluations=[]",
            "--set",
            "device=cpu",
            "--out",
            out.to_str().unwrap(),
        ]));
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|v| v["losses"]["rotation"].as_f64())
            .collect()
    };
    let (fp32, bf16) = (losses("fp32"), losses("bf16"));
    assert_eq!((fp32.len(), bf16.len()), (15, 15), "{fp32:?} {bf16:?}");
    // bfloat16 keeps 8 bits of mantissa: the losses differ (autocast is on)
    // but by a few percent at most, not by a different training.
    assert!(fp32 != bf16, "bf16 autocast changed nothing: {fp32:?}");
    for (a, b) in fp32.iter().zip(&bf16) {
        assert!((a - b).abs() <= 0.05 * a.abs(), "fp32 {fp32:?}\nbf16 {bf16:?}");
    }
}

#[test]
fn an_unavailable_cuda_device_is_an_error() {
    // As the runner does: libtorch's CUDA backend is a separate library.
    if let Ok(cuda) = unsafe { libloading::Library::new("libtorch_cuda.so") } {
        std::mem::forget(cuda);
    }
    if tch::Cuda::is_available() {
        return; // only meaningful without a GPU
    }
    let stderr = fails(runner(&[
        "experiments/example.yaml",
        "--set",
        "device=cuda:0",
        "--out",
        "/tmp/visage-never",
    ]));
    assert!(
        !std::path::Path::new("/tmp/visage-never").exists(),
        "no run directory for a run that cannot start"
    );
    assert!(
        stderr.contains("device `cuda:0` asked for, but 0 CUDA device(s) are available"),
        "{stderr}"
    );
}

/// A short pre-training that checkpoints every step.
fn resumable(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "experiments/example.yaml",
        "--set",
        "pretrain.steps=60",
        "--set",
        "pretrain.batch_size=16",
        "--set",
        "pretrain.checkpoint_every=1",
        "--set",
        "device=cpu",
        "--set",
        "evaluations.0.random_init=false",
        "--set",
        "evaluations.0.dataset.params.count=128",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts `args` as a real process, kills it with SIGKILL once it has
/// checkpointed a random step below `steps` (its run folder appears under
/// `runs`), and returns the run folder and the step of its last checkpoint.
fn killed_at_a_random_step(args: &[String], runs: &std::path::Path, steps: u64) -> (std::path::PathBuf, u64) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let kill_after = 3 + u64::from(nanos) % (steps * 3 / 4);
    let mut child = command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .spawn()
        .unwrap();
    let run = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before step {kill_after}"
        );
        let found = std::fs::read_dir(runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path());
        if let Some(run) = found.filter(|r| latest_step(r).is_some_and(|s| s >= kill_after)) {
            break run;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = latest_step(&run).unwrap();
    assert!(
        killed_at < steps && !run.join("results.json").exists(),
        "killed too late: step {killed_at}"
    );
    (run, killed_at)
}

fn latest_step(run: &std::path::Path) -> Option<u64> {
    let name = std::fs::read_to_string(run.join("checkpoints/latest")).ok()?;
    name.trim().strip_prefix("step-")?.parse().ok()
}

#[test]
fn a_run_killed_at_a_random_step_resumes_to_identical_weights() {
    let dir = tempfile::tempdir().unwrap();
    let output_dir = format!("output_dir={}", dir.path().join("runs").display());
    let reference = dir.path().join("reference");
    let args = resumable(&["--set", &output_dir, "--out", reference.to_str().unwrap()]);
    ok(runner(&args.iter().map(String::as_str).collect::<Vec<_>>()));

    let args = resumable(&["--set", &output_dir]);
    let (run, killed_at) = killed_at_a_random_step(&args, &dir.path().join("runs/example"), 60);

    // A different configuration is refused; the same one resumes.
    let explicit = resumable(&[
        "--set",
        &output_dir,
        "--set",
        "seed=1",
        "--resume",
        run.to_str().unwrap(),
    ]);
    let stderr = fails(runner(&explicit.iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(
        stderr.contains("the run was started with `seed: 0`, the experiment now resolves to `seed: 1`"),
        "{stderr}"
    );
    let again = resumable(&["--set", &output_dir, "--resume", "auto"]);
    ok(runner(&again.iter().map(String::as_str).collect::<Vec<_>>()));

    let model = |r: &std::path::Path| std::fs::read(r.join("checkpoints/step-00000060/model.safetensors")).unwrap();
    assert!(
        model(&run) == model(&reference),
        "resumed from step {killed_at}: final weights differ"
    );
    assert_eq!(
        read_json(&run.join("results.json")),
        read_json(&reference.join("results.json")),
        "killed at {killed_at}"
    );
    let metrics = |r: &std::path::Path| std::fs::read_to_string(r.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics(&run).lines().count(), 60);
    assert_eq!(
        metrics(&run),
        metrics(&reference),
        "killed at {killed_at}: metrics.jsonl differs"
    );
    // TensorBoard, reading the killed and the resumed files, sees each step once.
    let scalars = tensorboard_scalars(&run.join("tensorboard"));
    let expected: Vec<(u64, f32)> = metrics(&reference)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["step"].as_u64().unwrap(),
                v["losses"]["rotation"].as_f64().unwrap() as f32,
            )
        })
        .collect();
    assert_eq!(
        scalars["loss/rotation"], expected,
        "killed at {killed_at}: TensorBoard curve differs"
    );
    assert_eq!(scalars["lr_factor"].len(), 60);
    let kept: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(kept.len(), 3, "two checkpoints and `latest`: {kept:?}");
}

/// BYOL's momentum copies (the backbone's and the projector's) are
/// teachers that the engine moves by EMA, checkpoints and restores: a run
/// killed at a random step resumes to identical weights, and the momentum
/// is logged at every step.
#[test]
fn a_method_with_momentum_teachers_resumes_exactly_and_logs_its_momentum() {
    let dir = tempfile::tempdir().unwrap();
    let output_dir = format!("output_dir={}", dir.path().join("runs").display());
    let steps = 30;
    let byol = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "experiments/example_byol.yaml",
            "--set",
            "pretrain.steps=30",
            "--set",
            "pretrain.batch_size=16",
            "--set",
            "pretrain.checkpoint_every=1",
            "--set",
            "device=cpu",
            "--set",
            "evaluations=[]",
            "--set",
            &output_dir,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    // The method declares its two views; an experiment without them is refused.
    let elsewhere = dir.path().join("no_views");
    let no_views = byol(&["--set", "pretrain.views=[]", "--out", elsewhere.to_str().unwrap()]);
    let stderr = fails(runner(&no_views.iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(
        stderr.contains("pretrain.views: method `example_byol` reads 1 group(s): two augmented views (2 views)"),
        "{stderr}"
    );
    let reference = dir.path().join("reference");
    ok(runner(
        &byol(&["--out", reference.to_str().unwrap()])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    let (run, killed_at) = killed_at_a_random_step(&byol(&[]), &dir.path().join("runs/example_byol"), steps);
    let resume = byol(&["--resume", run.to_str().unwrap()]);
    ok(runner(&resume.iter().map(String::as_str).collect::<Vec<_>>()));

    let model = |r: &std::path::Path, step: u64| {
        let file = r.join(format!("checkpoints/step-{step:08}/model.safetensors"));
        tch::Tensor::read_safetensors(&file)
            .unwrap()
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (last, reference_last) = (model(&run, steps), model(&reference, steps));
    assert_eq!(last.len(), reference_last.len());
    for (name, t) in &last {
        assert!(
            t.equal(&reference_last[name]),
            "killed at {killed_at}: `{name}` differs"
        );
    }
    let metrics = |r: &std::path::Path| std::fs::read_to_string(r.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics(&run),
        metrics(&reference),
        "killed at {killed_at}: metrics differ"
    );

    // The momentum follows its cosine from 0.99 towards 1, logged every step.
    let lines: Vec<serde_json::Value> = metrics(&reference)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), steps as usize);
    for line in &lines {
        let s = line["step"].as_u64().unwrap() as f64;
        let expected = 1.0 - 0.01 * (1.0 + (std::f64::consts::PI * s / steps as f64).cos()) / 2.0;
        for copy in ["momentum/target", "momentum/projector"] {
            let m = line["values"][copy].as_f64().unwrap();
            assert!((m - expected).abs() < 1e-12, "{copy} at step {s}: {m} vs {expected}");
        }
    }
    // The last update: target = m * target + (1 - m) * online, for the
    // backbone's copy and the projector's; the copies are not the online
    // weights, and BN statistics are their own.
    let before = model(&reference, steps - 1);
    let m = lines.last().unwrap()["values"]["momentum/target"].as_f64().unwrap();
    let pairs = [
        ("teachers.target.block0.conv.weight", "backbone.block0.conv.weight"),
        ("method.momentum_projector.0.weight", "method.projector.0.weight"),
    ];
    for (target, online) in pairs {
        let expected = &before[target] * m + &reference_last[online] * (1.0 - m);
        let error = (&reference_last[target] - expected).abs().max().double_value(&[]);
        assert!(error < 1e-6, "{target}: {error}");
        let apart = (&reference_last[target] - &reference_last[online])
            .abs()
            .max()
            .double_value(&[]);
        assert!(apart > 1e-4, "{target} equals {online}");
    }
}

/// The scalars of an event folder as TensorBoard's own reader sees them.
fn tensorboard_scalars(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<(u64, f32)>> {
    let python =
        std::path::Path::new(&std::env::var("VIRTUAL_ENV").expect("run through ./scripts/test")).join("bin/python");
    let script = common::root().join("tests/reference/tensorboard_scalars.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_non_finite_loss_stops_the_run_naming_the_term_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let run = |skip: u32| {
        let out = dir.path().join(format!("skip{skip}"));
        let skip = format!("pretrain.skip_nonfinite={skip}");
        let args = [
            "tests/fixtures/config/base.yaml",
            "--set",
            "pretrain.optimizer={name: sgd, params: {lr: 1.0e+12}}",
            "--set",
            "pretrain.steps=30",
            "--set",
            "pretrain.checkpoint_every=1",
            "--set",
            &skip,
            "--set",
            "device=cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        let stderr = fails(runner(&args));
        let results = read_json(&out.join("results.json"));
        assert_eq!(results["status"], "failed");
        let latest = std::fs::read_to_string(out.join("checkpoints/latest")).unwrap();
        (stderr, latest)
    };
    let (stderr, latest) = run(0);
    let step: u64 = stderr
        .split("is NaN at step ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(stderr.contains("loss term `rotation` is NaN at step"), "{stderr}");
    // The checkpoint of the last completed step is intact.
    assert_eq!(latest, format!("step-{step:08}"));
    // Allowing two skipped steps stops two steps later.
    let (stderr, _) = run(2);
    assert!(stderr.contains(&format!("is NaN at step {};", step + 2)), "{stderr}");
}

/// The fixture base on the CPU with `--set`s `sets`, then `extra`.
fn fixture_args(sets: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "tests/fixtures/config/base.yaml".to_string(),
        "--set".into(),
        "device=cpu".into(),
    ];
    for set in sets {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Without the `latest` pointer, a resumed run continues from the newest
/// complete checkpoint and says so; `--resume auto` with no earlier run
/// says it starts a new one.
#[test]
fn resuming_says_what_it_does_without_latest_or_an_earlier_run() {
    let dir = tempfile::tempdir().unwrap();
    let output_dir = format!("output_dir={}", dir.path().join("runs").display());
    let run = dir.path().join("run");
    let sets = [
        "pretrain.steps=4",
        "pretrain.checkpoint_every=1",
        "pretrain.keep_checkpoints=4",
        output_dir.as_str(),
    ];
    let args = |extra: &[&str]| fixture_args(&sets, extra);
    let run_args = args(&["--out", run.to_str().unwrap()]);
    ok(runner(&run_args.iter().map(String::as_str).collect::<Vec<_>>()));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    std::fs::remove_file(run.join("checkpoints/latest")).unwrap();
    std::fs::remove_file(run.join("checkpoints/step-00000004/state.json")).unwrap();
    let resume = args(&["--resume", run.to_str().unwrap()]);
    let out = runner_with_env(
        &resume.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("RUST_LOG", "warn")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`checkpoints/latest` is missing; resuming from the newest complete checkpoint")
            && out.stderr.contains("step-00000003"),
        "{}",
        out.stderr
    );
    // Step 4 was computed again, to the same losses.
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(), metrics);

    let fresh = format!("output_dir={}", dir.path().join("fresh").display());
    let auto = args(&["--set", &fresh, "--resume", "auto"]);
    let out = runner_with_env(
        &auto.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("RUST_LOG", "warn")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("--resume auto: no unfinished run of `fixture`")
            && out.stderr.contains("starting a new run"),
        "{}",
        out.stderr
    );
}

/// A checkpoint that cannot be written (here its folder's name is taken by
/// a file, as a full disk fails a write) is the error reported, not the
/// later failure to write results.json; neither leaves a temporary behind.
#[test]
fn the_first_failing_write_is_reported_and_its_temporaries_removed() {
    let dir = tempfile::tempdir().unwrap();
    let output_dir = format!("output_dir={}", dir.path().join("runs").display());
    let run = dir.path().join("run");
    let sets = ["pretrain.checkpoint_every=1", output_dir.as_str()];
    let args = |extra: &[&str]| fixture_args(&sets, extra);
    let first = args(&["--out", run.to_str().unwrap()]);
    ok(runner(&first.iter().map(String::as_str).collect::<Vec<_>>()));
    let checkpoints = run.join("checkpoints");
    std::fs::remove_dir_all(checkpoints.join("step-00000002")).unwrap();
    std::fs::write(checkpoints.join("step-00000002"), "in the way").unwrap();
    std::fs::write(checkpoints.join("latest"), "step-00000001").unwrap();
    std::fs::remove_file(run.join("results.json")).unwrap();
    std::fs::create_dir_all(run.join("results.json/in the way")).unwrap();

    let resume = args(&["--resume", run.to_str().unwrap()]);
    let stderr = fails(runner(&resume.iter().map(String::as_str).collect::<Vec<_>>()));
    let first_line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_default();
    assert!(first_line.contains("step-00000002"), "{stderr}");
    assert!(stderr.contains("results.json could not be written"), "{stderr}");
    let leftovers = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    };
    assert!(leftovers(&checkpoints).is_empty(), "{:?}", leftovers(&checkpoints));
    assert!(leftovers(&run).is_empty(), "{:?}", leftovers(&run));
    assert_eq!(
        std::fs::read_to_string(checkpoints.join("latest")).unwrap(),
        "step-00000001"
    );
}

/// A task whose dataset lacks what it reads (here landmarks on drawn
/// shapes) is refused before pre-training, naming the evaluation's `task`
/// key, and leaves no run directory behind.
#[test]
fn a_task_its_dataset_cannot_feed_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("misfit.yaml");
    std::fs::write(
        &yaml,
        "name: misfit\ndevice: cpu\nbackbone: {name: resnet, params: {width: 8}}\n\
         pretrain:\n  method: {name: example_rotation}\n  dataset: {name: example_shapes, params: {count: 64, resolution: 32}}\n  \
         steps: 1000\n  batch_size: 8\n  optimizer: {name: adamw, params: {lr: 0.001}}\n\
         evaluations:\n  - task: {name: example_classification}\n    protocol: linear_probe\n    \
         dataset: {name: example_shapes, params: {count: 64, resolution: 32}}\n  - task: {name: alignment}\n    \
         protocol: linear_probe\n    dataset: {name: example_shapes, params: {count: 64, resolution: 32}}\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let stderr = fails(runner(&[yaml.to_str().unwrap(), "--out", out.to_str().unwrap()]));
    assert!(stderr.contains("misfit.yaml:14:"), "{stderr}");
    assert!(stderr.contains("evaluations.1.task"), "{stderr}");
    assert!(
        stderr.contains("`alignment` cannot run on dataset `example_shapes`"),
        "{stderr}"
    );
    assert!(stderr.contains("alignment needs label `landmarks`"), "{stderr}");
    assert!(!out.exists(), "a run directory was created");
}

/// The supervised twin trains with `supervised_params` in place of the
/// task's parameters: here one epoch (2 steps of 16 of the 40 training
/// faces) beside the probe's two (4 steps); `supervised_params` without
/// `supervised`, or with a key the task does not know, is refused.
#[test]
fn the_supervised_twin_takes_its_own_task_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("twin.yaml");
    let experiment = |supervised: &str, params: &str| {
        format!(
            "name: twin\ndevice: cpu\nbackbone: {{name: resnet, params: {{width: 8}}}}\nevaluations:\n\
             \x20 - task: {{name: fer, params: {{training: {{epochs: 2, batch_size: 16}}}}}}\n\
             \x20   protocol: linear_probe\n    random_init: false\n    supervised: {supervised}\n\
             \x20   supervised_params: {params}\n\
             \x20   dataset: {{name: synthface, params: {{identities: 6, test_identities: 2, samples_per_identity: 10, resolution: 32}}}}\n"
        )
    };
    let out = dir.path().join("run");
    std::fs::write(
        &yaml,
        experiment("true", "{training: {epochs: 1, batch_size: 16, warmup_epochs: 0}}"),
    )
    .unwrap();
    ok(runner_with_env(
        &[yaml.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &[("OMP_NUM_THREADS", "1")],
    ));
    let steps = |twin: &str| {
        std::fs::read_to_string(out.join(format!("evaluations/0-fer/{twin}/metrics.jsonl")))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!((steps("pretrained"), steps("supervised")), (4, 2));
    let results = read_json(&out.join("results.json"));
    assert!(
        results["evaluations"][0]["supervised"]["accuracy"].is_f64(),
        "{results}"
    );

    std::fs::write(&yaml, experiment("false", "{training: {epochs: 1}}")).unwrap();
    let stderr = fails(runner(&["validate", yaml.to_str().unwrap()]));
    assert!(stderr.contains("twin.yaml:9:5"), "{stderr}");
    assert!(
        stderr.contains("`evaluations.0.supervised_params`: set, but `supervised` is false"),
        "{stderr}"
    );

    std::fs::write(&yaml, experiment("true", "{training: {epoch: 1}}")).unwrap();
    let stderr = fails(runner(&[
        yaml.to_str().unwrap(),
        "--out",
        out.with_extension("bad").to_str().unwrap(),
    ]));
    assert!(
        stderr.contains("`evaluations.0.supervised_params`: the supervised twin's parameters of task `fer`"),
        "{stderr}"
    );
    assert!(stderr.contains("epoch"), "{stderr}");
    assert!(!out.with_extension("bad").exists());
}

/// `--seeds`: one run per seed, each equal to the plain run with that seed,
/// and `seeds.json` with each metric's statistics and the paired lead; the
/// same command continues a sweep, and a seed that fails is reported
/// without stopping the others.
#[test]
fn a_seed_sweep_runs_each_seed_and_reports_the_paired_lead() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    let args = |out: &std::path::Path, extra: &[&str]| -> Vec<String> {
        let mut args = fixture_args(&[], extra);
        args.extend(["--out".to_string(), out.display().to_string()]);
        args
    };
    let run = |args: Vec<String>| runner(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = ok(run(args(&sweep, &["--seeds", "0-2"])));
    assert!(stdout.contains("fixture over 3 seeds (0, 1, 2)"), "{stdout}");
    // Each seed's log holds its own announcement and no other seed's.
    for seed in 0..3 {
        let log = std::fs::read_to_string(sweep.join(format!("seed-{seed}/log.jsonl"))).unwrap();
        for other in 0..3 {
            let line = format!("seed {other} ({} of 3)", other + 1);
            assert_eq!(log.contains(&line), other == seed, "seed {seed}'s log and `{line}`");
        }
    }

    let summary = read_json(&sweep.join("seeds.json"));
    assert_eq!(summary["seeds"], serde_json::json!([0, 1, 2]));
    let accuracy = &summary["evaluations"][0]["metrics"]["accuracy"];
    let mut leads = vec![];
    for seed in 0..3 {
        let results = read_json(&sweep.join(format!("seed-{seed}/results.json")));
        let alone = dir.path().join(format!("alone-{seed}"));
        ok(run(args(&alone, &["--set", &format!("seed={seed}")])));
        assert_eq!(results, read_json(&alone.join("results.json")), "seed {seed}");
        let (pre, random) = (
            results["evaluations"][0]["metrics"]["accuracy"].as_f64().unwrap(),
            results["evaluations"][0]["random_init"]["accuracy"].as_f64().unwrap(),
        );
        assert_eq!(accuracy["pretrained"]["values"][seed], pre);
        leads.push(pre - random);
    }
    let mean = leads.iter().sum::<f64>() / 3.0;
    assert!(
        (accuracy["lead"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9,
        "{accuracy}"
    );
    let values: Vec<f64> = accuracy["pretrained"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        values.iter().any(|v| *v != values[0]),
        "the seeds should differ: {values:?}"
    );

    // Continue: seed 1 as if killed before it finished.
    std::fs::remove_file(sweep.join("seed-1/results.json")).unwrap();
    ok(run(args(&sweep, &["--seeds", "0-2"])));
    assert_eq!(read_json(&sweep.join("seeds.json")), summary);

    // Seed 1's folder taken by something else: the others still run.
    let taken = dir.path().join("taken");
    std::fs::create_dir_all(taken.join("seed-1")).unwrap();
    std::fs::write(taken.join("seed-1/notes.txt"), "mine").unwrap();
    let out = run(args(&taken, &["--seeds", "0-2"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let partial = read_json(&taken.join("seeds.json"));
    assert_eq!(partial["seeds"], serde_json::json!([0, 2]));
    assert!(
        partial["failed"]["1"]
            .as_str()
            .unwrap()
            .contains("exists and is not empty"),
        "{partial}"
    );
    assert!(out.stdout.contains("seed 1 FAILED"), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string(taken.join("seed-1/notes.txt")).unwrap(), "mine");
}
