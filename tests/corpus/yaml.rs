//! Experiment files, `--set` and `VISAGE_*` values: syntax errors, unknown
//! keys, wrong types, NaN, zero and absurd sizes, duplicate keys, and files
//! that are not experiment files at all (a FIFO, `/dev/zero`, a huge file).
//! Every one is refused before a run directory exists.

use std::path::PathBuf;

use crate::common::root;
use crate::harness::{refused, Scratch};

/// The valid base every case starts from, by absolute path (so that a
/// file in the scratch folder can extend it).
fn base() -> PathBuf {
    root().join("tests/fixtures/config/base.yaml")
}

/// Writes `<name>.yaml` extending the base with `body`.
fn experiment(scratch: &Scratch, name: &str, body: &str) -> PathBuf {
    scratch.file(
        &format!("{name}.yaml"),
        format!("extends: {}\nname: {name}\n{body}", base().display()),
    )
}

/// Runs `file` (a whole run, not `validate`) and asserts the harness's
/// three properties, and that no run directory was made.
fn run_refused(scratch: &Scratch, file: &str, sets: &[&str], env: &[(&str, &str)], names: &[&str]) -> String {
    let output_dir = scratch.output_dir();
    let mut args = vec![file, "--set", "device=cpu", "--set", &output_dir];
    for set in sets {
        args.extend(["--set", set]);
    }
    let stderr = refused(scratch, &args, env, names);
    assert!(
        !scratch.path("runs").exists(),
        "a run directory was made for a bad input:\n{stderr}"
    );
    stderr
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let scratch = Scratch::new();
    for (name, body, at) in [
        (
            "indent",
            "backbone:\n  name: example_convnet\n    params: {width: 4}\n",
            "indent.yaml:5:11",
        ),
        ("unclosed", "pretrain: {steps: 3\n", "unclosed.yaml:"),
        ("tab", "seed:\t\t[1, 2\n", "tab.yaml:"),
        ("colon", "seed: : 3\n", "colon.yaml:3"),
    ] {
        let file = experiment(&scratch, name, body);
        run_refused(&scratch, file.to_str().unwrap(), &[], &[], &[at, "YAML syntax error"]);
    }
    // Not YAML text at all.
    let binary = scratch.file("binary.yaml", [0xFFu8, 0xFE, 0x00, 0x81, 0x7F]);
    run_refused(&scratch, binary.to_str().unwrap(), &[], &[], &["binary.yaml"]);
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let scratch = Scratch::new();
    for (name, body, names) in [
        (
            "typo",
            "pretrain:\n  stesp: 3\n",
            &["typo.yaml:4:3", "`pretrain.stesp`", "did you mean `steps`?"][..],
        ),
        (
            "string_steps",
            "pretrain:\n  steps: many\n",
            &["string_steps.yaml:4:3", "`pretrain.steps`", "expected u64"],
        ),
        ("negative_seed", "seed: -1\n", &["negative_seed.yaml:3:1", "`seed`"]),
        (
            "number_backbone",
            "backbone: 3\n",
            &["number_backbone.yaml:3:1", "`backbone`", "expected struct BackboneSpec"],
        ),
        (
            "param_type",
            "backbone: {name: example_convnet, params: {width: wide}}\n",
            &["param_type.yaml:3:44", "`backbone.params.width`"],
        ),
    ] {
        let file = experiment(&scratch, name, body);
        run_refused(&scratch, file.to_str().unwrap(), &[], &[], names);
    }
}

#[test]
fn nan_and_infinity_name_the_key() {
    let scratch = Scratch::new();
    let file = experiment(
        &scratch,
        "nan",
        "pretrain:\n  optimizer: {name: sgd, params: {lr: .nan}}\n",
    );
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &[
            "nan.yaml:4:35",
            "`pretrain.optimizer.params.lr`",
            "expected a finite number, got `.nan`",
        ],
    );
    let file = experiment(&scratch, "inf", "pretrain:\n  clip_grad_norm: -.inf\n");
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["inf.yaml:4:3", "`pretrain.clip_grad_norm`", "got `-.inf`"],
    );
    let base = base();
    run_refused(
        &scratch,
        base.to_str().unwrap(),
        &["pretrain.optimizer.params.lr=.NaN"],
        &[],
        &["--set pretrain.optimizer.params.lr=.NaN", "expected a finite number"],
    );
}

#[test]
fn zero_negative_and_absurd_sizes_are_refused_before_the_run_directory() {
    let scratch = Scratch::new();
    let base = base();
    for (set, key, what) in [
        (
            "pretrain.optimizer.params.lr=0",
            "pretrain.optimizer.params.lr",
            "a positive finite number",
        ),
        (
            "pretrain.optimizer.params.lr=-0.5",
            "pretrain.optimizer.params.lr",
            "a positive finite number",
        ),
        (
            "pretrain.optimizer={name: adam, params: {lr: 0.0}}",
            "pretrain.optimizer.params.lr",
            "a positive finite number",
        ),
        ("pretrain.batch_size=0", "pretrain.batch_size", "a positive integer"),
        ("pretrain.prefetch=0", "pretrain.prefetch", "a positive integer"),
        ("pretrain.accumulate=0", "pretrain.accumulate", "a positive integer"),
        ("pretrain.workers=1000", "pretrain.workers", "an integer in 0..=256"),
        (
            "evaluations.0.workers=257",
            "evaluations.0.workers",
            "an integer in 0..=256",
        ),
        (
            "pretrain.dataset.params.count=0",
            "pretrain.dataset.params.count",
            "a positive integer",
        ),
        (
            "pretrain.dataset.params.resolution=0",
            "pretrain.dataset.params.resolution",
            "an integer in 8..=512",
        ),
        (
            "evaluations.0.dataset.params.count=0",
            "evaluations.0.dataset.params.count",
            "a positive integer",
        ),
        (
            "pretrain.dataset={name: synthface, params: {resolution: 0}}",
            "pretrain.dataset.params.resolution",
            "an integer in 32..=1024",
        ),
        (
            "pretrain.dataset={name: synthface, params: {samples_per_identity: 0}}",
            "pretrain.dataset.params.samples_per_identity",
            "a positive integer",
        ),
    ] {
        let place = format!("--set {set}");
        let key = format!("`{key}`");
        run_refused(&scratch, base.to_str().unwrap(), &[set], &[], &[&place, &key, what]);
    }
    // In a file: the file, line and column.
    let file = experiment(&scratch, "zero_batch", "pretrain:\n  batch_size: 0\n");
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["zero_batch.yaml:4:3", "`pretrain.batch_size`"],
    );
}

#[test]
fn a_batch_larger_than_the_dataset_is_refused_before_the_run_directory() {
    let scratch = Scratch::new();
    let base = base();
    // Allocating this batch used to abort the process.
    let stderr = run_refused(
        &scratch,
        base.to_str().unwrap(),
        &["pretrain.batch_size=100000000"],
        &[],
        &[
            "--set pretrain.batch_size=100000000",
            "`pretrain.batch_size`",
            "`example_shapes` has 64 samples",
        ],
    );
    assert!(stderr.contains("larger than the dataset"), "{stderr}");
    let file = experiment(&scratch, "big_batch", "pretrain:\n  batch_size: 65\n");
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["big_batch.yaml:4:3", "`pretrain.batch_size`"],
    );
}

#[test]
fn per_identity_batches_of_a_dataset_without_identities_are_refused_before_the_run_directory() {
    let scratch = Scratch::new();
    let base = base();
    run_refused(
        &scratch,
        base.to_str().unwrap(),
        &["pretrain.per_identity=4"],
        &[],
        &[
            "--set pretrain.per_identity=4",
            "`pretrain.per_identity`",
            "dataset `example_shapes` does not give one for sample 0",
        ],
    );
    let file = experiment(&scratch, "zero_per_identity", "pretrain:\n  per_identity: 0\n");
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["zero_per_identity.yaml:4:3", "`pretrain.per_identity`", "nonzero"],
    );
}

#[test]
fn a_duplicate_key_is_reported_where_it_is_repeated() {
    let scratch = Scratch::new();
    let file = experiment(
        &scratch,
        "dup",
        "seed: 1\npretrain:\n  steps: 3\n  batch_size: 4\n  steps: 5\n",
    );
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &[
            "dup.yaml:7:3",
            "duplicate key `pretrain.steps` (first at line 5, column 3)",
        ],
    );
    let file = experiment(&scratch, "dup_top", "seed: 1\ndevice: cpu\nseed: 2\n");
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["dup_top.yaml:5:1", "duplicate key `seed` (first at line 3, column 1)"],
    );
}

#[test]
fn files_that_are_not_experiment_files_are_refused_without_reading_them() {
    let scratch = Scratch::new();
    // A FIFO used to block forever, as the experiment and through `extends`.
    let fifo = scratch.path("fifo.yaml");
    mkfifo(&fifo);
    run_refused(
        &scratch,
        fifo.to_str().unwrap(),
        &[],
        &[],
        &["fifo.yaml", "it is a FIFO"],
    );
    let file = scratch.file("extends_fifo.yaml", "extends: fifo.yaml\nname: x\n");
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["fifo.yaml", "it is a FIFO"],
    );
    // /dev/zero used to be read (4.5 GB) before failing.
    let file = scratch.file("extends_zero.yaml", "extends: /dev/zero\nname: x\n");
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["/dev/zero", "it is a character device"],
    );
    // A directory.
    std::fs::create_dir_all(scratch.path("dir.yaml")).unwrap();
    let file = scratch.file("extends_dir.yaml", "extends: [dir.yaml]\nname: x\n");
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["dir.yaml", "it is a directory"],
    );
    // An oversized file: a comment just over the limit.
    let mut big = format!("extends: {}\nname: big\n#", base().display()).into_bytes();
    big.resize(16 * 1024 * 1024 + 1, b'x');
    let file = scratch.file("big.yaml", big);
    run_refused(
        &scratch,
        file.to_str().unwrap(),
        &[],
        &[],
        &["big.yaml", "more than the 16 MiB an experiment file may have"],
    );
}

#[test]
fn bad_set_values_name_the_argument() {
    let scratch = Scratch::new();
    let base = base();
    for (set, names) in [
        ("pretrain.steps=[1, 2", &["--set pretrain.steps=[1, 2", "not YAML"][..]),
        ("pretrain.steps", &["--set pretrain.steps", "expected key.path=value"]),
        ("=3", &["--set =3", "not a dotted key path"]),
        (
            "pretrain..steps=3",
            &["--set pretrain..steps=3", "not a dotted key path"],
        ),
        ("pretrain.steps=-3", &["--set pretrain.steps=-3", "`pretrain.steps`"]),
        ("pretrain.stpes=3", &["--set pretrain.stpes=3", "did you mean `steps`?"]),
        (
            "evaluations.9.workers=1",
            &["--set evaluations.9.workers=1", "out of range"],
        ),
        (
            "evaluations.x.workers=1",
            &["--set evaluations.x.workers=1", "must be a number"],
        ),
    ] {
        run_refused(&scratch, base.to_str().unwrap(), &[set], &[], names);
    }
}

#[test]
fn bad_environment_values_name_the_variable() {
    let scratch = Scratch::new();
    let base = base();
    for (var, value, key) in [
        ("VISAGE_PRETRAIN__STEPS", "many", "`pretrain.steps`"),
        ("VISAGE_PRETRAIN__BATCH_SIZE", "0", "`pretrain.batch_size`"),
        ("VISAGE_PRETRAIN__WORKERS", "100000", "`pretrain.workers`"),
        ("VISAGE_SEED", "-4", "`seed`"),
        ("VISAGE_PRETRAINN", "1", "`pretrainn`"),
    ] {
        let place = format!("environment variable {var}");
        run_refused(&scratch, base.to_str().unwrap(), &[], &[(var, value)], &[&place, key]);
    }
}
