//! Property tests of the YAML loader: arbitrary bytes, YAML-like token
//! soup, and mutated valid experiments (and `--set` arguments) never panic
//! and either resolve or give an error that names the file (or the `--set`
//! argument) at fault. A few hundred cases each, so that they run in seconds.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::Resolved;

/// Valid, self-contained experiments (no `extends`) to mutate.
const VALID: &[&str] = &[
    include_str!("../../../../tests/fixtures/config/base.yaml"),
    "name: lists\nseed: 3\ndevice: cpu\nbackbone:\n  name: example_convnet\n  params: {width: 4}\npretrain:\n  \
     method: {name: example_rotation}\n  dataset: {name: example_shapes, params: {count: 16, resolution: 16}}\n  \
     augmentations:\n    - {name: example_flip}\n    - name: example_noise\n      params: {std: 0.1}\n  \
     views: [{count: 2, augmentations: [{name: example_flip}], shared_steps: [0]}]\n  steps: 2\n  \
     batch_size: 4\n  accumulate: 2\n  workers: 0\n  optimizer: {name: adamw, params: {lr: 1.0e-3, betas: [0.9, 0.99]}}\n  \
     scheduler: {name: cosine}\nevaluations: []\n",
    "name: anchors\nbackbone: &b {name: example_convnet, params: {width: 4}}\nevaluations:\n  - task: {name: \
     example_classification}\n    protocol: linear_probe\n    dataset: {name: example_shapes}\n    metrics: [{name: \
     accuracy}]\n    random_init: false\n",
];

/// Pieces of YAML, so that token soup is often nearly valid.
const TOKENS: &[&str] = &[
    "name",
    "backbone",
    "pretrain",
    "steps",
    "batch_size",
    "params",
    "lr",
    "extends",
    "evaluations",
    "device",
    ":",
    ": ",
    " ",
    "\n",
    "\n  ",
    "\n    ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "'",
    "\"",
    "#",
    "|",
    ">",
    "&a ",
    "*a",
    "<<: ",
    "!!str ",
    "!!binary ",
    "? ",
    "~",
    "null",
    "true",
    "3",
    "-1",
    "0",
    "1e999",
    ".nan",
    "-.inf",
    "0x10",
    "---\n",
    "...\n",
    "\t",
    "%YAML 1.2\n",
    "\u{feff}",
    "é",
    "\\",
    "\0",
];

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Loads `bytes` as `case.yaml` (and `sets`); panics propagate to proptest.
fn load(bytes: &[u8], sets: &[String]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("case.yaml");
    std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    if let Err(e) = Resolved::load(&path, sets) {
        let message = e.to_string();
        let names_file = message.contains(&path.display().to_string());
        let names_set = sets.iter().any(|s| message.contains(&format!("--set {s}")));
        prop_assert!(
            names_file || names_set,
            "the error names neither {} nor the --set: {message}",
            path.display()
        );
    }
    Ok(())
}

/// One edit of a file's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    InsertToken(usize, usize),
    DuplicateLine(usize),
    DeleteLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Replace(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Insert(p, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(p, t)| Edit::InsertToken(p, t)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::DeleteLine),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let at = |p: usize, len: usize| p % (len + 1);
        match *edit {
            Edit::Replace(p, b) if !bytes.is_empty() => {
                let i = p % bytes.len();
                bytes[i] = b;
            }
            Edit::Insert(p, b) => bytes.insert(at(p, bytes.len()), b),
            Edit::Delete(p) if !bytes.is_empty() => {
                bytes.remove(p % bytes.len());
            }
            Edit::InsertToken(p, t) => {
                let i = at(p, bytes.len());
                bytes.splice(i..i, TOKENS[t].bytes());
            }
            Edit::DuplicateLine(p) | Edit::DeleteLine(p) => {
                let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let i = p % lines.len();
                if matches!(edit, Edit::DuplicateLine(_)) {
                    lines.insert(i, lines[i].clone());
                } else {
                    lines.remove(i);
                }
                bytes = lines.join(&b'\n');
            }
            _ => {}
        }
    }
    bytes
}

#[test]
fn the_valid_experiments_resolve() {
    for text in VALID {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case.yaml");
        std::fs::write(&path, text).unwrap();
        Resolved::load(&path, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
    assert!(!Path::new("case.yaml").exists());
}

/// Cases the properties below once found, kept so that they always run.
#[test]
fn found_cases_name_the_file_or_the_set() {
    for text in [
        "? <<: ",
        "? [a]",
        "backbone: {[a]: 1}",
        "backbone:\n  params:\n    ? {k: v}\n    : 1\n",
    ] {
        let outcome = load(text.as_bytes(), &[]);
        assert!(outcome.is_ok(), "{text:?}: {outcome:?}");
    }
    let base = VALID[0].as_bytes();
    for set in ["backbone.params={[a]: 1}", "backbone={? [a]: 1}"] {
        let outcome = load(base, &[set.to_string()]);
        assert!(outcome.is_ok(), "--set {set}: {outcome:?}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_resolve_or_name_the_file(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        load(&bytes, &[])?;
    }

    #[test]
    fn yaml_token_soup_resolves_or_names_the_file(tokens in proptest::collection::vec(0..TOKENS.len(), 0..120)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        load(text.as_bytes(), &[])?;
    }

    #[test]
    fn mutated_experiments_resolve_or_name_the_file(
        which in 0..VALID.len(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        load(&apply(VALID[which], &edits), &[])?;
    }

    #[test]
    fn arbitrary_sets_resolve_or_name_the_argument(
        which in 0..VALID.len(),
        key in proptest::collection::vec(0..TOKENS.len(), 0..4),
        value in proptest::collection::vec(0..TOKENS.len(), 0..8),
    ) {
        let key: Vec<&str> = key.iter().map(|&t| TOKENS[t]).collect();
        let value: String = value.iter().map(|&t| TOKENS[t]).collect();
        let set = format!("{}={value}", key.join("."));
        load(VALID[which].as_bytes(), &[set])?;
    }
}
