//! Pixel values of CPU float tensors as Rust slices, with no more copies
//! than needed: the plain-Rust image paths (decoding, colour jitter,
//! resizing) read their input tensor in place ([`with_values`]) and write
//! straight into their output tensor ([`filled`], [`edited_copy`]).
//!
//! Going through a `Vec` (`Vec::try_from`, then `Tensor::from_slice`,
//! which zero-fills its tensor before copying) costs three more passes
//! over a 600 KB view at 224 px, and a fresh allocation each.

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

/// A new zero CPU float tensor of shape `size`, whose values `fill` then
/// writes in row-major order.
pub(crate) fn filled(size: &[i64], fill: impl FnOnce(&mut [f32])) -> Result<Tensor> {
    let t = Tensor::f_zeros(size, (Kind::Float, Device::Cpu))?;
    edit(&t, fill);
    Ok(t)
}

/// A contiguous copy of the CPU float tensor `t`, whose values `edit_values`
/// then changes in place.
///
/// # Panics
/// If `t` is not a CPU float tensor (check [`is_cpu_float`]).
pub(crate) fn edited_copy(t: &Tensor, edit_values: impl FnOnce(&mut [f32])) -> Result<Tensor> {
    assert!(is_cpu_float(t), "edited_copy needs a CPU float tensor");
    let mut copy = Tensor::f_empty(t.size(), (Kind::Float, Device::Cpu))?;
    copy.f_copy_(t)?;
    edit(&copy, edit_values);
    Ok(copy)
}

/// Runs `f` on the values of `t`, a contiguous CPU float tensor that this
/// module has just created and that nothing else references.
fn edit(t: &Tensor, f: impl FnOnce(&mut [f32])) {
    let n = t.numel();
    if n == 0 {
        return f(&mut []);
    }
    // SAFETY: `t` was created by `filled` or `edited_copy` as a new
    // contiguous CPU float tensor of `n` initialised values; no other
    // tensor shares its storage, and it outlives the borrow.
    let values = unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, n) };
    f(values)
}

/// Defines `fn $name(args) { body }` twice over: `$portable`, the body as
/// written (`#[inline(always)]`, for the portable SSE2 build), and `$name`,
/// which calls an AVX2 build of the same body where the CPU has it (twice
/// the vector width) and `$portable` elsewhere. Only the vector width
/// changes, not the arithmetic (no FMA), so both give the same bits.
macro_rules! vectorised {
    (
        $(#[$meta:meta])*
        fn $name:ident / $portable:ident($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        #[inline(always)]
        fn $portable($($arg: $ty),*) $body

        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }
    };
}
pub(crate) use vectorised;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_read_and_write_tensors_in_row_major_order() {
        let t = filled(&[2, 3, 4], |v| {
            for (i, x) in v.iter_mut().enumerate() {
                *x = i as f32 * 0.5;
            }
        })
        .unwrap();
        assert_eq!(t.size(), [2, 3, 4]);
        assert_eq!(t.double_value(&[1, 2, 3]), 11.5);
        // A transposed (non-contiguous) view is read in its own row-major order.
        let read = with_values(&t.transpose(1, 2), |v| v.to_vec()).unwrap();
        assert_eq!(read[1], t.double_value(&[0, 1, 0]) as f32);
        // An edited copy leaves the original alone, and is contiguous even
        // when the original is not.
        let doubled = edited_copy(&t.transpose(1, 2), |v| v.iter_mut().for_each(|x| *x *= 2.0)).unwrap();
        assert_eq!(doubled.size(), [2, 4, 3]);
        assert_eq!(doubled.double_value(&[1, 3, 2]), 2.0 * 11.5);
        assert_eq!(t.double_value(&[1, 2, 3]), 11.5);
        assert_eq!(filled(&[0, 3], |v| assert!(v.is_empty())).unwrap().size(), [0, 3]);
    }
}
