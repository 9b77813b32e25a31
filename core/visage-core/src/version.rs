//! The versions a plugin declaration carries and the host compares.

/// Version of the plugin interface. Bump it whenever a type that crosses the
/// plugin boundary changes shape.
pub const PLUGIN_API_VERSION: u32 = 2;

/// Version of the visage-core crate.
pub const CORE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `rustc --version` of the compiler that built this copy of visage-core
/// (the host's, or the plugin's).
pub const RUSTC_VERSION: &str = env!("VISAGE_RUSTC_VERSION");

/// The tch version as a literal, for `concat!` in the plugin declaration.
macro_rules! tch_version {
    () => {
        "0.24.0"
    };
}
pub(crate) use tch_version;

/// Version of the tch crate, pinned exactly in the workspace manifest.
pub const TCH_VERSION: &str = tch_version!();

/// Version of the libtorch this copy was built against, as PyTorch reports it
/// (e.g. `2.11.0+cu130`).
pub const TORCH_VERSION: &str = env!("VISAGE_TORCH_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    /// TCH_VERSION must name the tch that Cargo.lock actually resolved.
    #[test]
    fn tch_version_matches_the_lock_file() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
            .expect("workspace Cargo.lock");
        let entry = format!("name = \"tch\"\nversion = \"{TCH_VERSION}\"");
        assert!(lock.contains(&entry), "Cargo.lock does not resolve tch {TCH_VERSION}");
    }

    #[test]
    fn torch_version_is_the_pair_of_tch() {
        assert!(TORCH_VERSION.starts_with("2.11.0"), "torch {TORCH_VERSION}");
        assert!(RUSTC_VERSION.starts_with("rustc "), "{RUSTC_VERSION}");
    }
}
