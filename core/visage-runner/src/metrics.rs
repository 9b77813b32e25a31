//! `metrics.jsonl`: one JSON line per training step with its loss terms and
//! learning-rate factor. On resume, lines past the checkpoint (written by
//! the killed process after its last checkpoint) are dropped, so that the
//! file of a resumed run equals that of an uninterrupted one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// An open metrics file.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `<run_dir>/metrics.jsonl`, keeping the lines of steps before
    /// `resume_step` only.
    pub fn open(run_dir: &Path, resume_step: u64) -> anyhow::Result<Self> {
        let path = run_dir.join("metrics.jsonl");
        let kept: Vec<String> = match File::open(&path) {
            Ok(f) => BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|s| s < resume_step)
                })
                .collect(),
            Err(_) => vec![],
        };
        let text: String = kept.iter().map(|l| format!("{l}\n")).collect();
        visage_core::fs::write_atomic(&path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("{}", path.display()))?;
        Ok(MetricsLog { path, file })
    }

    /// Appends one step.
    pub fn step(&mut self, step: u64, losses: &BTreeMap<String, f64>, lr_factor: f64) -> anyhow::Result<()> {
        let line = serde_json::json!({ "step": step, "losses": losses, "lr_factor": lr_factor });
        writeln!(self.file, "{line}").with_context(|| format!("{}: cannot write", self.path.display()))
    }
}
