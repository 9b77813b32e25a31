//! The run directory: everything needed to understand and repeat a run.
//!
//! ```text
//! runs/<name>/<timestamp>/
//!   config.yaml     the resolved experiment (runnable as it is)
//!   origins.yaml    where every value came from (file:line, env, --set, default)
//!   run.json        git revision, versions of core (and its ABI fingerprint), rustc, tch, torch and plugins, seed, device, command
//!   log.jsonl       the log as JSON lines
//!   metrics.jsonl   per step: loss terms, learning-rate factor, recorded values
//!   tensorboard/    the same as TensorBoard event files
//!   checkpoints/    step-NNNNNNNN/ (model, optimiser, state) and `latest`
//!   backbone.safetensors, backbone.json   the trained backbone and what it is
//!   evaluations/    <i>-<task>/{pretrained,random_init}/: a task's trainer files
//!   results.json    the outcome (written atomically at the end)
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use visage_core::fs::write_atomic;

use crate::config::Resolved;
use crate::host::PluginRecord;

const CONFIG_HEADER: &str = "# Resolved by `runner`: every layer merged, every default filled in.\n";

/// Resuming needs the configuration the run started with.
pub fn check_same_config(run: &Path, resolved: &Resolved) -> anyhow::Result<()> {
    let path = run.join("config.yaml");
    let before = crate::config::load::read_config(&path)?;
    let now = format!("{CONFIG_HEADER}{}", resolved.to_yaml());
    if let Some((i, (a, b))) = before.lines().zip(now.lines()).enumerate().find(|(_, (a, b))| a != b) {
        anyhow::bail!(
            "{}:{}: the run was started with `{}`, the experiment now resolves to `{}`; resuming needs the same configuration",
            path.display(),
            i + 1,
            a.trim(),
            b.trim()
        );
    }
    anyhow::ensure!(
        before.lines().count() == now.lines().count(),
        "{}: the experiment now resolves differently; resuming needs the same configuration",
        path.display()
    );
    Ok(())
}

/// A created run directory.
pub struct RunDir {
    /// Its path.
    pub path: PathBuf,
}

/// What `run.json` records.
#[derive(Serialize)]
struct RunInfo<'a> {
    experiment: &'a str,
    started: String,
    command: Vec<String>,
    files: Vec<PathBuf>,
    git: Git,
    versions: Versions,
    plugins: &'a [PluginRecord],
    seed: u64,
    device: String,
}

#[derive(Serialize)]
struct Versions {
    visage_core: &'static str,
    plugin_declaration: u32,
    abi_fingerprint: String,
    rustc: &'static str,
    tch: &'static str,
    torch: &'static str,
}

#[derive(Serialize)]
struct Git {
    revision: Option<String>,
    dirty: Option<bool>,
}

fn git(dir: &Path) -> Git {
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let revision = run(&["rev-parse", "HEAD"]);
    let dirty = revision
        .as_ref()
        .and(run(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    Git { revision, dirty }
}

/// `2026-11-22T12-30-05` in UTC: sortable and safe in file names.
pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]-[minute]-[second]"
    ))
    .unwrap_or_default()
}

impl RunDir {
    /// Creates the directory (`out`, or `<output_dir>/<name>/<timestamp>`).
    pub fn create(resolved: &Resolved, out: Option<&Path>) -> anyhow::Result<RunDir> {
        let path = match out {
            Some(p) => p.to_path_buf(),
            None => {
                let base = resolved.experiment.output_dir.join(&resolved.experiment.name);
                let mut path = base.join(timestamp());
                let mut n = 1;
                while path.exists() {
                    n += 1;
                    path = base.join(format!("{}-{n}", timestamp()));
                }
                path
            }
        };
        // A run never writes into a non-empty directory it did not create:
        // that would overwrite another run's files and prune its checkpoints.
        let occupied = std::fs::read_dir(&path).map(|mut d| d.next().is_some());
        match occupied {
            Ok(true) => anyhow::bail!(
                "{}: the output directory exists and is not empty; a run only writes into a new or empty directory \
                 (to continue the run there, use --resume {})",
                path.display(),
                path.display()
            ),
            Ok(false) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                anyhow::bail!("{}: exists and is not a directory", path.display())
            }
            Err(e) => anyhow::bail!("{}: cannot read the output directory: {e}", path.display()),
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| anyhow::anyhow!("{}: cannot create the run directory: {e}", path.display()))?;
        Ok(RunDir { path })
    }

    /// Removes the temporaries of atomic writes (`.results.json.tmp123`) a
    /// killed or failed process left in the run directory.
    fn clean_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp") && entry.path().is_file() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// An existing run directory to continue: `target` is a run directory or
    /// `auto` (the newest unfinished run of this experiment, if any; `None`
    /// when there is none). Its config.yaml must equal the resolved experiment.
    pub fn resume(resolved: &Resolved, target: &str) -> anyhow::Result<Option<RunDir>> {
        if target != "auto" {
            let path = PathBuf::from(target);
            anyhow::ensure!(
                path.join("config.yaml").is_file(),
                "{}: not a run directory (no config.yaml)",
                path.display()
            );
            check_same_config(&path, resolved)?;
            let dir = RunDir { path };
            dir.clean_temporaries();
            return Ok(Some(dir));
        }
        let base = resolved.experiment.output_dir.join(&resolved.experiment.name);
        let mut runs: Vec<PathBuf> = match std::fs::read_dir(&base) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("config.yaml").is_file())
                .collect(),
            Err(_) => vec![],
        };
        runs.sort();
        for path in runs.into_iter().rev() {
            let finished = std::fs::read(path.join("results.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|r| r["status"] == "completed");
            if !finished && check_same_config(&path, resolved).is_ok() {
                let dir = RunDir { path };
                dir.clean_temporaries();
                return Ok(Some(dir));
            }
        }
        tracing::warn!(
            "--resume auto: no unfinished run of `{}` with this configuration under {}; starting a new run",
            resolved.experiment.name,
            base.display()
        );
        Ok(None)
    }

    /// Writes config.yaml, origins.yaml and run.json.
    pub fn record_start(
        &self,
        resolved: &Resolved,
        plugins: &[PluginRecord],
        device: tch::Device,
    ) -> anyhow::Result<()> {
        self.write(
            "config.yaml",
            format!("{CONFIG_HEADER}{}", resolved.to_yaml()).as_bytes(),
        )?;
        let origins: std::collections::BTreeMap<String, String> = resolved
            .origins()
            .into_iter()
            .map(|(k, (_, place))| (k, place.to_string()))
            .collect();
        self.write("origins.yaml", serde_yaml::to_string(&origins)?.as_bytes())?;
        let files = resolved.files();
        let info = RunInfo {
            experiment: &resolved.experiment.name,
            started: timestamp(),
            command: std::env::args().collect(),
            git: git(files
                .last()
                .and_then(|f| f.parent())
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))),
            files,
            versions: Versions {
                visage_core: visage_core::CORE_VERSION,
                plugin_declaration: visage_core::DECLARATION_VERSION,
                abi_fingerprint: visage_core::ABI.to_string(),
                rustc: visage_core::RUSTC_VERSION,
                tch: visage_core::TCH_VERSION,
                torch: visage_core::TORCH_VERSION,
            },
            plugins,
            seed: resolved.experiment.seed,
            device: format!("{device:?}"),
        };
        self.write("run.json", serde_json::to_string_pretty(&info)?.as_bytes())
    }

    /// Writes `name` in the run directory atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        write_atomic(&self.path.join(name), bytes)?;
        Ok(())
    }
}
