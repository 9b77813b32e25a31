//! A progress bar on a terminal, periodic log lines otherwise.

use std::collections::BTreeMap;
use std::io::IsTerminal;

/// Progress of one training run.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    total: u64,
    log_every: u64,
    started: std::time::Instant,
}

impl Progress {
    /// A bar labelled `label` from `done` to `total` steps; without a
    /// terminal, an info line every `log_every` steps.
    pub fn new(label: &str, total: u64, log_every: u64, done: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_position(done);
            let template = format!("{label} {{bar:30}} {{pos}}/{{len}} [{{elapsed}} < {{eta}}] {{per_sec}} {{msg}}");
            bar.set_style(
                indicatif::ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            total,
            log_every: log_every.max(1),
            started: std::time::Instant::now(),
        }
    }

    /// Step `step` (0-based) finished with `losses`.
    pub fn step(&self, step: u64, losses: &BTreeMap<String, f64>) {
        let text: Vec<String> = losses.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
        match &self.bar {
            Some(bar) => {
                bar.set_message(text.join(" "));
                bar.inc(1);
            }
            None if (step + 1) % self.log_every == 0 || step + 1 == self.total => {
                let rate = (step + 1) as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                tracing::info!(
                    step = step + 1,
                    total = self.total,
                    steps_per_s = format!("{rate:.2}"),
                    "{} {}",
                    self.label,
                    text.join(" ")
                );
            }
            None => {}
        }
        tracing::debug!(step, ?losses, "step");
    }

    /// Closes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
