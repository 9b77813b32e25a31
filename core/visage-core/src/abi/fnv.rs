//! FNV-1a, 64 bits: the hash of both ABI fingerprints. Shared by the build
//! script (the source fingerprint) and the crate (the layout fingerprint,
//! folded at compile time), hence a `const fn` without dependencies.

/// The FNV-1a 64 offset basis: the hash of nothing.
pub const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

const PRIME: u64 = 0x0100_0000_01b3;

/// Folds `bytes` into `hash` (start from [`OFFSET`]).
pub const fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(PRIME);
        i += 1;
    }
    hash
}
