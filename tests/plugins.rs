//! The plugin host: out-of-tree plugins (the fixtures here and one crate of
//! each kind made by `runner new-plugin`) are built in a folder outside the
//! workspace's member list, then discovered and loaded; wrong declaration
//! versions, a plugin built against a visage-core with other definitions (an
//! ABI fingerprint of its own), duplicate names and panics are refused with
//! clear errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{fails, ok, root, runner, runner_with_env};

const FIXTURES: &[&str] = &["wrong_api", "duplicate", "panicky", "panicky_register"];
const KINDS: &[&str] = &[
    "backbone",
    "method",
    "task",
    "dataset",
    "augmentation",
    "metric",
    "optimizer",
    "scheduler",
];

/// Builds every out-of-tree plugin once; returns the folder holding one
/// sub-folder per plugin with its library.
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Under target/ so that the repository's .cargo/config.toml (the rpath) applies.
        let work = root().join("target/tmp/out-of-tree");
        let _ = std::fs::remove_dir_all(&work);
        let crates = work.join("crates");
        std::fs::create_dir_all(&crates).unwrap();
        let core = root().join("core/visage-core");
        let mut members = vec![];
        for name in FIXTURES {
            let src = root().join("tests/fixtures/plugins").join(name);
            let dst = crates.join(name);
            std::fs::create_dir_all(dst.join("src")).unwrap();
            let manifest = std::fs::read_to_string(src.join("Cargo.toml"))
                .unwrap()
                .replace("@CORE@", core.to_str().unwrap());
            std::fs::write(dst.join("Cargo.toml"), manifest).unwrap();
            std::fs::copy(src.join("src/lib.rs"), dst.join("src/lib.rs")).unwrap();
            members.push(name.to_string());
        }
        for kind in KINDS {
            let name = format!("{kind}_demo");
            ok(runner(&[
                "new-plugin",
                &name,
                "--kind",
                kind,
                "--dir",
                crates.to_str().unwrap(),
            ]));
            members.push(name);
        }
        let list: Vec<String> = members.iter().map(|m| format!("\"crates/{m}\"")).collect();
        std::fs::write(
            work.join("Cargo.toml"),
            format!("[workspace]\nresolver = \"2\"\nmembers = [{}]\n", list.join(", ")),
        )
        .unwrap();
        std::fs::copy(root().join("Cargo.lock"), work.join("Cargo.lock")).unwrap();
        let release = cargo_build(&work, &[]);
        let out = work.join("libs");
        for name in &members {
            let file = format!("lib{name}.{}", std::env::consts::DLL_EXTENSION);
            std::fs::create_dir_all(out.join(name)).unwrap();
            std::fs::copy(release.join(&file), out.join(name).join(&file)).unwrap();
        }
        out
    })
}

/// Builds `tests/fixtures/plugins/abi_changed` against a copy of
/// visage-core whose `Task` trait has one more (default) method; returns the
/// folder holding its library. A workspace of its own: Cargo refuses two path
/// packages named visage-core in one lock file. Built like [`built`].
fn built_against_changed_core() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let work = root().join("target/tmp/abi-changed");
        let _ = std::fs::remove_dir_all(&work);
        let core = work.join("visage-core");
        copy_dir(&root().join("core/visage-core"), &core);
        let task = core.join("src/components/task.rs");
        let text = std::fs::read_to_string(&task).unwrap();
        let changed = text.replacen(
            "pub trait Task {\n",
            "pub trait Task {\n    /// Added by tests/plugins.rs.\n    fn abi_changed(&self) -> u64 {\n        0\n    }\n",
            1,
        );
        assert_ne!(changed, text, "the copy's `pub trait Task` was not found");
        std::fs::write(&task, changed).unwrap();

        let src = root().join("tests/fixtures/plugins/abi_changed");
        let dst = work.join("abi_changed");
        std::fs::create_dir_all(dst.join("src")).unwrap();
        let manifest = std::fs::read_to_string(src.join("Cargo.toml"))
            .unwrap()
            .replace("@CORE@", core.to_str().unwrap());
        std::fs::write(dst.join("Cargo.toml"), manifest).unwrap();
        std::fs::copy(src.join("src/lib.rs"), dst.join("src/lib.rs")).unwrap();

        // The repository's manifest, for the copy's inherited package fields and dependencies.
        let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let members = workspace.lines().find(|l| l.starts_with("members = ["));
        let path = "visage-core = { path = \"core/visage-core\" }";
        let Some(members) = members.filter(|_| workspace.contains(path)) else {
            panic!("no `members = [...]` line or no visage-core path in {workspace}");
        };
        let workspace = workspace
            .replace(members, "members = [\"visage-core\", \"abi_changed\"]")
            .replace(path, "visage-core = { path = \"visage-core\" }");
        std::fs::write(work.join("Cargo.toml"), workspace).unwrap();
        std::fs::copy(root().join("Cargo.lock"), work.join("Cargo.lock")).unwrap();

        let release = cargo_build(&work, &["-p", "visage-fixture-abi_changed"]);
        let file = format!("libabi_changed.{}", std::env::consts::DLL_EXTENSION);
        let out = work.join("libs");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::copy(release.join(&file), out.join(&file)).unwrap();
        out
    })
}

/// Builds the workspace at `work` in release mode; returns the folder of its
/// libraries. They go to `target/fixtures`, away from the runner's folder
/// (the runner would load them as plugins), while the intermediate files
/// share the repository's build directory (`build.build-dir`): the
/// dependencies the workspace already compiled with the same features
/// (torch-sys and its C++ wrapper among them) are reused, not rebuilt.
fn cargo_build(work: &Path, args: &[&str]) -> PathBuf {
    let target = root().join("target/fixtures");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--offline", "--quiet"])
        .args(args)
        .current_dir(work)
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_BUILD_BUILD_DIR", root().join("target"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {} failed", work.display());
    target.join("release")
}

/// Copies a crate's files, without any `target` folder.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&path, &to.join(entry.file_name()));
            }
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

fn plugin_path(names: &[&str]) -> String {
    let dirs: Vec<PathBuf> = names.iter().map(|n| built().join(n)).collect();
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

#[test]
fn the_workspace_plugins_are_listed_with_their_schemas() {
    let out = ok(runner(&["plugins"]));
    assert!(out.starts_with("builtin 0.1.0 (built into the runner)\n"), "{out}");
    assert!(out.contains("\nexample 0.1.0 ("), "{out}");
    assert!(
        out.contains("  task example_classification [linear_probe]\n    params: {"),
        "{out}"
    );
    assert!(out.contains("  optimizer sgd\n    params: {"), "{out}");
    let line = out
        .lines()
        .skip_while(|l| *l != "  backbone example_convnet")
        .nth(1)
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(line.trim_start().strip_prefix("params: ").unwrap()).unwrap();
    assert_eq!(schema["properties"]["width"]["default"], 16);
    // A paper's backbones (and methods) are registered by its plugin, not by the host.
    let components = |plugin: &str| -> Vec<&str> {
        let header = format!("{plugin} 0.1.0 (");
        out.lines()
            .skip_while(|l| !l.starts_with(&header))
            .skip(1)
            .take_while(|l| l.starts_with(' '))
            .filter(|l| !l.trim_start().starts_with("params: "))
            .collect()
    };
    assert_eq!(components("pcl"), ["  backbone facecycle", "  method pcl"], "{out}");
    assert_eq!(components("moco"), ["  method moco_v3"], "{out}");
    assert_eq!(components("mcf"), ["  method mcf"], "{out}");
    assert_eq!(
        components("lafs"),
        ["  backbone fvit", "  backbone mobilenet_v3", "  method lafs"],
        "{out}"
    );
    assert!(!components("builtin").contains(&"  backbone fvit"), "{out}");
    let abi = format!("\nABI fingerprint: {} (visage-core 0.1.0)\n", visage_core::ABI);
    assert!(out.ends_with(&abi), "{out}");
}

#[test]
fn scaffolded_plugins_of_every_kind_build_load_and_run() {
    let names: Vec<String> = KINDS.iter().map(|k| format!("{k}_demo")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let path = plugin_path(&refs);
    let out = ok(runner_with_env(&["plugins"], &[("VISAGE_PLUGIN_PATH", &path)]));
    for kind in KINDS {
        assert!(out.contains(&format!("\n{kind}_demo 0.1.0 (")), "{kind}: {out}");
        assert!(out.contains(&format!("  {kind} {kind}_demo")), "{kind}: {out}");
    }
    // An experiment made only of scaffolded components runs end to end.
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("demo.yaml");
    std::fs::write(
        &experiment,
        "name: demo\nseed: 1\ndevice: cpu\nbackbone: {name: backbone_demo, params: {dim: 8}}\n\
         pretrain:\n  method: {name: method_demo}\n  dataset: {name: dataset_demo, params: {count: 64}}\n\
         \x20 augmentations: [{name: augmentation_demo}]\n  steps: 20\n  batch_size: 16\n\
         \x20 optimizer: {name: optimizer_demo, params: {lr: 0.05}}\n  scheduler: {name: scheduler_demo, params: {every: 10, gamma: 0.5}}\n\
         evaluations:\n  - task: {name: task_demo}\n    protocol: linear_probe\n    dataset: {name: dataset_demo, params: {count: 90}}\n",
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    ok(runner_with_env(
        &[experiment.to_str().unwrap(), "--out", run_dir.to_str().unwrap()],
        &[("VISAGE_PLUGIN_PATH", &path)],
    ));
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["status"], "completed");
    let accuracy = results["evaluations"][0]["metrics"]["accuracy"].as_f64().unwrap();
    // Dominant colour from 8 projected channel means: far above the 33 % of chance.
    assert!(accuracy > 60.0, "{results}");
    let loss = &results["pretrain"];
    assert!(
        loss["final_losses"]["method_demo"].as_f64().unwrap() < loss["first_losses"]["method_demo"].as_f64().unwrap(),
        "{loss}"
    );
}

#[test]
fn a_wrong_api_version_is_refused_with_both_sides() {
    let stderr = fails(runner_with_env(
        &["plugins"],
        &[("VISAGE_PLUGIN_PATH", &plugin_path(&["wrong_api"]))],
    ));
    assert!(
        stderr.contains("plugin `wrong_api` was built for a different host and was not loaded"),
        "{stderr}"
    );
    let versions = format!(
        "  declaration version: host {}, plugin 999",
        visage_core::DECLARATION_VERSION
    );
    assert!(stderr.contains(&versions), "{stderr}");
    // A declaration of another layout: its fingerprint is not read.
    assert!(!stderr.contains("ABI fingerprint"), "{stderr}");
    assert!(!stderr.contains("called register"), "{stderr}");
}

#[test]
fn a_plugin_built_against_other_core_definitions_is_refused_by_its_abi_fingerprint() {
    let libs = built_against_changed_core();
    let stderr = fails(runner_with_env(
        &["plugins"],
        &[("VISAGE_PLUGIN_PATH", libs.to_str().unwrap())],
    ));
    assert!(
        stderr.contains("plugin `abi_changed` was built for a different host and was not loaded:\n  ABI fingerprint: "),
        "{stderr}"
    );
    // Same version number, same toolchain, same layouts: only the definitions differ.
    let host = visage_core::ABI;
    let line = stderr.lines().find(|l| l.starts_with("  ABI fingerprint: ")).unwrap();
    let plugin = line
        .strip_prefix(&format!("  ABI fingerprint: host {host}, plugin "))
        .and_then(|rest| rest.strip_suffix(" (visage-core host 0.1.0, plugin 0.1.0)"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let (source, layout) = plugin.split_once('/').unwrap();
    assert!(
        source.len() == 16 && u64::from_str_radix(source, 16).unwrap() != host.source,
        "{line}"
    );
    assert_eq!(layout, format!("{:016x}", host.layout), "{line}");
    let mismatches = stderr.lines().filter(|l| l.contains(": host ")).count();
    assert_eq!(mismatches, 1, "only the fingerprint differs: {stderr}");
    assert!(stderr.contains("rebuild it against this visage-core"), "{stderr}");
    assert!(!stderr.contains("called register"), "{stderr}");

    // The workspace's own plugins, built against this visage-core, still load.
    let out = ok(runner(&["plugins"]));
    assert!(
        out.contains("\nexample 0.1.0 (") && out.contains("\nsynthface 0.1.0 ("),
        "{out}"
    );
}

#[test]
fn two_plugins_registering_one_name_are_both_named() {
    let stderr = fails(runner_with_env(
        &["plugins"],
        &[("VISAGE_PLUGIN_PATH", &plugin_path(&["duplicate"]))],
    ));
    assert!(stderr.contains("plugin `duplicate` failed to register its components: backbone `example_convnet` is registered twice: by plugin `example` and by plugin `duplicate`"), "{stderr}");
    assert!(stderr.contains("libexample.so)"), "{stderr}");
    assert!(stderr.contains("duplicate/libduplicate.so"), "{stderr}");
}

#[test]
fn the_same_plugin_found_twice_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_BIN_EXE_runner")).with_file_name("libexample.so");
    std::fs::copy(&example, dir.path().join("libexample_copy.so")).unwrap();
    let stderr = fails(runner_with_env(
        &["plugins"],
        &[("VISAGE_PLUGIN_PATH", dir.path().to_str().unwrap())],
    ));
    assert!(stderr.contains("plugin `example` is declared twice"), "{stderr}");
}

#[test]
fn a_panic_during_registration_is_contained() {
    let stderr = fails(runner_with_env(
        &["plugins"],
        &[("VISAGE_PLUGIN_PATH", &plugin_path(&["panicky_register"]))],
    ));
    assert!(stderr.contains("plugin `panicky_register` failed to register its components: plugin registration panicked: deliberate panic during registration"), "{stderr}");
}

#[test]
fn a_panic_inside_a_component_is_contained() {
    let path = plugin_path(&["panicky"]);
    let dir = tempfile::tempdir().unwrap();
    let run = |panic_in: &str| {
        let out = dir.path().join(panic_in);
        let set = format!("backbone={{name: panicky_backbone, params: {{panic_in: {panic_in}}}}}");
        let args = [
            "tests/fixtures/config/base.yaml",
            "--set",
            &set,
            "--set",
            "device=cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        (fails(runner_with_env(&args, &[("VISAGE_PLUGIN_PATH", &path)])), out)
    };
    let (stderr, _) = run("build");
    assert!(
        stderr.contains("backbone panicky_backbone panicked: deliberate panic while building"),
        "{stderr}"
    );
    let (stderr, out) = run("forward");
    assert!(
        stderr.contains("backbone panicky_backbone panicked: index out of bounds"),
        "{stderr}"
    );
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["status"], "failed");
    assert!(
        results["error"]
            .as_str()
            .unwrap()
            .contains("panicked: index out of bounds"),
        "{results}"
    );
}

#[test]
fn new_plugin_refuses_bad_names_and_existing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(fails(runner(&["new-plugin", "My-Plugin", "--kind", "task", "--dir", d])).contains("must be snake_case"));
    ok(runner(&["new-plugin", "mine", "--kind", "task", "--dir", d]));
    assert!(fails(runner(&["new-plugin", "mine", "--kind", "task", "--dir", d])).contains("already exists"));
    let manifest = std::fs::read_to_string(dir.path().join("mine/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"visage-plugin-mine\"") && manifest.contains("crate-type = [\"cdylib\"]"),
        "{manifest}"
    );
}
