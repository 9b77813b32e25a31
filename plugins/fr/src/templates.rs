//! IJB-B/C template verification, as LAFS's `IJB_evaluation.py` scores
//! it (`tasks.md`): each image's flip-summed embedding (not normalised)
//! times its faceness score; a template's feature is the mean of its
//! images within each media, summed over its media, then L2-normalised;
//! a pair's score is the cosine of its two templates' features; TAR at
//! the FARs 1e-6 ... 1e-1 by [`crate::tar`]'s rule. The images come from
//! the `ijb` dataset (labels `template`, `media`, `faceness`), the pairs
//! from the set's `template_pair_label.txt`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::metric::{label, Labels, Metrics};
use visage_core::tch::{Kind, Tensor};
use visage_core::{Error, Result};
use visage_formats::fr::ijb::{pair_line, read_template_pairs, TemplatePair, FACENESS, MEDIA, TEMPLATE};
use visage_tasks::metrics::verification::FARS;

use crate::tar::tar_metrics;

/// Pairs scored per tensor operation (LAFS's batch of 100000).
const CHUNK: usize = 100_000;

/// Parameters of template verification (`fr`'s `templates`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateParams {
    /// The set's template pair list, `template1 template2 label` per line
    /// (insightface's `meta/<ijbb|ijbc>_template_pair_label.txt`).
    pub pairs: PathBuf,
}

/// The label names the template path reads from the test split.
pub const LABELS: [&str; 3] = [TEMPLATE, MEDIA, FACENESS];

/// The template pairs of `p`, read once per evaluation (before the test
/// split is embedded, so that a broken list fails early).
pub fn read_pairs(p: &TemplateParams) -> Result<Vec<TemplatePair>> {
    let pairs = read_template_pairs(&p.pairs)?;
    tracing::info!(pairs = pairs.len(), file = %p.pairs.display(), "fr: template pairs read");
    Ok(pairs)
}

/// The template features of `embeddings` `[N, D]` (image `i` in template
/// `templates[i]`, media `media[i]`, with faceness `faceness[i]`): the
/// sorted template ids and their L2-normalised features `[T, D]` in
/// double precision. A template's feature is `sum over its media of the
/// mean of (faceness * embedding) over the media's images`, computed as
/// each image weighted by `faceness / (images of its template and media)`;
/// a zero feature stays zero (scikit-learn's `normalize`).
pub fn template_features(
    embeddings: &Tensor,
    templates: &[i64],
    media: &[i64],
    faceness: &[f64],
) -> Result<(Vec<i64>, Tensor)> {
    let n = embeddings.size().first().copied().unwrap_or(0) as usize;
    if templates.len() != n || media.len() != n || faceness.len() != n {
        return Err(Error::msg(format!(
            "fr: {n} embeddings, {} templates, {} media, {} faceness scores; expected one each per image",
            templates.len(),
            media.len(),
            faceness.len()
        )));
    }
    let mut per_media: HashMap<(i64, i64), usize> = HashMap::new();
    for key in templates.iter().zip(media) {
        *per_media.entry((*key.0, *key.1)).or_default() += 1;
    }
    let sorted: BTreeSet<i64> = templates.iter().copied().collect();
    let ids: BTreeMap<i64, i64> = sorted.iter().enumerate().map(|(k, &t)| (t, k as i64)).collect();
    let weights: Vec<f64> = (0..n)
        .map(|i| faceness[i] / per_media[&(templates[i], media[i])] as f64)
        .collect();
    let device = embeddings.device();
    let rows: Vec<i64> = templates.iter().map(|t| ids[t]).collect();
    let x = embeddings.f_flatten(1, -1)?.f_to_kind(Kind::Double)?;
    let weighted = x.f_mul(&Tensor::from_slice(&weights).to_device(device).f_unsqueeze(1)?)?;
    let summed = Tensor::f_zeros([ids.len() as i64, x.size()[1]], (Kind::Double, device))?.f_index_add(
        0,
        &Tensor::from_slice(&rows).to_device(device),
        &weighted,
    )?;
    let norms = summed.f_norm_scalaropt_dim(2, [1], true)?;
    let norms = norms.f_where_scalarother(&norms.f_ne(0.0)?, 1.0)?;
    Ok((ids.into_keys().collect(), summed.f_div(&norms)?))
}

/// The cosine score of every pair between the normalised `features` of
/// the templates `ids` (sorted); a template no image has is an error
/// naming the pair list `file` and its line.
pub fn pair_scores(ids: &[i64], features: &Tensor, pairs: &[TemplatePair], file: &Path) -> Result<Vec<f64>> {
    let row = |t: i64, k: usize| {
        ids.binary_search(&t).map(|r| r as i64).map_err(|_| {
            let line = pair_line(file, k).map_or(String::new(), |l| format!(", line {l}"));
            Error::msg(format!(
                "{}{line}: template {t} has no image in the test split (expected templates of its face_tid_mid list)",
                file.display()
            ))
        })
    };
    let mut scores = Vec::with_capacity(pairs.len());
    for (c, chunk) in pairs.chunks(CHUNK).enumerate() {
        let mut first = Vec::with_capacity(chunk.len());
        let mut second = Vec::with_capacity(chunk.len());
        for (j, p) in chunk.iter().enumerate() {
            first.push(row(p.first, c * CHUNK + j)?);
            second.push(row(p.second, c * CHUNK + j)?);
        }
        let pick = |r: Vec<i64>| features.f_index_select(0, &Tensor::from_slice(&r).to_device(features.device()));
        let dots = pick(first)?
            .f_mul(&pick(second)?)?
            .f_sum_dim_intlist(1, false, Kind::Double)?;
        scores.extend(Vec::<f64>::try_from(&dots.f_to_device(visage_core::tch::Device::Cpu)?)?);
    }
    Ok(scores)
}

/// TAR at IJB's FARs (1e-6 ... 1e-1; `tar_at_far_1e-4` the headline) on
/// the template scores of the flip-summed `embeddings` `[N, D]` of the test
/// images with their `labels` ([`LABELS`]).
pub fn template_metrics(embeddings: &Tensor, labels: &Labels, pairs: &[TemplatePair], file: &Path) -> Result<Metrics> {
    let longs = |name: &str| -> Result<Vec<i64>> {
        Ok(Vec::<i64>::try_from(
            &label(labels, name, "fr templates")?.flatten(0, -1).to_kind(Kind::Int64),
        )?)
    };
    let faceness = Vec::<f64>::try_from(
        &label(labels, FACENESS, "fr templates")?
            .flatten(0, -1)
            .to_kind(Kind::Double),
    )?;
    let (ids, features) = template_features(embeddings, &longs(TEMPLATE)?, &longs(MEDIA)?, &faceness)?;
    tracing::info!(templates = ids.len(), pairs = pairs.len(), "fr: template verification");
    let scores = pair_scores(&ids, &features, pairs, file)?;
    let same: Vec<bool> = pairs.iter().map(|p| p.same).collect();
    tar_metrics(&scores, &same, &FARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_the_faceness_weighted_sum_over_media_of_media_means() {
        // Template 5: media 1 (images 0, 1), media 2 (image 2); template 3:
        // image 3 alone.
        let e = Tensor::from_slice2(&[[1.0f32, 0.0], [3.0, 2.0], [0.0, 1.0], [0.0, -2.0]]);
        let (ids, f) = template_features(&e, &[5, 5, 5, 3], &[1, 1, 2, 7], &[1.0, 0.5, 2.0, 0.1]).unwrap();
        assert_eq!(ids, [3, 5]);
        // Template 5: mean((1, 0), (1.5, 1)) + (0, 2) = (1.25, 0.5) + (0, 2)
        // = (1.25, 2.5), norm 1.25 sqrt(5); template 3: (0, -0.2) -> (0, -1).
        let f = Vec::<f64>::try_from(f.flatten(0, -1)).unwrap();
        let s5 = 5f64.sqrt();
        for (got, want) in f.iter().zip([0.0, -1.0, 1.0 / s5, 2.0 / s5]) {
            assert!((got - want).abs() < 1e-12, "{f:?}");
        }
        let pairs = [
            TemplatePair {
                first: 5,
                second: 3,
                same: false,
            },
            TemplatePair {
                first: 5,
                second: 5,
                same: true,
            },
        ];
        let features = Tensor::from_slice(&f).view([2, 2]);
        let scores = pair_scores(&ids, &features, &pairs, Path::new("pairs.txt")).unwrap();
        assert!((scores[0] + 2.0 / s5).abs() < 1e-12 && (scores[1] - 1.0).abs() < 1e-12);
        let missing = [TemplatePair {
            first: 4,
            second: 5,
            same: true,
        }];
        let err = pair_scores(&ids, &features, &missing, Path::new("pairs.txt")).unwrap_err();
        assert!(err.to_string().contains("pairs.txt: template 4 has no image"), "{err}");
    }
}
