//! Face recognition layouts. Readers: verification `.bin`
//! ([`verification_bin`]), LFW's `pairs.txt` ([`lfw`]), identity folders
//! ([`identity_folder`]), MXNet RecordIO ([`mxrec`]) and the two together
//! ([`benchmark`]: train on a record file, verify on a `.bin`), IJB-B/C's
//! insightface layout ([`ijb`]: images with template, media and faceness;
//! the template pairs are read by the `fr` task). Writers: the
//! `.bin` of the MS1M/WebFace packs, LFW's raw `pairs.txt` with its image
//! tree, and `train.rec` ([`mxrec::write`]).
//!
//! Verification readers give pair `i` as samples `2i` and `2i + 1`, each
//! with `same` (1 for one identity) and `fold` (pair `i` is in fold
//! `i / (pairs / folds)`, LFW's View 2 order: folds one after another).
//!
//! Writers:
//! Pairs are built within the exported split, in folds as LFW's View 2:
//! `Options::folds` folds (default 10), each with `Options::pairs` same-identity pairs
//! followed by as many different-identity pairs (LFW: 10 folds of 300 + 300,
//! 6000 pairs). The `.bin` lists its pairs in the same order, as
//! `lfw.bin` does, so a 10-fold evaluation sees balanced folds. Pairs are
//! drawn from `Options::seed`: a same pair picks an identity with at least two
//! exported samples and two different samples of it; a different pair
//! picks two identities and one sample of each. A pair already drawn is
//! redrawn (up to 20 times) while others remain.

pub mod benchmark;
pub mod identity_folder;
pub mod ijb;
pub mod lfw;
pub mod mxrec;
pub mod verification_bin;

use std::collections::{BTreeMap, BTreeSet};

use visage_core::dataset::{DatasetInfo, PairLayout};
use visage_core::rng::Rng;
use visage_core::{labels, Registry, Result};

use crate::codec::pickle;
use crate::error::{ensure, Context};
use crate::table::{Entry, Label, Table};
use crate::{io, Job, Record};

/// A verification pair: indices into the exported samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pair {
    /// The first sample.
    pub a: usize,
    /// The second sample.
    pub b: usize,
    /// Whether the two are one identity.
    pub same: bool,
}

/// Stream tag of the pair draws, so that they differ from the dataset's.
const PAIRS_STREAM: u64 = 0x0070_6169_7273; // "pairs"

/// `folds` folds of `per_fold` same then `per_fold` different pairs over
/// samples with identities `ids`.
pub fn build_pairs(ids: &[i64], folds: usize, per_fold: usize, seed: u64) -> Result<Vec<Pair>> {
    ensure!(folds > 0 && per_fold > 0, "--folds and --pairs must be positive");
    let mut by_id: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        by_id.entry(id).or_default().push(i);
    }
    let groups: Vec<&Vec<usize>> = by_id.values().collect();
    let multi: Vec<&Vec<usize>> = by_id.values().filter(|v| v.len() >= 2).collect();
    ensure!(
        !multi.is_empty(),
        "same-identity pairs need an identity with at least two samples among the {} exported (raise --count)",
        ids.len()
    );
    ensure!(
        groups.len() >= 2,
        "different-identity pairs need at least two identities among the {} exported samples (raise --count)",
        ids.len()
    );
    let mut rng = Rng::new(&[seed, PAIRS_STREAM]);
    let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
    let mut seen = BTreeSet::new();
    let mut pairs = Vec::with_capacity(2 * folds * per_fold);
    for _ in 0..folds {
        for same in [true, false] {
            for _ in 0..per_fold {
                let mut pair = Pair { a: 0, b: 0, same };
                for _ in 0..20 {
                    pair = if same {
                        let g = multi[pick(multi.len())];
                        let i = pick(g.len());
                        let j = (i + 1 + pick(g.len() - 1)) % g.len();
                        Pair { a: g[i], b: g[j], same }
                    } else {
                        let i = pick(groups.len());
                        let j = (i + 1 + pick(groups.len() - 1)) % groups.len();
                        let (gi, gj) = (groups[i], groups[j]);
                        Pair {
                            a: gi[pick(gi.len())],
                            b: gj[pick(gj.len())],
                            same,
                        }
                    };
                    let key = (pair.a.min(pair.b), pair.a.max(pair.b));
                    if seen.insert(key) {
                        break;
                    }
                }
                pairs.push(pair);
            }
        }
    }
    Ok(pairs)
}

/// The one exported split's samples.
fn samples(ex: &Job) -> Result<Vec<Record>> {
    let split = ex.splits()[0];
    ex.records(split).collect()
}

/// Same (and different) pairs per fold.
fn per_fold(ex: &Job, n: usize) -> usize {
    ex.options.pairs.unwrap_or((n / (2 * ex.options.folds.max(1))).max(1))
}

/// `<out>/<name>.bin`: `pickle.dump((bins, issame_list))` with two JPEG
/// byte strings per pair (the pair's images, in pair order) and one bool
/// per pair. Written with protocol 4 (readable by Python 3 with a plain
/// `pickle.load`, and with `encoding='bytes'` as insightface calls it).
pub fn verification_bin(ex: &Job) -> Result<()> {
    let name = &ex.options.name;
    ensure!(
        !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..",
        "--name must be a plain file name, got `{name}`"
    );
    let items = samples(ex)?;
    let ids: Vec<i64> = items.iter().map(|i| i.int(labels::IDENTITY)).collect::<Result<_>>()?;
    let pairs = build_pairs(&ids, ex.options.folds, per_fold(ex, items.len()), ex.options.seed)?;
    let jpegs: Vec<Vec<u8>> = items
        .iter()
        .map(|i| io::encode(&i.image_u8()?, &ex.out, "jpg").with_context(|| i.what()))
        .collect::<Result<_>>()?;
    let mut bins = Vec::with_capacity(2 * pairs.len());
    for p in &pairs {
        bins.push(jpegs[p.a].clone());
        bins.push(jpegs[p.b].clone());
    }
    let flags: Vec<bool> = pairs.iter().map(|p| p.same).collect();
    io::write_bytes(
        &ex.out.join(format!("{name}.bin")),
        &pickle::list_of_bytes_and_bools(&bins, &flags)?,
    )
}

/// LFW's name for an identity.
pub fn person(id: i64) -> String {
    format!("Person_{id:04}")
}

/// `<out>/pairs.txt` and `<out>/<name>/<name>_%04d.jpg` for every exported
/// sample (numbered from 1 within its identity, in sample order), as
/// `lfw.tgz` unpacks beside the separately downloaded `pairs.txt`. The
/// header is `folds<TAB>pairs`, as LFW's `10<TAB>300`: the number of folds and
/// the number of same (and of different) pairs in each; then per fold the
/// same pairs `name<TAB>n1<TAB>n2`, then the different pairs
/// `name1<TAB>n1<TAB>name2<TAB>n2`.
pub fn lfw_pairs(ex: &Job) -> Result<()> {
    let items = samples(ex)?;
    let ids: Vec<i64> = items.iter().map(|i| i.int(labels::IDENTITY)).collect::<Result<_>>()?;
    let per_fold = per_fold(ex, items.len());
    let pairs = build_pairs(&ids, ex.options.folds, per_fold, ex.options.seed)?;
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    let mut numbers = Vec::with_capacity(items.len());
    for (item, &id) in items.iter().zip(&ids) {
        let n = counts.entry(id).or_default();
        *n += 1;
        numbers.push(*n);
        let name = person(id);
        io::save_image(
            &ex.out.join(&name).join(format!("{name}_{:04}.jpg", *n)),
            &item.image_u8()?,
        )?;
    }
    let mut text = format!("{}\t{per_fold}\n", ex.options.folds);
    for p in &pairs {
        text += &if p.same {
            format!("{}\t{}\t{}\n", person(ids[p.a]), numbers[p.a], numbers[p.b])
        } else {
            format!(
                "{}\t{}\t{}\t{}\n",
                person(ids[p.a]),
                numbers[p.a],
                person(ids[p.b]),
                numbers[p.b]
            )
        };
    }
    io::write_text(&ex.out.join("pairs.txt"), &text)
}

/// The pair dataset of `entries` (pair `i` at `2i`, `2i + 1`): adds
/// `same` and `fold` to each; `what` names the file in errors.
pub(crate) fn pairs_table(mut entries: Vec<Entry>, same: &[bool], folds: usize, what: &str) -> Result<Table> {
    ensure!(folds > 0, "{what}: `folds` must be positive");
    ensure!(
        same.len() >= folds,
        "{what}: {} pairs cannot form {folds} folds (expected at least one pair per fold)",
        same.len()
    );
    ensure!(
        entries.len() == 2 * same.len(),
        "{what}: expected two images per pair: {} images for {} pairs",
        entries.len(),
        same.len()
    );
    let per_fold = same.len() / folds;
    for (k, entry) in entries.iter_mut().enumerate() {
        let pair = k / 2;
        let fold = (pair / per_fold).min(folds - 1);
        entry.labels.push((labels::SAME, Label::Int(same[pair] as i64)));
        entry.labels.push((labels::FOLD, Label::Int(fold as i64)));
    }
    let info = DatasetInfo {
        labels: vec![labels::SAME.into(), labels::FOLD.into()],
        pairs: Some(PairLayout { folds }),
        ..Default::default()
    };
    Ok(Table::new(entries, info))
}

/// Registers the datasets `verification_bin`, `lfw_pairs`,
/// `identity_folder`, `mxnet_rec`, `fr_benchmark` (a record file to
/// train on, a `.bin` to verify on), `ijb` (IJB-B/C images with their
/// templates, [`ijb`]) and `ijb_benchmark` (a record file, then IJB).
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.dataset("verification_bin", verification_bin::dataset)?;
    registry.dataset("lfw_pairs", lfw::dataset)?;
    registry.dataset("identity_folder", identity_folder::dataset)?;
    registry.dataset("mxnet_rec", mxrec::dataset)?;
    registry.dataset("fr_benchmark", benchmark::dataset)?;
    registry.dataset("ijb", ijb::dataset)?;
    registry.dataset("ijb_benchmark", ijb::benchmark)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_balanced_valid_and_deterministic() {
        let ids = [0, 0, 0, 1, 1, 2, 3, 3];
        let pairs = build_pairs(&ids, 3, 2, 5).unwrap();
        assert_eq!(pairs.len(), 12);
        for (k, p) in pairs.iter().enumerate() {
            assert_eq!(p.same, k % 4 < 2, "fold order: same first");
            assert_ne!(p.a, p.b);
            assert_eq!(ids[p.a] == ids[p.b], p.same);
        }
        assert_eq!(pairs, build_pairs(&ids, 3, 2, 5).unwrap());
        assert_ne!(pairs, build_pairs(&ids, 3, 2, 6).unwrap());
        assert!(build_pairs(&[0, 1, 2], 1, 1, 0)
            .unwrap_err()
            .to_string()
            .contains("two samples"));
        assert!(build_pairs(&[4, 4], 1, 1, 0)
            .unwrap_err()
            .to_string()
            .contains("two identities"));
    }
}
