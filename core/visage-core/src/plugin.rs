//! The versioned declaration every plugin exports, and [`declare_plugin!`].
//!
//! A plugin is a `cdylib` that exports one static of type
//! [`PluginDeclaration`] named after the plugin, [`SYMBOL_PREFIX`] followed
//! by its name (`VISAGE_PLUGIN_fer`), as [`declare_plugin!`] writes it; the
//! host finds it in the library's dynamic symbol table (and still accepts
//! the older fixed name [`LEGACY_SYMBOL`]). A name of its own lets a test
//! binary link several plugins as rlibs (a task plugin's tests link
//! synthface's for its dataset) without two definitions of one symbol,
//! with no linker flag and no `cfg(test)` in the plugins: the library is
//! built once for both its `cdylib` and its `rlib`, so no cfg or feature
//! can keep the symbol out of one of them only. The host reads the
//! declaration before calling anything in
//! the library and refuses the plugin unless its declaration version, its
//! [ABI fingerprint](crate::abi) and its versions of rustc, tch and libtorch
//! match the host's: trait objects cross the boundary, which is only sound
//! when both sides were built by the same rustc from the same visage-core
//! definitions, tch and libtorch.

use std::ffi::{c_char, CStr};

use crate::{AbiFingerprint, Registry, Result};

/// First bytes of every declaration, so that a stray symbol of the same name
/// is not mistaken for one.
pub const MAGIC: [u8; 8] = *b"VISAGE\0\x01";

/// The start of the symbol [`declare_plugin!`] exports a plugin's
/// declaration as: `VISAGE_PLUGIN_<name>`.
pub const SYMBOL_PREFIX: &str = "VISAGE_PLUGIN_";

/// The symbol of the declarations of plugins built before their symbols
/// were named after them; the host still finds it.
pub const LEGACY_SYMBOL: &str = "VISAGE_PLUGIN";

/// The name [`DeclaredVersions::mismatches`] gives a differing ABI
/// fingerprint.
pub const ABI_FINGERPRINT: &str = "ABI fingerprint";

/// Signature of a plugin's registration entry point.
///
/// Only called after every version in the declaration matched the host's.
pub type RegisterFn = fn(&mut Registry, &tracing::Dispatch) -> Result<()>;

/// A NUL-terminated static string that can live in a `#[repr(C)]` static.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct StaticCStr(*const c_char);

// SAFETY: points at immutable static data.
unsafe impl Sync for StaticCStr {}
unsafe impl Send for StaticCStr {}

impl StaticCStr {
    /// Wraps a `&'static str` that ends with `\0` (checked at compile time
    /// when used in a static).
    pub const fn new(s: &'static str) -> Self {
        let bytes = s.as_bytes();
        assert!(
            !bytes.is_empty() && bytes[bytes.len() - 1] == 0,
            "StaticCStr needs a trailing NUL"
        );
        StaticCStr(bytes.as_ptr().cast())
    }

    /// The text, lossily decoded.
    ///
    /// # Safety
    /// The pointer must come from [`StaticCStr::new`] in a library that is
    /// still loaded.
    pub unsafe fn read(&self) -> String {
        if self.0.is_null() {
            return String::new();
        }
        CStr::from_ptr(self.0).to_string_lossy().into_owned()
    }
}

/// The declaration a plugin exports as `VISAGE_PLUGIN_<name>`.
///
/// The fields up to and including `version` keep this layout in every
/// future declaration version, so that a host can always read and report
/// them; the fields after it are read only when `declaration_version` is the
/// host's [`crate::DECLARATION_VERSION`].
#[repr(C)]
pub struct PluginDeclaration {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// [`crate::DECLARATION_VERSION`] the plugin was built with: the layout
    /// of this declaration.
    pub declaration_version: u32,
    /// visage-core version.
    pub core_version: StaticCStr,
    /// `rustc --version`.
    pub rustc_version: StaticCStr,
    /// tch crate version.
    pub tch_version: StaticCStr,
    /// libtorch version.
    pub torch_version: StaticCStr,
    /// The plugin's name.
    pub name: StaticCStr,
    /// The plugin crate's version.
    pub version: StaticCStr,
    /// [`crate::ABI`] of the visage-core the plugin was built with.
    pub abi: AbiFingerprint,
    /// Registers the plugin's components. Never called on a mismatch.
    pub register: RegisterFn,
}

/// The versions of a declaration, read into owned strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredVersions {
    /// Declaration version.
    pub declaration_version: u32,
    /// ABI fingerprint; `None` when the declaration version differs from
    /// this crate's, whose declarations are the only ones it can read past
    /// `version`.
    pub abi: Option<AbiFingerprint>,
    /// visage-core version.
    pub core_version: String,
    /// rustc version.
    pub rustc_version: String,
    /// tch version.
    pub tch_version: String,
    /// libtorch version.
    pub torch_version: String,
}

impl DeclaredVersions {
    /// The versions this copy of visage-core was built with.
    pub fn current() -> Self {
        DeclaredVersions {
            declaration_version: crate::DECLARATION_VERSION,
            abi: Some(crate::ABI),
            core_version: crate::CORE_VERSION.into(),
            rustc_version: crate::RUSTC_VERSION.into(),
            tch_version: crate::TCH_VERSION.into(),
            torch_version: crate::TORCH_VERSION.into(),
        }
    }

    /// Each `(field, host value, plugin value)` that differs: the
    /// declaration version, the ABI fingerprint (when both are known), then
    /// the versions of visage-core, rustc, tch and torch.
    pub fn mismatches(&self, plugin: &DeclaredVersions) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        if self.declaration_version != plugin.declaration_version {
            out.push((
                "declaration version",
                self.declaration_version.to_string(),
                plugin.declaration_version.to_string(),
            ));
        }
        if let (Some(host), Some(theirs)) = (self.abi, plugin.abi) {
            if host != theirs {
                out.push((ABI_FINGERPRINT, host.to_string(), theirs.to_string()));
            }
        }
        let pairs = [
            ("visage-core version", &self.core_version, &plugin.core_version),
            ("rustc version", &self.rustc_version, &plugin.rustc_version),
            ("tch version", &self.tch_version, &plugin.tch_version),
            ("torch version", &self.torch_version, &plugin.torch_version),
        ];
        for (field, host, theirs) in pairs {
            if host != theirs {
                out.push((field, host.clone(), theirs.clone()));
            }
        }
        out
    }
}

impl PluginDeclaration {
    /// A declaration carrying this crate's versions; used by [`declare_plugin!`].
    pub const fn new(name: &'static str, version: &'static str, register: RegisterFn) -> Self {
        PluginDeclaration {
            magic: MAGIC,
            declaration_version: crate::DECLARATION_VERSION,
            core_version: StaticCStr::new(concat!(env!("CARGO_PKG_VERSION"), "\0")),
            rustc_version: StaticCStr::new(concat!(env!("VISAGE_RUSTC_VERSION"), "\0")),
            tch_version: StaticCStr::new(concat!(crate::version::tch_version!(), "\0")),
            torch_version: StaticCStr::new(concat!(env!("VISAGE_TORCH_VERSION"), "\0")),
            name: StaticCStr::new(name),
            version: StaticCStr::new(version),
            abi: crate::ABI,
            register,
        }
    }

    /// Reads the versions; the ABI fingerprint only when the declaration
    /// version is this crate's (another layout may not have it there).
    ///
    /// # Safety
    /// `self` must be a declaration in a loaded library with a valid magic.
    pub unsafe fn versions(&self) -> DeclaredVersions {
        // Not `then_some`: the field must not be read unless it is there.
        let abi = if self.declaration_version == crate::DECLARATION_VERSION {
            Some(self.abi)
        } else {
            None
        };
        DeclaredVersions {
            declaration_version: self.declaration_version,
            abi,
            core_version: self.core_version.read(),
            rustc_version: self.rustc_version.read(),
            tch_version: self.tch_version.read(),
            torch_version: self.torch_version.read(),
        }
    }
}

/// Runs a plugin's registration on the plugin's side of the boundary: installs
/// the host's tracing dispatcher into the plugin's own copy of `tracing`, then
/// calls `register`, turning a panic into an error.
#[doc(hidden)]
pub fn enter(
    registry: &mut Registry,
    dispatch: &tracing::Dispatch,
    register: fn(&mut Registry) -> Result<()>,
) -> Result<()> {
    // The plugin's statics are its own: set its global dispatcher (the first
    // call wins), then recompute its max level and callsite interest, which
    // otherwise stay at "off" in this copy of tracing-core.
    let _ = tracing::dispatcher::set_global_default(dispatch.clone());
    tracing::callsite::rebuild_interest_cache();
    crate::guard::call("plugin registration", || register(registry))
}

/// Declares a plugin: its name and the function that registers its
/// components. Exports the declaration as [`SYMBOL_PREFIX`] followed by
/// the name, so that the declarations of several plugins linked into one
/// binary as rlibs (tests) do not collide.
///
/// ```ignore
/// use visage_core::{declare_plugin, Registry, Result};
///
/// fn register(registry: &mut Registry) -> Result<()> {
///     registry.metric("my_accuracy", |_: visage_core::NoParams, _| Ok(MyAccuracy))
/// }
///
/// declare_plugin!(name: "my_plugin", register: register);
/// ```
#[macro_export]
macro_rules! declare_plugin {
    (name: $name:literal, register: $register:path $(,)?) => {
        // The literal is SYMBOL_PREFIX (concat! takes no constants).
        #[export_name = concat!("VISAGE_PLUGIN_", $name)]
        #[doc(hidden)]
        pub static VISAGE_PLUGIN: $crate::plugin::PluginDeclaration = $crate::plugin::PluginDeclaration::new(
            concat!($name, "\0"),
            concat!(env!("CARGO_PKG_VERSION"), "\0"),
            |registry, dispatch| $crate::plugin::enter(registry, dispatch, $register),
        );
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_differing_abi_fingerprint_is_a_mismatch_with_both_values() {
        let host = DeclaredVersions::current();
        assert!(host.mismatches(&host).is_empty());
        let other = AbiFingerprint {
            source: crate::ABI.source ^ 1,
            ..crate::ABI
        };
        let plugin = DeclaredVersions {
            abi: Some(other),
            ..host.clone()
        };
        assert_eq!(
            host.mismatches(&plugin),
            vec![(ABI_FINGERPRINT, crate::ABI.to_string(), other.to_string())]
        );
        // Another declaration layout: its number is reported, its fingerprint never read.
        let old = DeclaredVersions {
            declaration_version: 2,
            abi: None,
            ..host.clone()
        };
        assert_eq!(
            host.mismatches(&old),
            vec![("declaration version", "3".to_string(), "2".to_string())]
        );
    }

    #[test]
    fn a_declaration_carries_this_crates_abi_fingerprint() {
        fn register(_: &mut Registry, _: &tracing::Dispatch) -> Result<()> {
            Ok(())
        }
        let declaration = PluginDeclaration::new("t\0", "0\0", register);
        // SAFETY: a declaration of this crate, with static strings.
        let versions = unsafe { declaration.versions() };
        assert_eq!(versions, DeclaredVersions::current());
        let old = PluginDeclaration {
            declaration_version: 2,
            ..PluginDeclaration::new("t\0", "0\0", register)
        };
        // SAFETY: as above.
        assert_eq!(unsafe { old.versions() }.abi, None);
    }
}
