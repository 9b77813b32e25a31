//! Mixed precision: autocast regions on the CPU and on CUDA, with the
//! reduced-precision dtype chosen (bfloat16 or float16).
//!
//! Inside a region, libtorch runs the ops of its autocast lists (matmul,
//! convolutions, linear layers) in the reduced dtype and keeps the
//! precision-sensitive ones in float32, exactly as PyTorch's
//! `torch.autocast(device_type, dtype)` does, because the switches are the
//! same libtorch functions. (The lists differ per device: on the CPU,
//! softmax and layer norm follow their input's dtype and losses run in
//! float32.) tch 0.24 exposes neither the dtype nor CPU autocast, so they
//! are reached through a small C++ shim, `csrc/autocast.cpp`. Regions nest
//! and restore the previous state when they end, also on error or panic.
//! The state is per thread, as in libtorch.
//!
//! ```
//! use tch::{Device, Kind, Tensor};
//! let w = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
//! let x = Tensor::ones([2, 4], (Kind::Float, Device::Cpu));
//! let y = visage_core::amp::autocast(Device::Cpu, Kind::BFloat16, || x.matmul(&w)).unwrap();
//! assert_eq!(y.kind(), Kind::BFloat16);
//! assert_eq!(x.matmul(&w).kind(), Kind::Float);
//! ```

use std::marker::PhantomData;
use std::os::raw::c_int;

use tch::{Device, Kind};

use crate::{Error, Result};

extern "C" {
    fn visage_autocast_enter(device: c_int, dtype: c_int, was_enabled: *mut c_int, was_dtype: *mut c_int) -> c_int;
    fn visage_autocast_exit(device: c_int, was_enabled: c_int, was_dtype: c_int) -> c_int;
    fn visage_autocast_state(device: c_int, dtype: *mut c_int) -> c_int;
}

/// c10::ScalarType codes of the dtypes autocast takes.
const HALF: c_int = 5;
const FLOAT: c_int = 6;
const BFLOAT16: c_int = 15;

/// An autocast region, open until dropped. Not `Send`: libtorch keeps the
/// autocast state per thread.
#[derive(Debug)]
pub struct Autocast {
    device: c_int,
    was_enabled: c_int,
    was_dtype: c_int,
    _thread_bound: PhantomData<*const ()>,
}

impl Autocast {
    /// Opens an autocast region on `device` (the CPU or any CUDA device:
    /// libtorch switches per device type) casting to `kind`, which must be
    /// `Kind::BFloat16` or `Kind::Half`.
    pub fn enter(device: Device, kind: Kind) -> Result<Self> {
        let code = device_code(device)?;
        let dtype = match kind {
            Kind::BFloat16 => BFLOAT16,
            Kind::Half => HALF,
            other => {
                return Err(Error::msg(format!(
                    "autocast casts to bfloat16 or float16, not {other:?}"
                )))
            }
        };
        let (mut was_enabled, mut was_dtype) = (0, FLOAT);
        // SAFETY: the shim only writes the two out-parameters, which live on this stack.
        let status = unsafe { visage_autocast_enter(code, dtype, &mut was_enabled, &mut was_dtype) };
        if status != 0 {
            return Err(Error::msg(format!(
                "libtorch refused autocast to {kind:?} on {device:?}"
            )));
        }
        Ok(Autocast {
            device: code,
            was_enabled,
            was_dtype,
            _thread_bound: PhantomData,
        })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: restores the state `enter` read; the device code was valid then.
        let status = unsafe { visage_autocast_exit(self.device, self.was_enabled, self.was_dtype) };
        if status != 0 {
            tracing::error!("libtorch failed to leave an autocast region");
        }
    }
}

/// Runs `f` in an autocast region on `device` casting to `kind`
/// (`Kind::BFloat16` or `Kind::Half`).
pub fn autocast<T>(device: Device, kind: Kind, f: impl FnOnce() -> T) -> Result<T> {
    let _region = Autocast::enter(device, kind)?;
    Ok(f())
}

/// The dtype autocast casts to on `device` on this thread, or `None` when
/// autocast is off there.
pub fn autocast_kind(device: Device) -> Result<Option<Kind>> {
    let code = device_code(device)?;
    let mut dtype = FLOAT;
    // SAFETY: the shim only writes `dtype`.
    let enabled = unsafe { visage_autocast_state(code, &mut dtype) };
    match (enabled, dtype) {
        (0, _) => Ok(None),
        (1, BFLOAT16) => Ok(Some(Kind::BFloat16)),
        (1, HALF) => Ok(Some(Kind::Half)),
        (1, FLOAT) => Ok(Some(Kind::Float)),
        _ => Err(Error::msg(format!(
            "unexpected autocast state on {device:?}: {enabled}, dtype {dtype}"
        ))),
    }
}

fn device_code(device: Device) -> Result<c_int> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        other => Err(Error::msg(format!("autocast runs on the CPU or CUDA, not {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    fn linear_output() -> Tensor {
        let x = Tensor::ones([2, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::ones([3, 8], (Kind::Float, Device::Cpu));
        x.linear::<Tensor>(&w, None)
    }

    #[test]
    fn bf16_region_casts_linear_layers_and_restores_the_state() {
        assert_eq!(autocast_kind(Device::Cpu).unwrap(), None);
        let inside = autocast(Device::Cpu, Kind::BFloat16, || {
            assert_eq!(autocast_kind(Device::Cpu).unwrap(), Some(Kind::BFloat16));
            linear_output().kind()
        })
        .unwrap();
        assert_eq!(inside, Kind::BFloat16);
        assert_eq!(linear_output().kind(), Kind::Float);
        assert_eq!(autocast_kind(Device::Cpu).unwrap(), None);
    }

    #[test]
    fn regions_nest_and_keep_precision_sensitive_ops_in_float() {
        autocast(Device::Cpu, Kind::BFloat16, || {
            // Losses such as MSE are on the CPU autocast float32 list.
            let y = linear_output();
            assert_eq!(y.mse_loss(&y.zeros_like(), tch::Reduction::Mean).kind(), Kind::Float);
            autocast(Device::Cpu, Kind::Half, || {
                assert_eq!(linear_output().kind(), Kind::Half)
            })
            .unwrap();
            assert_eq!(autocast_kind(Device::Cpu).unwrap(), Some(Kind::BFloat16));
        })
        .unwrap();
        assert_eq!(autocast_kind(Device::Cpu).unwrap(), None);
    }

    #[test]
    fn a_panic_inside_a_region_still_restores_the_state() {
        let result = std::panic::catch_unwind(|| {
            autocast(Device::Cpu, Kind::BFloat16, || panic!("inside")).unwrap();
        });
        assert!(result.is_err());
        assert_eq!(autocast_kind(Device::Cpu).unwrap(), None);
        assert_eq!(linear_output().kind(), Kind::Float);
    }

    #[test]
    fn other_dtypes_and_devices_are_refused() {
        let e = Autocast::enter(Device::Cpu, Kind::Float).unwrap_err();
        assert!(e.to_string().contains("bfloat16 or float16"), "{e}");
        let e = Autocast::enter(Device::Mps, Kind::BFloat16).unwrap_err();
        assert!(e.to_string().contains("CPU or CUDA"), "{e}");
    }
}
