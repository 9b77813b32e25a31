//! What every corpus case asserts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{command, ok, root, runner};

/// A scratch folder for one case: inputs go in it, runs go to its `runs/`.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` inside the scratch folder.
    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `--set output_dir=<scratch>/runs`, so that runs stay inside.
    pub fn output_dir(&self) -> String {
        format!("output_dir={}", self.path("runs").display())
    }

    /// A finished run of the fixture base (two steps, on the CPU) in
    /// `<scratch>/<name>`, with the extra `--set`s `sets`.
    pub fn finished_run(&self, name: &str, sets: &[&str]) -> PathBuf {
        let out = self.path(name);
        let mut args = vec![
            BASE.to_string(),
            "--set".into(),
            "device=cpu".into(),
            "--set".into(),
            self.output_dir(),
        ];
        for set in sets {
            args.extend(["--set".to_string(), set.to_string()]);
        }
        args.extend(["--out".to_string(), out.display().to_string()]);
        ok(runner(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        out
    }
}

/// The valid experiment the cases damage or run against.
pub const BASE: &str = "tests/fixtures/config/base.yaml";

/// Every file below `dir` with its length and content hash.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
                });
                out.insert(path, (meta.len(), hash));
            } else {
                out.insert(path, (0, 0));
            }
        }
    }
    out
}

/// Runs `runner args` from the repository root and asserts the three
/// properties; `names` must all appear in the message. Returns stderr.
pub fn refused(scratch: &Scratch, args: &[&str], env: &[(&str, &str)], names: &[&str]) -> String {
    refused_changing(scratch, args, env, names, &[])
}

/// [`refused`], where the files `may_change` (a resumed run's `log.jsonl`
/// and `results.json`) may change too.
pub fn refused_changing(
    scratch: &Scratch,
    args: &[&str],
    env: &[(&str, &str)],
    names: &[&str],
    may_change: &[PathBuf],
) -> String {
    let before = snapshot(scratch.dir.path());
    let runs_before: Vec<PathBuf> = new_runs(scratch, &[]);
    let out = command(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runner starts");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let case = format!("runner {}\nstdout:\n{stdout}\nstderr:\n{stderr}", args.join(" "));
    // 1. A clean error, not a signal, not a panic.
    assert_eq!(out.status.code(), Some(1), "not a clean error exit: {case}");
    assert!(!stderr.contains("panicked"), "a panic reached the user: {case}");
    assert!(stderr.contains("error: "), "no error message: {case}");
    assert!(
        !stderr.contains("frame #"),
        "a C++ stack trace reached the terminal: {case}"
    );
    // 2. The message names the file or the key.
    for name in names {
        assert!(stderr.contains(name), "the message does not name `{name}`: {case}");
    }
    // 3. Nothing outside the run's own new directory changed.
    let created = new_runs(scratch, &runs_before);
    let after = snapshot(scratch.dir.path());
    let outside = |m: &BTreeMap<PathBuf, (u64, u64)>| -> BTreeMap<PathBuf, (u64, u64)> {
        m.iter()
            .filter(|(p, _)| !created.iter().any(|c| p.starts_with(c)) && !may_change.contains(p))
            .map(|(p, v)| (p.clone(), *v))
            .collect()
    };
    assert_eq!(
        outside(&before),
        outside(&after),
        "files outside the new run changed: {case}"
    );
    let repo_runs = root().join("runs");
    assert!(
        !repo_runs.exists() || snapshot(&repo_runs).keys().all(|p| !p.starts_with(scratch.dir.path())),
        "{case}"
    );
    stderr
}

/// Run folders under `<scratch>/runs/<name>/` that are not in `known`.
fn new_runs(scratch: &Scratch, known: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![];
    let Ok(names) = std::fs::read_dir(scratch.path("runs")) else {
        return out;
    };
    for name in names.flatten() {
        let Ok(runs) = std::fs::read_dir(name.path()) else {
            continue;
        };
        out.extend(runs.flatten().map(|r| r.path()).filter(|p| !known.contains(p)));
    }
    out
}
