//! `metrics.jsonl`: one JSON line per training step with its loss terms and
//! learning-rate factor. On resume, lines past the checkpoint (written by
//! the killed process after its last checkpoint) are dropped, so that the
//! file of a resumed run equals that of an uninterrupted one. The same
//! scalars go to TensorBoard (`<run>/tensorboard/`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::tensorboard::EventWriter;

/// An open metrics file, and the run's TensorBoard event file.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    events: EventWriter,
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
        let events = EventWriter::create(run_dir, resume_step)?;
        Ok(MetricsLog { path, file, events })
    }

    /// Appends a named measurement (e.g. `knn/expression`) at `step`.
    pub fn measurement(&mut self, step: u64, name: &str, value: f64) -> anyhow::Result<()> {
        let line = serde_json::json!({ "step": step, name: value });
        writeln!(self.file, "{line}").with_context(|| format!("{}: cannot write", self.path.display()))?;
        self.events.scalars(step, [(name, value)])
    }

    /// Appends one step.
    pub fn step(&mut self, step: u64, losses: &BTreeMap<String, f64>, lr_factor: f64) -> anyhow::Result<()> {
        let line = serde_json::json!({ "step": step, "losses": losses, "lr_factor": lr_factor });
        writeln!(self.file, "{line}").with_context(|| format!("{}: cannot write", self.path.display()))?;
        let scalars = losses.iter().map(|(name, v)| (name.as_str(), *v));
        let tags: Vec<(String, f64)> = scalars.map(|(n, v)| (format!("loss/{n}"), v)).collect();
        self.events.scalars(
            step,
            tags.iter()
                .map(|(t, v)| (t.as_str(), *v))
                .chain([("lr_factor", lr_factor)]),
        )
    }
}
