//! Panic containment at the plugin boundary.
//!
//! A plugin is a `cdylib` with its own copy of the Rust runtime, and a panic
//! must never unwind from one copy into another. Every object a plugin hands
//! the host is wrapped in [`Guarded`], whose methods are compiled into the
//! plugin (they are generic) and catch panics there, returning
//! [`Error::Panic`](crate::Error::Panic) instead.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::{Error, Result};

/// Calls `f`, turning a panic into [`Error::Panic`] labelled with `component`.
pub fn call<T>(component: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(Error::Panic {
            component: component.to_string(),
            message: panic_message(payload.as_ref()),
        }),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}

/// A component wrapped so that each of its methods runs under [`call`].
pub struct Guarded<T> {
    pub(crate) label: String,
    pub(crate) inner: T,
}

impl<T> Guarded<T> {
    /// Wraps `inner`; `label` names it in errors (e.g. `backbone resnet18`).
    pub fn new(label: impl Into<String>, inner: T) -> Self {
        Guarded {
            label: label.into(),
            inner,
        }
    }

    /// Runs `f` on the inner component with panics contained.
    pub(crate) fn run<R>(&self, f: impl FnOnce(&T) -> Result<R>) -> Result<R> {
        call(&self.label, || f(&self.inner))
    }

    /// Runs `f` on the inner component mutably with panics contained.
    pub(crate) fn run_mut<R>(&mut self, f: impl FnOnce(&mut T) -> Result<R>) -> Result<R> {
        let Guarded { label, inner } = self;
        call(label, || f(inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_component() {
        let err = call::<()>("backbone broken", || panic!("shape mismatch")).unwrap_err();
        assert_eq!(err.to_string(), "backbone broken panicked: shape mismatch");
        let ok = call("fine", || Ok(3)).unwrap();
        assert_eq!(ok, 3);
    }
}
