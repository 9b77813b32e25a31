//! Error helpers of the formats: `ensure!`/`bail!` that build a
//! [`visage_core::Error`] from a sentence, and [`Context`] to prefix an
//! error with where it happened.

use std::fmt::Display;

use visage_core::{Error, Result};

/// Returns `Err(Error::msg(format!(...)))` unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(visage_core::Error::msg(format!($($arg)+)));
        }
    };
}

/// Returns `Err(Error::msg(format!(...)))`.
macro_rules! bail {
    ($($arg:tt)+) => {
        return Err(visage_core::Error::msg(format!($($arg)+)))
    };
}

pub(crate) use {bail, ensure};

/// Prefixes an error with where it happened: `"<context>: <error>"`.
pub trait Context<T> {
    /// The error prefixed with `context`.
    fn context(self, context: impl Display) -> Result<T>;
    /// The error prefixed with the context `f` computes (only on error).
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Display) -> Result<T> {
        self.map_err(|e| Error::msg(format!("{context}: {}", e.into())))
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::msg(format!("{}: {}", f(), e.into())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Display) -> Result<T> {
        self.ok_or_else(|| Error::msg(context))
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| Error::msg(f()))
    }
}

/// An I/O error on `path` as `"<path>: <what>: <os error>"`.
pub fn io_error(path: &std::path::Path, what: &str, e: std::io::Error) -> Error {
    Error::msg(format!("{}: {what}: {e}", path.display()))
}
