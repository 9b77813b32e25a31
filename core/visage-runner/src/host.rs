//! The plugin host: finds plugin libraries, checks their declarations and
//! lets them register their components.
//!
//! Plugins are found by their declaration, not by file name: the one symbol
//! of a library's dynamic symbol table named `VISAGE_PLUGIN_<name>` (or the
//! older `VISAGE_PLUGIN`; see [`visage_core::plugin`]). They are looked for
//! in: the folder of the runner binary, the experiment's `plugin_dirs`, and
//! the folders of `VISAGE_PLUGIN_PATH` (separated by `:`). Libraries are
//! never unloaded: the registry holds code and vtables that live in them.
//! Every entry of those folders named like a library (`*.so`) must be a
//! whole shared library: its ELF headers are checked before it is opened
//! (see [`crate::elf`]); one without the declaration is skipped, one with
//! two is refused.

use std::path::{Path, PathBuf};

use libloading::Library;
use visage_core::plugin::{DeclaredVersions, PluginDeclaration, ABI_FINGERPRINT, LEGACY_SYMBOL, MAGIC, SYMBOL_PREFIX};
use visage_core::Registry;

/// A loaded plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginRecord {
    /// Its declared name.
    pub name: String,
    /// Its crate version.
    pub version: String,
    /// The library file, or `built into the runner`.
    pub path: PathBuf,
}

/// Errors while loading plugins.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The file is not a whole shared library (checked before dlopen,
    /// which would crash on a truncated one).
    #[error("{}: not a loadable plugin library: {problem}", path.display())]
    NotALibrary {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// dlopen failed.
    #[error("{}: cannot load the plugin library: {message}", path.display())]
    Open {
        /// The library.
        path: PathBuf,
        /// The dynamic loader's message.
        message: String,
    },
    /// The declaration's versions or ABI fingerprint differ from the host's.
    #[error("{}: plugin `{name}` was built for a different host and was not loaded:\n{}\n  rebuild it against this visage-core with the same toolchain (./runner rebuilds the workspace's plugins)",
        path.display(), describe(mismatches, core_versions))]
    Incompatible {
        /// The library.
        path: PathBuf,
        /// The plugin's declared name.
        name: String,
        /// `(what, host value, plugin value)`.
        mismatches: Vec<(&'static str, String, String)>,
        /// visage-core versions of the host and of the plugin, shown beside
        /// a differing ABI fingerprint (the same version number can be
        /// built from different sources).
        core_versions: (String, String),
    },
    /// Two libraries declare the same plugin name.
    #[error("plugin `{name}` is declared twice: by {} and by {}", first.display(), second.display())]
    SameName {
        /// The name.
        name: String,
        /// The first library.
        first: PathBuf,
        /// The second library.
        second: PathBuf,
    },
    /// Registration returned an error (a panic included).
    #[error("{}: plugin `{name}` failed to register its components: {message}", path.display())]
    Register {
        /// The library.
        path: PathBuf,
        /// The plugin.
        name: String,
        /// What went wrong, with plugin paths for duplicate names.
        message: String,
    },
    /// A plugin folder cannot be listed.
    #[error("{}: cannot read the plugin folder: {source}", dir.display())]
    Dir {
        /// The folder.
        dir: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The registry with every plugin's components, and the plugins themselves.
pub struct Host {
    /// All registered components.
    pub registry: Registry,
    /// The plugins, in load order (`builtin` first).
    pub plugins: Vec<PluginRecord>,
}

/// The default plugin folders: beside the runner binary, then
/// `VISAGE_PLUGIN_PATH`.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    if let Some(path) = std::env::var_os("VISAGE_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

/// The name of the plugin declaration that the library at `path` exports:
/// its one defined dynamic symbol named [`SYMBOL_PREFIX`]`<name>` or
/// [`LEGACY_SYMBOL`]; `None` when it has none (not a plugin).
fn declaration_symbol(path: &Path) -> Result<Option<String>, HostError> {
    let refused = |problem: String| HostError::NotALibrary {
        path: path.into(),
        problem,
    };
    let symbols: Vec<String> = crate::dynsym::defined_with_prefix(path, LEGACY_SYMBOL)
        .map_err(refused)?
        .into_iter()
        .filter(|s| s == LEGACY_SYMBOL || s.starts_with(SYMBOL_PREFIX))
        .collect();
    match symbols.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        several => Err(refused(format!(
            "it exports {} plugin declarations ({}); expected one (does it link another plugin as a library?)",
            several.len(),
            several.join(", ")
        ))),
    }
}

impl Host {
    /// Registers the built-in components (core's and the benchmark loaders
    /// of `visage_formats`), then loads every plugin in `dirs`.
    pub fn load(dirs: &[PathBuf]) -> Result<Host, HostError> {
        let mut registry = Registry::new();
        let builtin = PathBuf::from("built into the runner");
        // The benchmarks' loaders (visage-formats) are built in, beside the
        // writers of `runner export`: every experiment can name them.
        visage_core::builtin::register(&mut registry)
            .and_then(|()| visage_formats::register(&mut registry))
            .map_err(|e| HostError::Register {
                path: builtin.clone(),
                name: visage_core::builtin::PLUGIN.into(),
                message: e.to_string(),
            })?;
        let mut host = Host {
            registry,
            plugins: vec![PluginRecord {
                name: visage_core::builtin::PLUGIN.into(),
                version: visage_core::CORE_VERSION.into(),
                path: builtin,
            }],
        };
        let mut seen = vec![];
        for dir in dirs {
            for path in libraries_in(dir)? {
                let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if seen.contains(&canonical) {
                    continue;
                }
                seen.push(canonical);
                host.load_library(&path)?;
            }
        }
        Ok(host)
    }

    fn load_library(&mut self, path: &Path) -> Result<(), HostError> {
        crate::elf::check_shared_library(path).map_err(|problem| HostError::NotALibrary {
            path: path.into(),
            problem,
        })?;
        // SAFETY: loading runs the library's initialisers; plugin folders are trusted code.
        let library = unsafe { Library::new(path) }.map_err(|e| HostError::Open {
            path: path.into(),
            message: e.to_string(),
        })?;
        let Some(symbol) = declaration_symbol(path)? else {
            tracing::debug!(path = %path.display(), "not a Visage plugin (no {SYMBOL_PREFIX}<name> symbol); skipped");
            return Ok(());
        };
        // SAFETY: a symbol of this name is a `PluginDeclaration` static; the magic is checked before use.
        let declaration: &'static PluginDeclaration = unsafe {
            match library.get::<*const PluginDeclaration>(symbol.as_bytes()) {
                Ok(symbol) => &**symbol,
                Err(e) => {
                    return Err(HostError::Open {
                        path: path.into(),
                        message: format!("its symbol table defines {symbol}, but the loader does not find it: {e}"),
                    })
                }
            }
        };
        if declaration.magic != MAGIC {
            tracing::warn!(path = %path.display(), %symbol, "plugin symbol without the Visage magic; skipped");
            return Ok(());
        }
        // SAFETY: the magic matched; the leading fields have a frozen layout.
        let (versions, name, version) = unsafe {
            (
                declaration.versions(),
                declaration.name.read(),
                declaration.version.read(),
            )
        };
        let host = DeclaredVersions::current();
        let mismatches = host.mismatches(&versions);
        if !mismatches.is_empty() {
            return Err(HostError::Incompatible {
                path: path.into(),
                name,
                mismatches,
                core_versions: (host.core_version, versions.core_version),
            });
        }
        if let Some(first) = self.plugins.iter().find(|p| p.name == name) {
            return Err(HostError::SameName {
                name,
                first: first.path.clone(),
                second: path.into(),
            });
        }
        std::mem::forget(library); // never unloaded
        self.registry.set_plugin(&name);
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        (declaration.register)(&mut self.registry, &dispatch).map_err(|e| HostError::Register {
            path: path.into(),
            name: name.clone(),
            message: self.with_paths(e),
        })?;
        tracing::info!(plugin = %name, version = %version, path = %path.display(), "loaded plugin");
        self.plugins.push(PluginRecord {
            name,
            version,
            path: path.into(),
        });
        Ok(())
    }

    /// Adds the library paths of both plugins to a duplicate-name error.
    fn with_paths(&self, error: visage_core::Error) -> String {
        match &error {
            visage_core::Error::Duplicate { first, .. } => {
                let at = self
                    .plugins
                    .iter()
                    .find(|p| &p.name == first)
                    .map(|p| p.path.display().to_string());
                format!("{error} (the first is {})", at.unwrap_or_else(|| "unknown".into()))
            }
            _ => error.to_string(),
        }
    }
}

/// One line per mismatch; the ABI fingerprint's with both visage-core versions.
fn describe(mismatches: &[(&'static str, String, String)], (host_core, plugin_core): &(String, String)) -> String {
    let line = |(what, host, plugin): &(&str, String, String)| {
        let mut line = format!("  {what}: host {host}, plugin {plugin}");
        if *what == ABI_FINGERPRINT {
            line += &format!(" (visage-core host {host_core}, plugin {plugin_core})");
        }
        line
    };
    mismatches.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// Loads libtorch's CUDA backend when it is installed. The linker drops
/// `libtorch_cuda.so` from the runner's dependencies (nothing references its
/// symbols; its static initialisers register the CUDA backend), so without
/// this CUDA would look unavailable. Found through the runner's rpath.
pub fn load_cuda_backend() {
    // SAFETY: libtorch's own library; its initialisers only register backends.
    match unsafe { Library::new("libtorch_cuda.so") } {
        Ok(library) => {
            std::mem::forget(library);
            tracing::debug!(devices = tch::Cuda::device_count(), "loaded libtorch's CUDA backend");
        }
        Err(e) => tracing::debug!("no CUDA backend: {e}"),
    }
}

fn libraries_in(dir: &Path) -> Result<Vec<PathBuf>, HostError> {
    let entries = std::fs::read_dir(dir).map_err(|source| HostError::Dir {
        dir: dir.into(),
        source,
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Every entry named like a library, whatever it is: one that is not
        // a whole shared library is refused by `load_library`.
        .filter(|p| p.extension().is_some_and(|e| e == std::env::consts::DLL_EXTENSION))
        .collect();
    out.sort();
    Ok(out)
}
