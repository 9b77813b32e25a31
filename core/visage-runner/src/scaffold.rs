//! `runner new-plugin NAME --kind KIND`: a plugin crate that builds and loads,
//! with one working component of the chosen kind to start from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use visage_core::Kind;

const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.tmpl");

fn template(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Backbone => (include_str!("../templates/backbone.rs"), "a backbone"),
        Kind::Method => (include_str!("../templates/method.rs"), "a self-supervised method"),
        Kind::Task => (include_str!("../templates/task.rs"), "a downstream task"),
        Kind::Dataset => (include_str!("../templates/dataset.rs"), "a dataset"),
        Kind::Augmentation => (include_str!("../templates/augmentation.rs"), "an augmentation"),
        Kind::Metric => (include_str!("../templates/metric.rs"), "a metric"),
        Kind::Optimizer => (include_str!("../templates/optimizer.rs"), "an optimiser"),
        Kind::Scheduler => (include_str!("../templates/scheduler.rs"), "a learning-rate schedule"),
    }
}

/// The workspace this runner was built from.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Writes the crate `<dir>/<name>` and returns its path.
pub fn new_plugin(name: &str, kind: Kind, dir: &Path) -> anyhow::Result<PathBuf> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!("plugin name `{name}` must be snake_case: a lower-case letter, then lower-case letters, digits or `_`");
    }
    let crate_dir = dir.join(name);
    if crate_dir.exists() {
        bail!("{} already exists", crate_dir.display());
    }
    std::fs::create_dir_all(crate_dir.join("src")).with_context(|| format!("cannot create {}", crate_dir.display()))?;
    let (source, summary) = template(kind);
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{summary}}", summary)
            .replace("{{core}}", &core_path(&crate_dir).display().to_string())
    };
    let readme = format!(
        "# {name}\n\nA Visage plugin with {summary}, registered as `{name}`.\n\n\
         Built with the workspace (`./runner` builds every crate under plugins/) and loaded by its declaration.\n\
         Check it with `./runner plugins`; use it in an experiment as `{{name: {name}, params: {{...}}}}`.\n"
    );
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(source)),
        ("README.md", readme),
    ];
    for (file, text) in files {
        let path = crate_dir.join(file);
        visage_core::fs::write_atomic(&path, text.as_bytes())?;
    }
    Ok(crate_dir)
}

/// visage-core's path as the new crate's manifest should name it: relative
/// inside this workspace, absolute outside it.
fn core_path(crate_dir: &Path) -> PathBuf {
    let core = workspace_root().join("core/visage-core");
    let (Ok(root), Ok(parent)) = (
        std::fs::canonicalize(workspace_root()),
        std::fs::canonicalize(crate_dir.parent().unwrap_or(Path::new("."))),
    ) else {
        return core;
    };
    match parent.strip_prefix(&root) {
        Ok(inside) => {
            let up = inside.components().count() + 1;
            let mut rel: PathBuf = std::iter::repeat_n("..", up).collect();
            rel.push("core/visage-core");
            rel
        }
        Err(_) => std::fs::canonicalize(&core).unwrap_or(core),
    }
}
