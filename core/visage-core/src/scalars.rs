//! Values a method or task records that are not losses: a temperature, a
//! momentum, the norm of DINO's centre, a head's training accuracy. The
//! trainer writes them with the step they were recorded in, to
//! `metrics.jsonl` (under `values`) and TensorBoard.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A shared handle to the values recorded during the current step; clones
/// record into the same place.
///
/// ```
/// let log = visage_core::scalars::Scalars::default();
/// let method_side = log.clone();
/// method_side.record("temperature/teacher", 0.04);
/// assert_eq!(log.take()["temperature/teacher"], 0.04);
/// assert!(log.take().is_empty());
/// ```
#[derive(Clone, Default, Debug)]
pub struct Scalars(Rc<RefCell<BTreeMap<String, f64>>>);

impl Scalars {
    /// Records `value` under `name` (TensorBoard tag), replacing an earlier
    /// value of this step.
    pub fn record(&self, name: impl Into<String>, value: f64) {
        self.0.borrow_mut().insert(name.into(), value);
    }

    /// The values recorded since the last call, which are cleared.
    pub fn take(&self) -> BTreeMap<String, f64> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}
