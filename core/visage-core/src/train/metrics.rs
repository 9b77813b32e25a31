//! `metrics.jsonl`: one JSON line per training step with its loss terms,
//! learning-rate factor and the other values the step recorded
//! (momentum, temperature, ...). On resume, lines past the checkpoint
//! (written by the killed process after its last checkpoint) are dropped,
//! so that the file of a resumed run equals that of an uninterrupted one.
//! The same scalars go to TensorBoard (`<dir>/tensorboard/`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::tensorboard::EventWriter;
use crate::fs::io_error;
use crate::Result;

/// An open metrics file, and the run's TensorBoard event file.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    events: EventWriter,
}

impl MetricsLog {
    /// Opens `<dir>/metrics.jsonl`, keeping the lines of steps before
    /// `resume_step` only.
    pub fn open(dir: &Path, resume_step: u64) -> Result<Self> {
        let path = dir.join("metrics.jsonl");
        let kept: Vec<String> = match File::open(&path) {
            Ok(f) => BufReader::new(f)
                .lines()
                .map_while(std::result::Result::ok)
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
        crate::fs::write_atomic(&path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let events = EventWriter::create(dir, resume_step)?;
        Ok(MetricsLog { path, file, events })
    }

    /// Appends a named measurement (e.g. `knn/expression`) at `step`.
    pub fn measurement(&mut self, step: u64, name: &str, value: f64) -> Result<()> {
        let line = serde_json::json!({ "step": step, name: value });
        writeln!(self.file, "{line}").map_err(io_error(&self.path))?;
        self.events.scalars(step, [(name, value)])
    }

    /// Appends one step: its loss terms (TensorBoard tags `loss/<name>`),
    /// learning-rate factor, and other `values` (tags as named).
    pub fn step(
        &mut self,
        step: u64,
        losses: &BTreeMap<String, f64>,
        values: &BTreeMap<String, f64>,
        lr_factor: f64,
    ) -> Result<()> {
        let mut line = serde_json::json!({ "step": step, "losses": losses, "lr_factor": lr_factor });
        if !values.is_empty() {
            line["values"] = serde_json::json!(values);
        }
        writeln!(self.file, "{line}").map_err(io_error(&self.path))?;
        let tags: Vec<(String, f64)> = losses.iter().map(|(n, v)| (format!("loss/{n}"), *v)).collect();
        self.events.scalars(
            step,
            tags.iter()
                .map(|(t, v)| (t.as_str(), *v))
                .chain([("lr_factor", lr_factor)])
                .chain(values.iter().map(|(n, v)| (n.as_str(), *v))),
        )
    }
}
