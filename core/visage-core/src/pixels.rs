//! Pixel values between CPU float tensors and Rust slices, with no more
//! copies than needed: the plain-Rust image paths (decoding, colour
//! jitter, resizing) read a tensor's values in place and build their
//! output tensor with one copy.
//!
//! tch's `Tensor::from_slice` zero-fills a new tensor before copying into
//! it, and `Vec::try_from` zero-fills a vector before copying out; on a
//! 224 px view each costs a pass over 600 KB that [`to_tensor`] and
//! [`with_values`] avoid.

use tch::{Device, Kind, Tensor};

use crate::Result;

/// Whether `t` is a float tensor on the CPU (the plain-Rust paths' input).
pub(crate) fn is_cpu_float(t: &Tensor) -> bool {
    t.kind() == Kind::Float && t.device() == Device::Cpu
}

/// Calls `f` with the values of the CPU float tensor `t` in row-major
/// order (`t` is made contiguous first if it is not).
///
/// # Panics
/// If `t` is not a CPU float tensor (check [`is_cpu_float`]).
pub(crate) fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    assert!(is_cpu_float(t), "with_values needs a CPU float tensor");
    let t = t.f_contiguous()?;
    let n = t.numel();
    if n == 0 {
        return Ok(f(&[]));
    }
    // SAFETY: `t` is a contiguous CPU float tensor of `n` initialised values;
    // it outlives the borrow, and nothing writes to it meanwhile (`t` is
    // either a new contiguous copy or the caller's tensor, borrowed shared).
    let values = unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, n) };
    Ok(f(values))
}

/// A new CPU float tensor of shape `size` holding `values` (one copy, no
/// zero-fill).
///
/// # Errors
/// If `values` does not have the number of elements `size` describes.
pub(crate) fn to_tensor(values: &[f32], size: &[i64]) -> Result<Tensor> {
    let n: i64 = size.iter().product();
    if n != values.len() as i64 {
        return Err(crate::Error::msg(format!(
            "{} values cannot fill a tensor of shape {size:?}",
            values.len()
        )));
    }
    let t = Tensor::f_empty(size, (Kind::Float, Device::Cpu))?;
    if n > 0 {
        // SAFETY: `t` is a new contiguous CPU float tensor of exactly
        // `values.len()` elements, not aliased by `values`.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), t.data_ptr() as *mut f32, values.len()) };
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_tensors_in_row_major_order() {
        let values: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
        let t = to_tensor(&values, &[2, 3, 4]).unwrap();
        assert_eq!(t.size(), [2, 3, 4]);
        assert_eq!(t.double_value(&[1, 2, 3]), 11.5);
        // A transposed (non-contiguous) view is read in its own row-major order.
        let read = with_values(&t.transpose(1, 2), |v| v.to_vec()).unwrap();
        assert_eq!(read[1], t.double_value(&[0, 1, 0]) as f32);
        assert_eq!(with_values(&t, |v| v.to_vec()).unwrap(), values);
        assert!(to_tensor(&values, &[5, 5]).is_err());
        assert_eq!(to_tensor(&[], &[0, 3]).unwrap().size(), [0, 3]);
    }
}
