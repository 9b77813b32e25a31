//! `experiments/tasks/alignment.yaml` through the release runner, as it
//! is: the pre-trained backbone must beat its random-init twin on
//! `nme_inter_ocular` in both protocols.
//!
//! Ignored by default: the experiment takes 4.7 CPU-minutes (11 minutes of
//! wall time on the shared 2-core machine), far above the 90 s a default
//! test may take; a scaled-down run (`--set` fewer steps or epochs) was not
//! tried, and the fine-tuning margin is thin already. Run it with
//! `cargo test --release -p visage-plugin-alignment --test experiment -- --ignored`
//! after `cargo build --release -p visage-runner -p visage-plugin-alignment
//! -p visage-plugin-synthface -p visage-plugin-example` (the runner loads
//! the plugins beside it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Margins in NME points (percent of the inter-ocular distance), per
/// protocol. Measured (seed 0): linear probe 67.43 vs 74.42 (7.0 better),
/// fine-tuning 75.05 vs 75.76 (0.7 better); the run is deterministic on one
/// machine, so the margins are half the measured gaps, enough to absorb
/// cross-machine float differences and still mean "better".
const MARGINS: [f64; 2] = [3.5, 0.35];

#[test]
#[ignore = "4.7 CPU-minutes; run with --ignored (see the module docs)"]
fn pretraining_beats_random_init_in_both_protocols() {
    let root = root();
    let runner = root.join("target/release/runner");
    assert!(runner.exists(), "build the release runner first: {}", runner.display());
    let out = std::env::temp_dir().join(format!("visage-alignment-experiment-{}", std::process::id()));
    let mut command = Command::new(&runner);
    command
        .current_dir(&root)
        .args(["experiments/tasks/alignment.yaml", "--set", "device=cpu", "--out"])
        .arg(&out)
        .env("RUST_LOG", "error");
    for (key, _) in std::env::vars() {
        if key.starts_with("VISAGE_") {
            command.env_remove(key);
        }
    }
    let status = command.output().expect("runner starts");
    assert!(
        status.status.success(),
        "runner failed:\n{}\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&out).ok();
    for (i, (protocol, margin)) in ["linear_probe", "fine_tune"].iter().zip(MARGINS).enumerate() {
        let evaluation = &results["evaluations"][i];
        assert_eq!(evaluation["protocol"], *protocol);
        let pretrained = evaluation["metrics"]["nme_inter_ocular"].as_f64().unwrap();
        let random = evaluation["random_init"]["nme_inter_ocular"].as_f64().unwrap();
        // NME is lower-better.
        assert!(
            pretrained < random - margin,
            "{protocol}: pre-trained NME {pretrained} should beat random init {random} by {margin}"
        );
    }
}
