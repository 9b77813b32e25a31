//! Arguments of `runner export` and `runner embed`: sizes out of range,
//! `--count 0`, a `--checkpoint` that does not exist, an unknown
//! `--format`, an `--out` that is a file.

use crate::harness::{refused, Scratch};

fn export<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["export", "--dataset", "synthface", "--format", "rafdb", "--out", out];
    args.extend_from_slice(extra);
    args
}

#[test]
fn export_arguments_out_of_range_are_refused() {
    let scratch = Scratch::new();
    let out = scratch.path("export");
    let out = out.to_str().unwrap();
    refused(
        &scratch,
        &export(out, &["--size", "0"]),
        &[],
        &["--size", "1..=8192", "got 0"],
    );
    refused(
        &scratch,
        &export(out, &["--size", "100000"]),
        &[],
        &["--size", "1..=8192", "got 100000"],
    );
    refused(
        &scratch,
        &export(out, &["--count", "0"]),
        &[],
        &["--count", "at least 1"],
    );
    let args = ["export", "--dataset", "synthface", "--format", "rafbd", "--out", out];
    refused(&scratch, &args, &[], &["unknown export format `rafbd`", "rafdb"]);
    let file = scratch.file("a_file", "x");
    refused(
        &scratch,
        &export(file.to_str().unwrap(), &["--count", "2"]),
        &[],
        &["a_file", "cannot create the folder"],
    );
    assert!(!scratch.path("export").exists());
}

fn embed<'a>(checkpoint: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "embed",
        "--checkpoint",
        checkpoint,
        "--dataset",
        "example_shapes",
        "--dataset-params",
        "{count: 4, resolution: 16}",
        "--device",
        "cpu",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn embed_arguments_are_checked_as_exports_are() {
    let scratch = Scratch::new();
    let run = scratch.finished_run("done", &[]);
    let run = run.to_str().unwrap();
    let out = scratch.path("feats.npy");
    let out = out.to_str().unwrap();
    // The same bounds as `runner export --size`, before any allocation.
    refused(
        &scratch,
        &embed(run, out, &["--size", "0"]),
        &[],
        &["--size", "1..=8192", "got 0"],
    );
    let stderr = refused(
        &scratch,
        &embed(run, out, &["--size", "100000"]),
        &[],
        &["--size", "got 100000"],
    );
    assert!(!stderr.contains("libtorch"), "{stderr}");
    // A checkpoint that does not exist is said so, whatever else is missing.
    let missing = scratch.path("MISSING");
    let stderr = refused(
        &scratch,
        &embed(missing.to_str().unwrap(), out, &[]),
        &[],
        &["--checkpoint", "MISSING: no such file or directory"],
    );
    assert!(!stderr.contains("--backbone"), "{stderr}");
    // `--out` inside a file: the OS error names the path, once.
    let file = scratch.file("a_file", "x");
    let inside = file.join("feats.npy");
    let stderr = refused(&scratch, &embed(run, inside.to_str().unwrap(), &[]), &[], &["a_file"]);
    let line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert_eq!(line.matches("os error").count(), 1, "{line}");
    assert!(!scratch.path("feats.npy").exists());
}
