//! The error type every component returns.
//!
//! Errors cross the plugin boundary, so they hold only std types and
//! libtorch's own error.

use std::fmt;

/// Result alias used throughout Visage.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong inside a component or at the plugin boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A component's parameters did not deserialise into its typed form.
    #[error("{0}")]
    Params(#[from] ParamsError),
    /// Code inside a component panicked; the panic was caught on its side of
    /// the plugin boundary.
    #[error("{component} panicked: {message}")]
    Panic {
        /// `kind name`, e.g. `backbone example_convnet`.
        component: String,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// Two plugins register the same component name.
    #[error("{kind} `{name}` is registered twice: by plugin `{first}` and by plugin `{second}`")]
    Duplicate {
        /// The component kind.
        kind: crate::Kind,
        /// The component name both plugins use.
        name: String,
        /// The plugin that registered it first.
        first: String,
        /// The plugin that tried to register it again.
        second: String,
    },
    /// A feature, protocol or option that is not implemented.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// libtorch reported an error. Its message is shown without libtorch's
    /// C++ stack trace (see [`torch_message`]).
    #[error("libtorch: {}", torch_summary(&.0.to_string()))]
    Torch(tch::TchError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A data file that cannot be read or decoded (missing, unreadable,
    /// truncated, corrupt, not an image). `skip` says whether the dataset was
    /// configured with `on_bad_sample: skip`, in which case the data loader
    /// replaces the sample instead of failing (see [`crate::data`]).
    #[error("{path}: {message}")]
    BadSample {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
        /// Whether the loader may skip it.
        skip: bool,
    },
    /// Anything else, as a sentence.
    #[error("{0}")]
    Message(String),
}

impl Error {
    /// An error from a formatted sentence.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Message(message.to_string())
    }
}

impl From<tch::TchError> for Error {
    /// Keeps libtorch's error; its full text (with the C++ stack trace,
    /// which the error's message leaves out) is logged at `debug` under
    /// the target [`TORCH_TRACE`].
    fn from(e: tch::TchError) -> Self {
        log_torch_trace(&e.to_string());
        Error::Torch(e)
    }
}

/// The `tracing` target of libtorch's full error texts: the runner's JSON
/// log (`log.jsonl`) records it at `debug`, the terminal only when asked.
pub const TORCH_TRACE: &str = "libtorch";

/// The first line of a libtorch error text: its message, without the
/// "Exception raised from ..." line and the `frame #N` lines of the C++
/// stack trace that libtorch appends, and without tch's
/// "Internal torch error: " prefix.
pub fn torch_summary(text: &str) -> &str {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    line.strip_prefix("Internal torch error: ").unwrap_or(line)
}

/// A libtorch error as one line for the user ([`torch_summary`]), with the
/// full text logged at `debug` under [`TORCH_TRACE`]. Use it wherever a
/// [`tch::TchError`] becomes part of a message.
pub fn torch_message(e: &tch::TchError) -> String {
    let text = e.to_string();
    log_torch_trace(&text);
    torch_summary(&text).to_string()
}

fn log_torch_trace(text: &str) {
    if text.lines().nth(1).is_some() {
        tracing::debug!(target: TORCH_TRACE, trace = %text, "libtorch error: {}", torch_summary(text));
    }
}

/// Parameters that do not fit a component's parameter type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsError {
    /// Key path inside the component's `params`, e.g. `["layers", "0"]`.
    pub path: Vec<String>,
    /// serde's message, e.g. "unknown field `widht`, expected one of `width`, `depth`".
    pub message: String,
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid parameters: {}", self.message)
        } else {
            write!(f, "invalid parameters at `{}`: {}", self.path.join("."), self.message)
        }
    }
}

impl std::error::Error for ParamsError {}
