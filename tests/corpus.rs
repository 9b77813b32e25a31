//! The bad-input corpus: every case feeds the runner one bad input (a
//! YAML file, a `--set`, a checkpoint, a run directory, an image, a plugin
//! file, a weight file, export and embed arguments) and asserts three
//! things:
//!
//! 1. the runner exits with a clean error (exit code 1), not a signal or
//!    a panic;
//! 2. the message names the file or the key;
//! 3. nothing outside the run's own new directory changed.
//!
//! Each family is a module under `tests/corpus/`.

#[path = "corpus/cli.rs"]
mod cli;
mod common;
#[path = "corpus/harness.rs"]
mod harness;
#[path = "corpus/images.rs"]
mod images;
#[path = "corpus/plugins.rs"]
mod plugins;
#[path = "corpus/run_dirs.rs"]
mod run_dirs;
#[path = "corpus/weights.rs"]
mod weights;
#[path = "corpus/yaml.rs"]
mod yaml;
