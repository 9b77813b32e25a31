//! Helpers shared by the integration tests: run the release `runner` from
//! the repository root with a clean `VISAGE_*` environment.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// What a finished `runner` printed.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The `runner` command in the repository root, logging only errors, with
/// no `VISAGE_*` variables from the caller.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
    command.current_dir(root()).args(args).env("RUST_LOG", "error");
    for (key, _) in std::env::vars() {
        if key.starts_with("VISAGE_") {
            command.env_remove(key);
        }
    }
    command
}

/// `runner` with `args` and extra `env`.
pub fn runner_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = command(args).envs(env.iter().copied()).output().expect("runner starts");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `runner` with `args`.
pub fn runner(args: &[&str]) -> Output {
    runner_with_env(args, &[])
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert_eq!(
        out.code, 0,
        "runner failed:\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// Asserts a clean failure (exit code 1, no crash) and returns stderr.
pub fn fails(out: Output) -> String {
    assert_eq!(
        out.code, 1,
        "expected exit code 1:\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out.stderr
}
