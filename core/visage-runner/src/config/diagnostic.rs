//! Configuration errors that name the file, line and column, the key path,
//! what was expected, and a close name when there is one.

use std::fmt;
use std::path::PathBuf;

use super::locate::Position;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A line of an experiment file.
    File {
        /// The file, as the user named it (or as reached through `extends`).
        file: PathBuf,
        /// The position of the key, when known.
        position: Option<Position>,
    },
    /// A `VISAGE_*` environment variable.
    Env(String),
    /// A `--set key=value` argument.
    Set(String),
    /// A default of Visage or of the component.
    Default,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File {
                file,
                position: Some(p),
            } => write!(f, "{}:{}:{}", file.display(), p.line, p.column),
            Place::File { file, position: None } => write!(f, "{}", file.display()),
            Place::Env(var) => write!(f, "environment variable {var}"),
            Place::Set(arg) => write!(f, "--set {arg}"),
            Place::Default => write!(f, "default"),
        }
    }
}

/// One problem with a configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the offending value (or its nearest written ancestor) came from.
    pub place: Place,
    /// Dotted key path, e.g. `pretrain.optimizer.params.lr`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// A close name, when one exists.
    pub suggestion: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_empty() {
            "(top level)".to_string()
        } else {
            format!("`{}`", self.key)
        };
        write!(f, "{}: {key}: {}", self.place, self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, "\n  help: did you mean `{s}`?")?;
        }
        Ok(())
    }
}

/// Everything that can be wrong with an experiment before anything is built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read the experiment file: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is a FIFO, a device or a directory, not a regular file.
    #[error("{}: cannot read the experiment file: it is {kind}; an experiment file must be a regular file", file.display())]
    NotAFile {
        /// The file.
        file: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than any experiment.
    #[error("{}: cannot read the experiment file: it has {size} bytes, more than the {} MiB an experiment file may have",
        file.display(), super::load::MAX_FILE_BYTES >> 20)]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// An `extends` entry names a missing file.
    #[error("{at}: `extends`: {} does not exist", target.display())]
    MissingExtends {
        /// The `extends` entry.
        at: Place,
        /// The file it names.
        target: PathBuf,
    },
    /// Files extend each other in a circle.
    #[error("`extends` forms a cycle: {}", chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> "))]
    Cycle {
        /// The files, ending with the first one again.
        chain: Vec<PathBuf>,
    },
    /// The YAML does not parse.
    #[error("{at}: YAML syntax error: {message}")]
    Syntax {
        /// Where.
        at: Place,
        /// What the parser said.
        message: String,
    },
    /// A `--set` argument is not `key.path=value`.
    #[error("--set {arg}: {message}")]
    BadSet {
        /// The argument.
        arg: String,
        /// What is wrong.
        message: String,
    },
    /// A value does not fit the experiment's or a component's schema.
    #[error("{0}")]
    Invalid(Diagnostic),
}

/// The closest candidate to `word`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and the same
/// for variants): the unknown name and the expected ones.
pub fn unknown_and_expected(message: &str) -> Option<(String, Vec<String>)> {
    if !(message.starts_with("unknown field") || message.starts_with("unknown variant")) {
        return None;
    }
    let mut names = message.split('`').skip(1).step_by(2).map(String::from);
    let unknown = names.next()?;
    Some((unknown, names.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("lerning_rate", ["learning_rate", "momentum"]),
            Some("learning_rate".into())
        );
        assert_eq!(
            did_you_mean("example_convnt", ["example_convnet"]),
            Some("example_convnet".into())
        );
        assert_eq!(did_you_mean("xyz", ["learning_rate", "momentum"]), None);
    }

    #[test]
    fn parses_serde_unknown_messages() {
        let (u, e) = unknown_and_expected("unknown field `stpes`, expected one of `steps`, `batch_size`").unwrap();
        assert_eq!(u, "stpes");
        assert_eq!(e, vec!["steps", "batch_size"]);
        assert!(unknown_and_expected("missing field `name`").is_none());
    }
}
