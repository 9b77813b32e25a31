//! LAFS's few-shot training sets: the first fraction of the identities
//! (LAFS keeps the head of an identity-ordered record file) and the first
//! `k` images of each kept identity.

use std::collections::BTreeMap;

/// The indices kept from samples with identities `identities` (in index
/// order): identities sorted by index, the first `max(1, round(p * n))` of
/// the `n` present kept when `fraction` is `Some(p)`; of each kept
/// identity, its first `shots` samples in index order when given. The
/// result is in index order.
pub fn few_shot(identities: &[i64], shots: Option<usize>, fraction: Option<f64>) -> Vec<usize> {
    let mut by_identity: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &id) in identities.iter().enumerate() {
        by_identity.entry(id).or_default().push(i);
    }
    let n = by_identity.len();
    let kept_identities = match fraction {
        Some(p) => ((p * n as f64).round() as usize).clamp(1, n.max(1)),
        None => n,
    };
    let mut kept: Vec<usize> = by_identity
        .values()
        .take(kept_identities)
        .flat_map(|samples| samples.iter().take(shots.unwrap_or(usize::MAX)).copied())
        .collect();
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::few_shot;

    #[test]
    fn the_first_identities_and_their_first_images_are_kept() {
        // Identities 3, 1, 1, 2, 3, 1, 2 at indices 0..7; sorted: 1 (1, 2, 5),
        // 2 (3, 6), 3 (0, 4).
        let ids = [3, 1, 1, 2, 3, 1, 2];
        assert_eq!(few_shot(&ids, None, None), (0..7).collect::<Vec<_>>());
        assert_eq!(few_shot(&ids, Some(1), None), [0, 1, 3]);
        // round(0.5 * 3) = 2 identities: 1 and 2.
        assert_eq!(few_shot(&ids, None, Some(0.5)), [1, 2, 3, 5, 6]);
        assert_eq!(few_shot(&ids, Some(2), Some(0.5)), [1, 2, 3, 6]);
        // At least one identity.
        assert_eq!(few_shot(&ids, Some(1), Some(0.01)), [1]);
    }
}
