//! The versions a plugin declaration carries and the host compares.

/// Version of the layout of [`crate::plugin::PluginDeclaration`] itself: which
/// fields follow its frozen leading ones. Bump it only when the declaration
/// changes. Whether the rest of the boundary matches is the business of the
/// ABI fingerprint ([`crate::ABI`]), which the compiler derives; a host reads
/// a plugin's fingerprint only after this number matched, so that it never
/// reads past `version` in a declaration of another layout (version 2 had no
/// fingerprint).
pub const DECLARATION_VERSION: u32 = 3;

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
