//! Run directories and checkpoints: another run's directory as `--out`,
//! checkpoint state that disagrees with the run, a `latest` pointer that
//! escapes or names nothing.

use std::path::{Path, PathBuf};

use crate::common::root;
use crate::harness::{refused, refused_changing, Scratch, BASE};

fn args<'a>(scratch: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        BASE,
        "--set",
        "device=cpu",
        "--set",
        "pretrain.checkpoint_every=1",
        "--set",
        scratch,
    ];
    args.extend_from_slice(extra);
    args
}

fn resume_changes(run: &Path) -> Vec<PathBuf> {
    vec![run.join("log.jsonl"), run.join("results.json")]
}

#[test]
fn another_runs_directory_is_never_written_into() {
    let scratch = Scratch::new();
    let run = scratch.finished_run("done", &["pretrain.checkpoint_every=1"]);
    let output_dir = scratch.output_dir();
    let stderr = refused(
        &scratch,
        &args(&output_dir, &["--out", run.to_str().unwrap()]),
        &[],
        &[run.to_str().unwrap(), "exists and is not empty", "--resume"],
    );
    assert!(!stderr.is_empty());
    // A file where the directory should be.
    let file = scratch.file("a_file", "x");
    refused(
        &scratch,
        &args(&output_dir, &["--out", file.to_str().unwrap()]),
        &[],
        &["a_file", "not a directory"],
    );
}

#[test]
fn checkpoint_state_that_disagrees_with_the_run_is_refused() {
    let scratch = Scratch::new();
    let run = scratch.finished_run("done", &["pretrain.checkpoint_every=1"]);
    let output_dir = scratch.output_dir();
    let state = run.join("checkpoints/step-00000002/state.json");
    let original = std::fs::read_to_string(&state).unwrap();
    let resume = |names: &[&str]| {
        refused_changing(
            &scratch,
            &args(&output_dir, &["--resume", run.to_str().unwrap()]),
            &[],
            names,
            &resume_changes(&run),
        )
    };
    // A step beyond the run's total.
    std::fs::write(&state, original.replace("\"step\": 2", "\"step\": 7")).unwrap();
    resume(&[
        "step-00000002/state.json",
        "`progress.step` is 7, beyond the run's 2 steps",
    ]);
    // A missing key.
    let mut value: serde_json::Value = serde_json::from_str(&original).unwrap();
    value.as_object_mut().unwrap().remove("progress");
    std::fs::write(&state, value.to_string()).unwrap();
    resume(&["state.json", "missing key `progress`"]);
    // Not JSON at all.
    std::fs::write(&state, "{\"progress\": ").unwrap();
    resume(&["state.json", "not a checkpoint state"]);
    std::fs::write(&state, &original).unwrap();
    // `latest` escaping the checkpoints folder, or naming no checkpoint.
    let latest = run.join("checkpoints/latest");
    std::fs::write(&latest, "../../../etc").unwrap();
    resume(&["checkpoints/latest", "expected the name of a `step-N` folder"]);
    std::fs::write(&latest, "step-00000009").unwrap();
    resume(&[
        "checkpoints/latest",
        "`step-00000009`, which is not a complete checkpoint",
    ]);
    // A truncated model file.
    std::fs::write(&latest, "step-00000002").unwrap();
    let model = run.join("checkpoints/step-00000002/model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    resume(&["step-00000002/model.safetensors", "cannot restore the model"]);
    assert!(root().join("tests/fixtures/config/base.yaml").is_file());
}
