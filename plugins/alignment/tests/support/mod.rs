//! Runs an experiment file with the workspace's release `runner` and
//! reads its results (as `plugins/au/tests/support/experiment.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `runner <file> --out <tmp> [--set ...]` from the repository root
/// and returns its `results.json`. The runner and the plugins it loads
/// (synthface, example and this one) must be built in `target/release`
/// (`cargo build --release -p visage-runner -p visage-plugin-synthface
/// -p visage-plugin-example -p <this plugin>`, or `./runner`). libtorch
/// runs one thread: on the shared 2-core machine its default thread
/// pool, contending with other processes, is many times slower.
pub fn run_experiment(file: &str, sets: &[&str]) -> serde_json::Value {
    let runner = root().join("target/release/runner");
    assert!(
        runner.exists(),
        "{} is missing: build it first (cargo build --release -p visage-runner)",
        runner.display()
    );
    let out = std::env::temp_dir().join(format!("visage-{}-{}", file.replace('/', "_"), std::process::id()));
    let mut command = Command::new(&runner);
    command
        .current_dir(root())
        .args([file, "--set", "device=cpu", "--out", out.to_str().unwrap()])
        .env("RUST_LOG", "error")
        .env("OMP_NUM_THREADS", "1");
    for set in sets {
        command.args(["--set", set]);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("VISAGE_") {
            command.env_remove(key);
        }
    }
    let output = command.output().expect("the runner starts");
    assert!(
        output.status.success(),
        "runner failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let results = out.join("results.json");
    let text = std::fs::read(&results).unwrap_or_else(|e| panic!("{}: {e}", results.display()));
    let _ = std::fs::remove_dir_all(&out);
    serde_json::from_slice(&text).unwrap()
}

/// The pre-trained and random-init values of `metric` in evaluation `i`.
pub fn pair(results: &serde_json::Value, i: usize, metric: &str) -> (f64, f64) {
    let evaluation = &results["evaluations"][i];
    let value = |part: &str| {
        evaluation[part][metric]
            .as_f64()
            .unwrap_or_else(|| panic!("evaluation {i} has no {part}.{metric}: {evaluation}"))
    };
    (value("metrics"), value("random_init"))
}
