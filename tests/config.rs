//! Experiments as typed, layered configuration: resolution snapshots,
//! origins, layering order, and errors that name the file, line, key and a
//! close name.

mod common;

use common::{fails, ok, root, runner, runner_with_env};

/// Every experiment file, as a path relative to the repository root.
fn experiment_files() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = vec![];
    walk(&root().join("experiments"), &mut files);
    files.sort();
    files
        .iter()
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect()
}

#[test]
fn every_experiment_resolves_to_its_snapshot() {
    let files = experiment_files();
    assert!(files.len() >= 2, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema="),
            "{file} must start with the schema line"
        );
        // The paper's settings name their data roots as required values,
        // with the `--set` lines to give them in the file's header.
        let sets = documented_sets(&text);
        let mut args = vec!["validate", file.as_str()];
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        let resolved = ok(runner(&args));
        let name = file.trim_end_matches(".yaml").replace('/', "__");
        insta::assert_snapshot!(format!("resolved__{name}"), resolved);
    }
}

/// The `--set KEY=VALUE` of the header's comment lines (`#   --set ...`),
/// the data roots an experiment under experiments/paper/ requires.
fn documented_sets(text: &str) -> Vec<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix("--set "))
        .map(|s| s.trim().trim_matches('\'').to_string())
        .collect()
}

#[test]
fn a_paper_experiment_without_its_data_root_is_refused_naming_the_key() {
    let stderr = fails(runner(&["validate", "experiments/paper/pcl_fer.yaml"]));
    assert!(
        stderr.contains("experiments/paper/pcl_base.yaml:")
            && stderr.contains("`pretrain.dataset.params`: missing field `root`"),
        "{stderr}"
    );
    let stderr = fails(runner(&[
        "validate",
        "experiments/paper/pcl_fer.yaml",
        "--set",
        "pretrain.dataset.params.root=/data/vox",
    ]));
    assert!(
        stderr.contains("`evaluations.0.dataset.params`: missing field `root` (parameters of dataset `rafdb`)"),
        "{stderr}"
    );
}

#[test]
fn the_resolved_form_runs_as_it_is() {
    let resolved = ok(runner(&["validate", "experiments/example.yaml"]));
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("resolved.yaml");
    std::fs::write(&copy, &resolved).unwrap();
    assert_eq!(ok(runner(&["validate", copy.to_str().unwrap()])), resolved);
}

#[test]
fn origins_name_the_layer_of_every_value() {
    let out = ok(runner_with_env(
        &[
            "validate",
            "experiments/example.yaml",
            "--origins",
            "--set",
            "pretrain.steps=5",
            "--set",
            "evaluations.0.task.params.epochs=7",
        ],
        &[("VISAGE_SEED", "7"), ("VISAGE_PRETRAIN__BATCH_SIZE", "16")],
    ));
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no `{key}` in\n{out}"))
            .to_string()
    };
    let has = |key: &str, value: &str, origin: &str| {
        let l = line(key);
        assert!(
            l.starts_with(&format!("{key}: {value} ")) && l.ends_with(&format!("# {origin}")),
            "{l:?} should be {value} from {origin}"
        );
    };
    has("name", "\"example\"", "experiments/example.yaml:6:1");
    has(
        "backbone.name",
        "\"example_convnet\"",
        "experiments/base/example_data.yaml:5:3",
    );
    has("seed", "7", "environment variable VISAGE_SEED");
    has(
        "pretrain.batch_size",
        "16",
        "environment variable VISAGE_PRETRAIN__BATCH_SIZE",
    );
    has("pretrain.steps", "5", "--set pretrain.steps=5");
    has(
        "evaluations.0.task.params.epochs",
        "7",
        "--set evaluations.0.task.params.epochs=7",
    );
    has("evaluations.0.random_init", "true", "default");
    has(
        "pretrain.augmentations.1.params.std",
        "0.03",
        "experiments/example.yaml:15:38",
    );
}

#[test]
fn later_layers_win() {
    let seed = |env: &[(&str, &str)], sets: &[&str]| {
        let mut args = vec!["validate", "experiments/example.yaml"];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = ok(runner_with_env(&args, env));
        out.lines().find_map(|l| l.strip_prefix("seed: ")).unwrap().to_string()
    };
    assert_eq!(seed(&[], &[]), "0"); // the file
    assert_eq!(seed(&[("VISAGE_SEED", "3")], &[]), "3"); // env over file
    assert_eq!(seed(&[("VISAGE_SEED", "3")], &["seed=4"]), "4"); // --set over env
    assert_eq!(seed(&[], &["seed=4", "seed=5"]), "5"); // the last --set
                                                       // The child file overrides its base: the base says name: example_data.
    let out = ok(runner(&["validate", "experiments/example.yaml"]));
    assert!(out.starts_with("name: example\n"), "{out}");
}

#[test]
fn plugin_defaults_are_filled_in() {
    let out = ok(runner(&["validate", "tests/fixtures/config/base.yaml"]));
    // example_convnet's params were {width: 4}; sgd's defaults appear too.
    assert!(
        out.contains("name: sgd\n    params:\n      lr: 0.1\n      momentum: 0.0\n      weight_decay: 0.0\n      nesterov: false\n      decay_norm_and_bias: false\n"),
        "{out}"
    );
    assert!(
        out.contains("name: example_rotation\n    params:\n      feature: pooled\n"),
        "{out}"
    );
}

/// Each bad input: the fixture (or arguments), then what the message must contain.
const ERRORS: &[(&str, &[&str], &[&str])] = &[
    ("unknown_key", &[], &["unknown_key.yaml:3:1: `pretrian`: unknown field `pretrian`", "did you mean `pretrain`?"]),
    ("wrong_type", &[], &["wrong_type.yaml:4:3: `pretrain.steps`: invalid type: string \"many\", expected u64"]),
    ("unknown_component", &[], &["unknown_component.yaml:4:3: `backbone.name`: unknown backbone `example_convnt`", "did you mean `example_convnet`?"]),
    ("bad_params", &[], &["bad_params.yaml:6:5: `backbone.params.widht`: unknown field `widht`, expected `width`", "did you mean `width`?"]),
    ("bad_params_in_list", &[], &["bad_params_in_list.yaml:7:16: `pretrain.augmentations.1.params.std`: invalid type: string \"a lot\", expected f64 (parameters of augmentation `example_noise`)"]),
    ("unknown_metric", &[], &["unknown_metric.yaml:8:9: `evaluations.0.metrics.0.name`: unknown metric `acuracy`", "did you mean `accuracy`?"]),
    ("missing_extends", &[], &["missing_extends.yaml:4:5: `extends`: tests/fixtures/config/nowhere/base.yaml does not exist"]),
    ("cycle_a", &[], &["`extends` forms a cycle: tests/fixtures/config/cycle_a.yaml -> tests/fixtures/config/cycle_b.yaml -> tests/fixtures/config/cycle_a.yaml"]),
    ("bad_protocol", &[], &["bad_protocol.yaml:5:5: `evaluations.0.protocol`: task `example_classification` does not implement the fine_tune protocol (it implements: linear_probe)"]),
    ("bad_protocol_name", &[], &["bad_protocol_name.yaml:5:5: `evaluations.0.protocol`: unknown variant `linear_prob`", "did you mean `linear_probe`?"]),
    ("bad_device", &[], &["bad_device.yaml:3:1: `device`: unknown device `gpu`; expected `auto`, `cpu`, `cuda` or `cuda:N`"]),
    ("syntax", &[], &["syntax.yaml:4:11: YAML syntax error: mapping values are not allowed in this context"]),
    ("missing_field", &[], &["missing_field.yaml:2:1: `pretrain`: missing field `batch_size`"]),
    ("not_a_mapping", &[], &["not_a_mapping.yaml:1:1: (top level): an experiment file must be a mapping"]),
    ("zero_lr", &[], &["zero_lr.yaml:4:35: `pretrain.optimizer.params.lr`: invalid value: floating point `0.0`, expected a positive finite number (parameters of optimizer `sgd`)"]),
    ("negative_lr", &[], &["negative_lr.yaml:7:7: `pretrain.optimizer.params.lr`: invalid value: floating point `-0.001`, expected a positive finite number (parameters of optimizer `adamw`)"]),
    ("nan_lr", &[], &["nan_lr.yaml:4:35: `pretrain.optimizer.params.lr`: expected a finite number, got `.nan`"]),
    ("infinite_lr", &[], &["infinite_lr.yaml:6:14: `pretrain.optimizer.params.lr`: expected a finite number, got `.inf`"]),
    ("zero_batch_size", &[], &["zero_batch_size.yaml:4:3: `pretrain.batch_size`: invalid value: integer `0`, expected a positive integer"]),
    ("zero_prefetch", &[], &["zero_prefetch.yaml:4:3: `pretrain.prefetch`: invalid value: integer `0`, expected a positive integer"]),
    ("zero_accumulate", &[], &["zero_accumulate.yaml:4:3: `pretrain.accumulate`: invalid value: integer `0`, expected a positive integer"]),
    ("too_many_workers", &[], &["too_many_workers.yaml:4:3: `pretrain.workers`: invalid value: integer `100000`, expected an integer in 0..=256"]),
    ("zero_count", &[], &["zero_count.yaml:4:44: `pretrain.dataset.params.count`: invalid value: integer `0`, expected a positive integer (parameters of dataset `example_shapes`)"]),
    ("zero_resolution", &[], &["zero_resolution.yaml:9:9: `evaluations.0.dataset.params.resolution`: invalid value: integer `0`, expected an integer in 8..=512 (parameters of dataset `example_shapes`)"]),
    ("duplicate_key", &[], &["duplicate_key.yaml:6:3: YAML syntax error: duplicate key `pretrain.steps` (first at line 4, column 3)"]),
    ("base", &["--set", "pretrain.steps"], &["--set pretrain.steps: expected key.path=value"]),
    ("base", &["--set", "evaluations.3.protocol=linear_probe"], &["--set evaluations.3.protocol=linear_probe: index 3 is out of range: the list has 1 items"]),
    ("base", &["--set", "pretrain.stepz=3"], &["--set pretrain.stepz=3: `pretrain.stepz`: unknown field `stepz`", "did you mean `steps`?"]),
];

#[test]
fn bad_experiments_are_reported_before_anything_is_built() {
    for (fixture, extra, expected) in ERRORS {
        let file = format!("tests/fixtures/config/{fixture}.yaml");
        let mut args = vec!["validate", file.as_str()];
        args.extend_from_slice(extra);
        let stderr = fails(runner(&args));
        for want in *expected {
            assert!(
                stderr.contains(want),
                "{fixture} {extra:?}: expected {want:?} in\n{stderr}"
            );
        }
        let name = if extra.is_empty() {
            fixture.to_string()
        } else {
            format!("{fixture}_{}", extra[1].replace(['.', '='], "_"))
        };
        insta::assert_snapshot!(format!("error__{name}"), stderr);
    }
}

#[test]
fn environment_errors_name_the_variable() {
    let stderr = fails(runner_with_env(
        &["validate", "experiments/example.yaml"],
        &[("VISAGE_PRETRAIN__STEPS", "many")],
    ));
    assert!(
        stderr.contains("environment variable VISAGE_PRETRAIN__STEPS: `pretrain.steps`: invalid type"),
        "{stderr}"
    );
    // Tool variables are not experiment keys.
    ok(runner_with_env(
        &["validate", "experiments/example.yaml"],
        &[("VISAGE_NO_BUILD", "1"), ("VISAGE_VENV", "/nowhere")],
    ));
}

#[test]
fn a_missing_file_is_named() {
    let stderr = fails(runner(&["validate", "experiments/nope.yaml"]));
    assert!(
        stderr.contains("experiments/nope.yaml: cannot read the experiment file"),
        "{stderr}"
    );
}

#[test]
fn the_committed_schema_is_current() {
    let generated = ok(runner(&["schema", "--stdout"]));
    let committed = std::fs::read_to_string(root().join("schemas/experiment.schema.json")).unwrap_or_default();
    assert!(
        generated == committed,
        "schemas/experiment.schema.json is stale: run `./runner schema`"
    );
    let schema: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let backbones = &schema["properties"]["backbone"]["oneOf"];
    let convnet = backbones
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["properties"]["name"]["const"] == "example_convnet")
        .unwrap();
    assert_eq!(
        convnet["properties"]["params"]["properties"]["width"]["type"],
        "integer"
    );
    let optimizers = &schema["$defs"]["Pretrain"]["properties"]["optimizer"]["oneOf"];
    assert_eq!(optimizers.as_array().unwrap().len(), 4);
}
