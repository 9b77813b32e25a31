//! Visage plugin `{{name}}`: a learning-rate schedule. Registered as `{{name}}`.
//!
//! Step decay: the factor is gamma^(step / every).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::scheduler::Scheduler;
use visage_core::{declare_plugin, Error, Registry, Result};

/// Parameters, checked before anything is built.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Steps between decays.
    pub every: u64,
    /// Multiplier applied at each decay.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
}

fn default_gamma() -> f64 {
    0.1
}

/// The schedule.
pub struct StepDecay(Params);

impl StepDecay {
    fn new(params: Params, _: &()) -> Result<Self> {
        if params.every == 0 {
            return Err(Error::msg("every must be positive"));
        }
        Ok(StepDecay(params))
    }
}

impl Scheduler for StepDecay {
    fn factor(&self, step: u64, _total: u64) -> Result<f64> {
        Ok(self.0.gamma.powi((step / self.0.every) as i32))
    }
}

fn register(registry: &mut Registry) -> Result<()> {
    registry.scheduler("{{name}}", StepDecay::new)
}

declare_plugin!(name: "{{name}}", register: register);
