//! Plugin folders: entries named like a library (`*.so`) that are not a
//! whole shared library. A truncated one used to kill the runner with
//! SIGBUS inside `dlopen`; each is now refused, naming the file and what
//! was expected, before anything is loaded from it.

use std::path::{Path, PathBuf};

use crate::common::root;
use crate::harness::{refused, Scratch};

/// The plugin library the build put beside the runner.
fn built_plugin() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_runner")).parent().unwrap();
    let name = format!("libexample.{}", std::env::consts::DLL_EXTENSION);
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: cargo build --release --workspace",
        path.display()
    );
    path
}

/// A run of the base experiment with `VISAGE_PLUGIN_PATH` set to the
/// scratch folder's `plugins/`, refused naming `names`; no run directory.
fn refused_with_plugins(scratch: &Scratch, names: &[&str]) -> String {
    let base = root().join("tests/fixtures/config/base.yaml");
    let output_dir = scratch.output_dir();
    let plugins = scratch.path("plugins");
    let args = [base.to_str().unwrap(), "--set", "device=cpu", "--set", &output_dir];
    let stderr = refused(
        scratch,
        &args,
        &[("VISAGE_PLUGIN_PATH", plugins.to_str().unwrap())],
        names,
    );
    assert!(!scratch.path("runs").exists(), "a run directory was made:\n{stderr}");
    // `validate` loads the plugins too.
    let args = ["validate", base.to_str().unwrap()];
    refused(
        scratch,
        &args,
        &[("VISAGE_PLUGIN_PATH", plugins.to_str().unwrap())],
        names,
    );
    stderr
}

const EXPECTED: &str = "expected a 64-bit little-endian ELF shared library";

#[test]
fn a_truncated_library_is_refused_not_a_crash() {
    let bytes = std::fs::read(built_plugin()).unwrap();
    // Cut inside the headers' reach at several places: the program
    // headers, the loaded segments, the section-header table.
    for keep in [100, 4096, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let scratch = Scratch::new();
        scratch.file("plugins/libcut.so", &bytes[..keep]);
        let stderr = refused_with_plugins(
            &scratch,
            &["plugins/libcut.so", "not a loadable plugin library", EXPECTED],
        );
        assert!(
            stderr.contains("past the end of the file") && stderr.contains(&format!("({keep} bytes)")),
            "{keep}: {stderr}"
        );
    }
}

#[test]
fn random_bytes_an_empty_file_and_a_header_alone_are_refused() {
    let mut random = vec![0u8; 4096];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let header = std::fs::read(built_plugin()).unwrap()[..64].to_vec();
    let mut foreign = header.clone();
    foreign[4] = 1; // 32-bit
    for (bytes, what) in [
        (random, "not an ELF file"),
        (vec![], "the file is empty"),
        (b"\x7fELF".to_vec(), "fewer than an ELF header's 64"),
        (header, "past the end of the file"),
        (foreign, "an ELF file of class 1"),
    ] {
        let scratch = Scratch::new();
        scratch.file("plugins/libbad.so", &bytes);
        refused_with_plugins(&scratch, &["plugins/libbad.so", what, EXPECTED]);
    }
}

#[test]
fn a_directory_or_a_fifo_named_like_a_library_is_refused() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("plugins/x.so")).unwrap();
    refused_with_plugins(
        &scratch,
        &["plugins/x.so", "it is a directory, not a regular file", EXPECTED],
    );
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("plugins")).unwrap();
    let fifo = scratch.path("plugins/libfifo.so");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    refused_with_plugins(&scratch, &["plugins/libfifo.so", "it is a FIFO"]);
}
