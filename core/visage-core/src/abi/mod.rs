//! The ABI fingerprint every plugin declaration carries, and the host
//! compares with its own before calling anything in a plugin.
//!
//! Trait objects, contexts, batches and errors cross the plugin boundary as
//! Rust values: the host and a plugin must agree on their layouts and
//! signatures, or calls through them are undefined behaviour. The
//! fingerprint has two halves, neither maintained by hand:
//!
//! - **source**: a hash of the definitions in visage-core's `src/`, computed
//!   by its build script (see `src/abi/source.rs`). Everything in
//!   visage-core is compiled into both the host and each plugin, so any of
//!   its types or signatures may cross; the whole crate is hashed, and nobody
//!   keeps a list. Function bodies, comments, doc comments and `#[cfg(test)]`
//!   code cannot change a layout or a signature and are left out, so editing
//!   them does not refuse plugins; a field, a trait method or a signature
//!   changed anywhere does.
//! - **layout**: the sizes and alignments of the main boundary types as the
//!   compiler laid them out on each side ([`LAYOUTS`]), a cheap second check
//!   that also sees the types of dependencies (tch, tracing) inside them.
//!
//! The versions of rustc, tch and libtorch are checked beside it (see
//! [`crate::plugin`]).

use std::fmt;
use std::mem::{align_of, size_of};

use crate::augmentation::Augmentation;
use crate::backbone::{Backbone, BackboneContext, FeatureSpec, Features};
use crate::data::{Loader, LoaderConfig};
use crate::dataset::{Dataset, DatasetContext};
use crate::method::{Losses, Method, MethodContext};
use crate::metric::Metric;
use crate::optimizer::{Optimizer, OptimizerContext};
use crate::plugin::PluginDeclaration;
use crate::scheduler::Scheduler;
use crate::task::{EvalContext, EvalSplit, Task, TaskContext};
use crate::{Batch, ComponentInfo, Error, Registry, Sample};

mod fnv;
#[cfg(test)]
mod source;

/// What a copy of visage-core was compiled from: the hash of its
/// definitions and the hash of its boundary types' layouts.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbiFingerprint {
    /// FNV-1a 64 of visage-core's normalised sources (`VISAGE_ABI_SOURCE`).
    pub source: u64,
    /// FNV-1a 64 of the sizes and alignments in [`LAYOUTS`].
    pub layout: u64,
}

impl fmt::Display for AbiFingerprint {
    /// `source/layout`, 16 hex digits each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}/{:016x}", self.source, self.layout)
    }
}

/// The fingerprint of this copy of visage-core (the host's, or the plugin's).
pub const ABI: AbiFingerprint = AbiFingerprint {
    source: parse_hex(env!("VISAGE_ABI_SOURCE")),
    layout: fold(LAYOUTS),
};

const fn layout<T>() -> [usize; 2] {
    [size_of::<T>(), align_of::<T>()]
}

/// `[size, align]` of the types that cross the boundary most: the values
/// handed to components and returned by them, the registry, the
/// declaration and the trait-object pointers. Only a cheap check beside the
/// source hash, which covers every type: list here what crosses, and drop an
/// entry with the type it names.
pub const LAYOUTS: &[[usize; 2]] = &[
    layout::<Batch>(),
    layout::<Sample>(),
    layout::<BackboneContext<'static>>(),
    layout::<MethodContext<'static>>(),
    layout::<TaskContext>(),
    layout::<EvalContext<'static>>(),
    layout::<EvalSplit>(),
    layout::<DatasetContext>(),
    layout::<OptimizerContext<'static>>(),
    layout::<Registry>(),
    layout::<ComponentInfo>(),
    layout::<Loader>(),
    layout::<LoaderConfig>(),
    layout::<Error>(),
    layout::<crate::Result<()>>(),
    layout::<Losses>(),
    layout::<Features>(),
    layout::<FeatureSpec>(),
    layout::<PluginDeclaration>(),
    layout::<tracing::Dispatch>(),
    layout::<tch::Tensor>(),
    layout::<Box<dyn Backbone>>(),
    layout::<&dyn Backbone>(),
    layout::<Box<dyn Method>>(),
    layout::<Box<dyn Task>>(),
    layout::<Box<dyn Dataset>>(),
    layout::<Box<dyn Augmentation>>(),
    layout::<Box<dyn Metric>>(),
    layout::<Box<dyn Optimizer>>(),
    layout::<Box<dyn Scheduler>>(),
];

/// FNV-1a 64 over the little-endian `u64` of every number in `layouts`.
const fn fold(layouts: &[[usize; 2]]) -> u64 {
    let mut hash = fnv::OFFSET;
    let mut i = 0;
    while i < layouts.len() {
        hash = fnv::fnv1a(hash, &(layouts[i][0] as u64).to_le_bytes());
        hash = fnv::fnv1a(hash, &(layouts[i][1] as u64).to_le_bytes());
        i += 1;
    }
    hash
}

/// 16 lower-case hex digits, at compile time.
const fn parse_hex(text: &str) -> u64 {
    let bytes = text.as_bytes();
    assert!(bytes.len() == 16, "VISAGE_ABI_SOURCE must be 16 hex digits");
    let mut value = 0u64;
    let mut i = 0;
    while i < bytes.len() {
        let digit = match bytes[i] {
            b'0'..=b'9' => bytes[i] - b'0',
            b'a'..=b'f' => bytes[i] - b'a' + 10,
            _ => panic!("VISAGE_ABI_SOURCE must be 16 hex digits"),
        };
        value = (value << 4) | digit as u64;
        i += 1;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_shows_both_halves_in_hex() {
        let text = ABI.to_string();
        assert_eq!(text, format!("{}/{:016x}", env!("VISAGE_ABI_SOURCE"), ABI.layout));
        assert_eq!(
            AbiFingerprint {
                source: 0x1a2b,
                layout: u64::MAX
            }
            .to_string(),
            "0000000000001a2b/ffffffffffffffff"
        );
        assert_eq!(parse_hex("0123456789abcdef"), 0x0123_4567_89ab_cdef);
    }

    #[test]
    fn the_layout_half_follows_every_size_and_alignment() {
        assert_eq!(fold(LAYOUTS), ABI.layout);
        let mut changed = LAYOUTS.to_vec();
        changed[0][0] += 8;
        assert_ne!(fold(&changed), ABI.layout);
        let mut changed = LAYOUTS.to_vec();
        changed[LAYOUTS.len() - 1][1] *= 2;
        assert_ne!(fold(&changed), ABI.layout);
        // FNV-1a 64's published value for "a".
        assert_eq!(fnv::fnv1a(fnv::OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
