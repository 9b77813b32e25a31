//! An experiment file run through the workspace's release `runner`, as the
//! task plugins' experiment tests run it, and its results read back.
//!
//! The runner and the plugins it loads must be built in `target/release`
//! first (`cargo build --release -p visage-runner -p visage-plugin-synthface
//! -p visage-plugin-example -p <the plugin under test>`, or `./runner`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release runner: `$CARGO_TARGET_DIR/release/runner`, else
/// `target/release/runner` of the repository (built or not).
pub fn runner() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    target.join("release/runner")
}

/// An experiment file (relative to the repository root) with `--set`
/// overrides, run on the CPU by the release runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experiment {
    file: String,
    sets: Vec<String>,
    one_thread: bool,
}

impl Experiment {
    /// `file` as it is, on libtorch's default threads.
    pub fn new(file: &str) -> Self {
        Experiment {
            file: file.into(),
            sets: vec![],
            one_thread: false,
        }
    }

    /// Adds `--set KEY=VALUE` overrides, applied in order after
    /// `device=cpu`.
    pub fn sets(mut self, sets: &[&str]) -> Self {
        self.sets.extend(sets.iter().map(|s| s.to_string()));
        self
    }

    /// Runs libtorch on one thread (`OMP_NUM_THREADS=1`): on a loaded
    /// 2-core machine its default thread pool, contending with other
    /// processes, is many times slower.
    pub fn one_thread(mut self) -> Self {
        self.one_thread = true;
        self
    }

    /// The runner's command line from the repository root, writing into
    /// `out`, logging only errors, without the caller's `VISAGE_*`
    /// variables.
    pub fn command(&self, out: &Path) -> Command {
        let mut command = Command::new(runner());
        command
            .current_dir(repo_root())
            .arg(&self.file)
            .args(["--set", "device=cpu", "--out"])
            .arg(out)
            .env("RUST_LOG", "error");
        if self.one_thread {
            command.env("OMP_NUM_THREADS", "1");
        }
        for set in &self.sets {
            command.args(["--set", set]);
        }
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VISAGE_") {
                command.env_remove(key);
            }
        }
        command
    }

    /// Runs the experiment into `out`, whatever its outcome.
    ///
    /// # Panics
    /// When the runner is not built (saying how to build it) or does not
    /// start.
    pub fn run(&self, out: &Path) -> Output {
        let runner = runner();
        assert!(
            runner.exists(),
            "{} is missing: build it and the plugins first (cargo build --release -p visage-runner \
             -p visage-plugin-synthface -p visage-plugin-example -p <this plugin>)",
            runner.display()
        );
        match self.command(out).output() {
            Ok(output) => output,
            Err(e) => panic!("the runner does not start: {e}"),
        }
    }

    /// Runs the experiment into a temporary folder and returns its
    /// `results.json`.
    ///
    /// # Panics
    /// When the run fails (with its output) or leaves no readable results.
    pub fn results(&self) -> Value {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary folder: {e}"));
        let out = dir.path().join("run");
        let output = self.run(&out);
        assert!(
            output.status.success(),
            "the runner failed on {}:\nstdout:\n{}\nstderr:\n{}",
            self.file,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        read_json(&out.join("results.json"))
    }
}

/// The JSON in `path`.
///
/// # Panics
/// When it cannot be read or parsed, naming the file.
pub fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The pre-trained and the random-init value of `metric` in evaluation
/// `i` of `results`.
///
/// # Panics
/// When either is missing.
pub fn pair(results: &Value, i: usize, metric: &str) -> (f64, f64) {
    let evaluation = &results["evaluations"][i];
    let value = |part: &str| {
        evaluation[part][metric]
            .as_f64()
            .unwrap_or_else(|| panic!("evaluation {i} has no {part}.{metric}: {evaluation}"))
    };
    (value("metrics"), value("random_init"))
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Higher is better (accuracy, F1).
    Higher,
    /// Lower is better (errors).
    Lower,
}

/// The protocols of a task experiment's two evaluations, in order.
pub const PROTOCOLS: [&str; 2] = ["linear_probe", "fine_tune"];

/// Asserts that `results` holds exactly two evaluations of `task`, under
/// `linear_probe` then `fine_tune`, and that in evaluation `i` the
/// pre-trained backbone's `metric` beats its random-init twin's by more
/// than `margins[i]`, in the direction `better`.
///
/// # Panics
/// When any of that does not hold, with the values.
pub fn assert_pretraining_wins(results: &Value, task: &str, metric: &str, better: Better, margins: [f64; 2]) {
    assert_beats(results, task, metric, better, margins, ("random_init", "random init"));
}

/// Asserts that `results` holds exactly two evaluations of `task`, under
/// `linear_probe` then `fine_tune`, each with a `constant` (the task's best
/// prediction from the train labels alone), and that in evaluation `i` the
/// pre-trained backbone's `metric` beats the constant's by more than
/// `margins[i]`, in the direction `better`: the head learns from the
/// features, whatever pre-training gave them.
///
/// # Panics
/// When any of that does not hold, with the values.
pub fn assert_beats_constant(results: &Value, task: &str, metric: &str, better: Better, margins: [f64; 2]) {
    assert_beats(results, task, metric, better, margins, ("constant", "the constant"));
}

/// The check both assertions share: two evaluations of `task` under
/// [`PROTOCOLS`], and in evaluation `i` the pre-trained `metric` beating
/// the `reference` part's (`(key, name in messages)`) by more than
/// `margins[i]`.
fn assert_beats(
    results: &Value,
    task: &str,
    metric: &str,
    better: Better,
    margins: [f64; 2],
    (reference, name): (&str, &str),
) {
    let evaluations = results["evaluations"].as_array().map_or(0, Vec::len);
    assert_eq!(evaluations, 2, "two evaluations expected: {results}");
    for (i, protocol) in PROTOCOLS.into_iter().enumerate() {
        let evaluation = &results["evaluations"][i];
        assert_eq!(evaluation["task"], task, "evaluation {i}");
        assert_eq!(evaluation["protocol"], protocol, "evaluation {i}");
        let value = |part: &str| {
            evaluation[part][metric]
                .as_f64()
                .unwrap_or_else(|| panic!("evaluation {i} has no {part}.{metric}: {evaluation}"))
        };
        let (pretrained, other) = (value("metrics"), value(reference));
        let margin = margins[i];
        let wins = match better {
            Better::Higher => pretrained > other + margin,
            Better::Lower => pretrained < other - margin,
        };
        assert!(
            wins,
            "{task} {protocol}: {metric} {pretrained:.2} should beat {name} {other:.2} by {margin} ({better:?} is better)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(probe: (f64, f64), tune: (f64, f64)) -> Value {
        let evaluation = |protocol: &str, (pretrained, random): (f64, f64)| {
            serde_json::json!({"task": "t", "protocol": protocol,
                "metrics": {"m": pretrained}, "random_init": {"m": random}})
        };
        serde_json::json!({"evaluations": [evaluation("linear_probe", probe), evaluation("fine_tune", tune)]})
    }

    #[test]
    fn the_constant_is_beaten_by_more_than_the_margin_or_the_assertion_fails() {
        let mut r = results((5.0, 9.0), (3.0, 9.0));
        for i in 0..2 {
            r["evaluations"][i]["constant"] = serde_json::json!({"m": 8.0});
        }
        assert_beats_constant(&r, "t", "m", Better::Lower, [2.5, 4.5]);
        let caught = std::panic::catch_unwind(|| assert_beats_constant(&r, "t", "m", Better::Lower, [2.5, 5.0]));
        let message = caught.expect_err("a win by exactly the margin must fail");
        let message = message.downcast_ref::<String>().expect("a formatted panic");
        assert!(
            message.contains("t fine_tune: m 3.00 should beat the constant 8.00 by 5"),
            "{message}"
        );
    }

    #[test]
    #[should_panic(expected = "evaluation 0 has no constant.m")]
    fn a_missing_constant_fails() {
        assert_beats_constant(&results((5.0, 9.0), (3.0, 9.0)), "t", "m", Better::Lower, [0.0, 0.0]);
    }

    #[test]
    fn pair_reads_both_twins_of_an_evaluation() {
        assert_eq!(pair(&results((1.0, 2.0), (3.0, 4.5)), 1, "m"), (3.0, 4.5));
    }

    #[test]
    fn a_win_is_by_more_than_the_margin_in_the_better_direction() {
        // 10 vs 7: higher wins by 3 > 2.5; 1 vs 2: lower wins by 1 > 0.5.
        assert_pretraining_wins(&results((10.0, 7.0), (1.0, 2.0)), "t", "m", Better::Higher, [2.5, -2.0]);
        assert_pretraining_wins(&results((5.0, 8.0), (1.0, 2.0)), "t", "m", Better::Lower, [2.5, 0.5]);
    }

    #[test]
    #[should_panic(expected = "t fine_tune: m 1.00 should beat random init 2.00 by 1")]
    fn a_win_by_exactly_the_margin_fails() {
        assert_pretraining_wins(&results((5.0, 8.0), (1.0, 2.0)), "t", "m", Better::Lower, [2.5, 1.0]);
    }

    #[test]
    #[should_panic(expected = "evaluation 0")]
    fn another_task_fails() {
        assert_pretraining_wins(&results((10.0, 7.0), (3.0, 2.0)), "u", "m", Better::Higher, [0.0, 0.0]);
    }

    #[test]
    fn the_command_runs_the_file_on_the_cpu_with_the_overrides_in_order() {
        let experiment = Experiment::new("experiments/x.yaml").sets(&["a=1", "b=2"]).one_thread();
        let command = experiment.command(Path::new("/tmp/out"));
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "experiments/x.yaml",
                "--set",
                "device=cpu",
                "--out",
                "/tmp/out",
                "--set",
                "a=1",
                "--set",
                "b=2"
            ]
        );
        let envs: Vec<_> = command.get_envs().filter(|(k, _)| *k == "OMP_NUM_THREADS").collect();
        assert_eq!(envs.len(), 1);
    }
}
