//! Records the toolchain facts that the plugin declaration carries: the
//! rustc that compiles this crate (and so every plugin that links it) and the
//! libtorch version torch-sys found; compiles `csrc/autocast.cpp`, the
//! autocast switches tch does not expose, against that same libtorch; and
//! hashes the crate's definitions into the source half of the ABI
//! fingerprint (`VISAGE_ABI_SOURCE`, see `src/abi/mod.rs`).
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/abi/fnv.rs"]
mod fnv;
#[path = "src/abi/source.rs"]
mod source;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    let abi = source::fingerprint_dir(&manifest.join("src")).unwrap_or_else(|e| panic!("ABI fingerprint: {e}"));
    println!("cargo:rustc-env=VISAGE_ABI_SOURCE={abi:016x}");

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
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").ok().map(PathBuf::from);
    let torch = lib
        .as_deref()
        .and_then(torch_version)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VISAGE_TORCH_VERSION={torch}");
    let lib = lib.expect("torch-sys exports DEP_TCH_LIBTORCH_LIB (the libtorch lib folder)");
    compile_autocast_shim(&lib);
}

/// Compiles the autocast shim with libtorch's headers (beside its lib folder
/// in both a PyTorch install and a libtorch archive) and the C++ ABI that
/// torch-sys used.
fn compile_autocast_shim(lib: &Path) {
    let root = lib.parent().expect("the libtorch lib folder has a parent");
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={}", cxx11_abi(root)))
        .file("csrc/autocast.cpp")
        .compile("visage_autocast");
}

/// The `_GLIBCXX_USE_CXX11_ABI` of libtorch, as torch-sys finds it: from
/// LIBTORCH_CXX11_ABI, else from the PyTorch install, else 1.
fn cxx11_abi(root: &Path) -> String {
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    if let Ok(abi) = std::env::var("LIBTORCH_CXX11_ABI") {
        return abi;
    }
    let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
        "python"
    } else {
        "python3"
    };
    let probe = "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))";
    let from_python = root
        .join("version.py")
        .exists()
        .then(|| Command::new(python).args(["-c", probe]).output().ok())
        .flatten()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    from_python.unwrap_or_else(|| "1".into())
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
