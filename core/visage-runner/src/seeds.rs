//! `runner EXPERIMENT --seeds 0-3`: the experiment once per seed, each in
//! its own run directory `<out>/seed-<s>`, then every metric's mean,
//! standard deviation and range over the seeds, with the lead over random
//! init paired seed by seed, in `<out>/seeds.json` and on the terminal.
//!
//! A single seed's result is one draw: on synthface a method's lead over
//! random init moves by ten points between seeds. The mean and the spread
//! of the paired lead are what a claim should rest on.
//!
//! The same command with the same `--out` continues a sweep: seeds whose
//! `results.json` says `completed` are read back, unfinished ones resume
//! from their newest checkpoint, missing ones start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_core::task::Protocol;

use crate::results::{Results, Status};

/// The seeds of `spec`: comma-separated seeds and inclusive ranges, e.g.
/// `0-3`, `0,2,5` or `0-3,10`; each seed once, in the order given.
pub fn parse(spec: &str) -> Result<Vec<u64>, String> {
    let mut seeds = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{s}` is not a seed (a non-negative integer)"))
        };
        let range = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("the range `{part}` is empty (write the smaller seed first)"));
                }
                a..=b
            }
            None => {
                let s = number(part)?;
                s..=s
            }
        };
        for seed in range {
            if seeds.contains(&seed) {
                return Err(format!("seed {seed} is listed twice"));
            }
            seeds.push(seed);
        }
    }
    Ok(seeds)
}

/// The `--set` that gives a seed's run its seed, after the user's own.
pub fn seed_set(seed: u64) -> String {
    format!("seed={seed}")
}

/// A seed's run directory under the sweep's folder.
pub fn run_dir(out: &Path, seed: u64) -> PathBuf {
    out.join(format!("seed-{seed}"))
}

/// A seed's finished results, when its run directory holds them.
pub fn completed(dir: &Path) -> Option<Results> {
    let bytes = std::fs::read(dir.join("results.json")).ok()?;
    let results: Results = serde_json::from_slice(&bytes).ok()?;
    (results.status == Status::Completed).then_some(results)
}

/// Mean, sample standard deviation and range of one quantity over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation (n - 1); 0 for one seed.
    pub std: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The values, seed by seed.
    pub values: Vec<f64>,
}

impl Stats {
    /// The statistics of `values` (at least one).
    pub fn of(values: Vec<f64>) -> Stats {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Stats {
            mean,
            std: var.sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            values,
        }
    }
}

/// One metric of one evaluation over the seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The pre-trained backbone.
    pub pretrained: Stats,
    /// The random-init twin, when the evaluation has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_init: Option<Stats>,
    /// Pre-trained minus random init, seed by seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<Stats>,
    /// The supervised twin, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervised: Option<Stats>,
    /// The best constant, for tasks that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<Stats>,
}

/// One evaluation over the seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvaluationSummary {
    /// Task name.
    pub task: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Dataset name.
    pub dataset: String,
    /// Each metric the pre-trained backbone reported on every seed.
    pub metrics: BTreeMap<String, MetricSummary>,
}

/// `seeds.json`: the sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// The seeds whose runs completed, in order.
    pub seeds: Vec<u64>,
    /// Their run directories.
    pub runs: Vec<PathBuf>,
    /// The seeds whose runs failed, with their errors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<u64, String>,
    /// One entry per evaluation.
    pub evaluations: Vec<EvaluationSummary>,
}

/// The statistics of the completed runs `done` (seed, run directory,
/// results), all of one experiment, so that evaluation `i` is the same on
/// every seed.
pub fn summarise(experiment: &str, done: &[(u64, PathBuf, Results)], failed: BTreeMap<u64, String>) -> Summary {
    let count = done.iter().map(|(_, _, r)| r.evaluations.len()).min().unwrap_or(0);
    let evaluations = (0..count)
        .map(|i| {
            let runs: Vec<_> = done.iter().map(|(_, _, r)| &r.evaluations[i]).collect();
            let first = runs[0];
            let every = |pick: &dyn Fn(&crate::results::EvaluationResult) -> Option<f64>| -> Option<Stats> {
                runs.iter()
                    .map(|e| pick(e))
                    .collect::<Option<Vec<f64>>>()
                    .map(Stats::of)
            };
            let metrics = first
                .metrics
                .keys()
                .filter_map(|name| {
                    let twin = |t: &Option<BTreeMap<String, f64>>| t.as_ref().and_then(|m| m.get(name).copied());
                    let pretrained = every(&|e| e.metrics.get(name).copied())?;
                    let summary = MetricSummary {
                        pretrained,
                        random_init: every(&|e| twin(&e.random_init)),
                        lead: every(&|e| Some(e.metrics.get(name)? - twin(&e.random_init)?)),
                        supervised: every(&|e| twin(&e.supervised)),
                        constant: every(&|e| twin(&e.constant)),
                    };
                    Some((name.clone(), summary))
                })
                .collect();
            EvaluationSummary {
                task: first.task.clone(),
                protocol: first.protocol,
                dataset: first.dataset.clone(),
                metrics,
            }
        })
        .collect();
    Summary {
        experiment: experiment.to_string(),
        seeds: done.iter().map(|(s, _, _)| *s).collect(),
        runs: done.iter().map(|(_, d, _)| d.clone()).collect(),
        failed,
        evaluations,
    }
}

/// The summary as the table the sweep ends with.
pub fn render(summary: &Summary, out: &Path) -> String {
    let seeds: Vec<String> = summary.seeds.iter().map(u64::to_string).collect();
    let mut text = format!(
        "\n{} over {} seeds ({}): mean ± std [min, max]\n",
        summary.experiment,
        summary.seeds.len(),
        seeds.join(", ")
    );
    let cell = |s: &Stats| format!("{:.2} ± {:.2} [{:.2}, {:.2}]", s.mean, s.std, s.min, s.max);
    for e in &summary.evaluations {
        text += &format!("  {} ({}, {}):\n", e.task, e.protocol.as_str(), e.dataset);
        for (name, m) in &e.metrics {
            text += &format!("    {name}\n      pre-trained  {}\n", cell(&m.pretrained));
            let rows = [
                ("random init", &m.random_init),
                ("lead", &m.lead),
                ("supervised", &m.supervised),
                ("constant", &m.constant),
            ];
            for (label, stats) in rows {
                if let Some(s) = stats {
                    text += &format!("      {label:<12} {}\n", cell(s));
                }
            }
        }
    }
    for (seed, error) in &summary.failed {
        text += &format!("  seed {seed} FAILED: {error}\n");
    }
    text += &format!("  seeds.json and the runs: {}\n", out.display());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::EvaluationResult;

    #[test]
    fn seeds_are_lists_and_inclusive_ranges() {
        assert_eq!(parse("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse("5, 0-1,9").unwrap(), vec![5, 0, 1, 9]);
        assert_eq!(parse("7").unwrap(), vec![7]);
        assert!(parse("3-1").unwrap_err().contains("empty"));
        assert!(parse("0-2,1").unwrap_err().contains("seed 1 is listed twice"));
        assert!(parse("a").unwrap_err().contains("`a` is not a seed"));
        assert!(parse("").unwrap_err().contains("is not a seed"));
        assert!(parse("-1").unwrap_err().contains("is not a seed"));
    }

    fn result(accuracy: f64, random: f64) -> Results {
        Results {
            experiment: "x".into(),
            status: Status::Completed,
            error: None,
            evaluations: vec![EvaluationResult {
                task: "fer".into(),
                protocol: Protocol::LinearProbe,
                dataset: "synthface".into(),
                metrics: BTreeMap::from([("accuracy".to_string(), accuracy)]),
                random_init: Some(BTreeMap::from([("accuracy".to_string(), random)])),
                supervised: None,
                constant: None,
            }],
            pretrain: None,
        }
    }

    /// The lead is paired seed by seed: its mean is the difference of the
    /// means, its spread is not the spread of either side.
    #[test]
    fn the_lead_is_paired_seed_by_seed() {
        let done = vec![
            (0, PathBuf::from("a"), result(40.0, 30.0)),
            (1, PathBuf::from("b"), result(30.0, 32.0)),
            (2, PathBuf::from("c"), result(35.0, 29.0)),
        ];
        let summary = summarise("x", &done, BTreeMap::new());
        let m = &summary.evaluations[0].metrics["accuracy"];
        assert_eq!(m.pretrained.values, vec![40.0, 30.0, 35.0]);
        assert!((m.pretrained.mean - 35.0).abs() < 1e-12);
        assert!((m.pretrained.std - 5.0).abs() < 1e-12);
        let lead = m.lead.as_ref().unwrap();
        assert_eq!(lead.values, vec![10.0, -2.0, 6.0]);
        assert!((lead.mean - 14.0 / 3.0).abs() < 1e-12);
        assert_eq!((lead.min, lead.max), (-2.0, 10.0));
        let expected_std =
            ((10.0f64 - 14.0 / 3.0).powi(2) + (-2.0f64 - 14.0 / 3.0).powi(2) + (6.0f64 - 14.0 / 3.0).powi(2)) / 2.0;
        assert!((lead.std - expected_std.sqrt()).abs() < 1e-12);
        assert!(m.supervised.is_none() && m.constant.is_none());
        let table = render(&summary, Path::new("out"));
        assert!(table.contains("lead         4.67 ± 6.11 [-2.00, 10.00]"), "{table}");
    }

    /// A twin missing on one seed has no statistics rather than fewer values.
    #[test]
    fn a_quantity_missing_on_a_seed_is_left_out() {
        let mut b = result(30.0, 32.0);
        b.evaluations[0].random_init = None;
        let done = vec![(0, PathBuf::from("a"), result(40.0, 30.0)), (1, PathBuf::from("b"), b)];
        let m = &summarise("x", &done, BTreeMap::new()).evaluations[0].metrics["accuracy"];
        assert!(m.random_init.is_none() && m.lead.is_none());
        assert_eq!(m.pretrained.values.len(), 2);
        assert_eq!(Stats::of(vec![3.0]).std, 0.0);
    }
}
