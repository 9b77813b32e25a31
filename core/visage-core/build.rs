//! Records the toolchain facts that the plugin declaration carries: the
//! rustc that compiles this crate (and so every plugin that links it) and the
//! libtorch version torch-sys found.
use std::path::Path;
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown rustc".into());
    println!("cargo:rustc-env=VISAGE_RUSTC_VERSION={version}");

    // torch-sys (links = "tch") exports the libtorch lib folder to direct dependents.
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let torch = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .ok()
        .and_then(|lib| torch_version(Path::new(&lib)))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VISAGE_TORCH_VERSION={torch}");
}

/// Reads `__version__` from torch/version.py beside torch/lib (a PyTorch
/// install), or the `build-version` file of a libtorch archive.
fn torch_version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        println!("cargo:rerun-if-changed={}", root.join("version.py").display());
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__") {
                let v = rest.trim_start_matches([' ', '=']).trim().trim_matches(['\'', '"']);
                return Some(v.to_string());
            }
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}
