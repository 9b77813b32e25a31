//! IJB-B/C template verification end to end: a tiny IJB set (six PNG
//! faces, the three meta files) written into a temporary folder, read by
//! the `ijb` dataset, scored by the `fr` task with `templates`; the
//! template features and pair scores are recomputed here by plain loops,
//! as LAFS's `IJB_evaluation.py` does them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use fr::templates::{pair_scores, template_features};
use fr::FaceRecognition;
use visage_core::backbone::Backbone;
use visage_core::dataset::{Dataset, DatasetContext, Split};
use visage_core::metric::Metrics;
use visage_core::task::{Protocol, Task, TaskContext};
use visage_core::tch::{Kind, Tensor};
use visage_core::Result;
use visage_formats::fr::ijb::{self, IjbParams, IjbSet, TemplatePair};
use visage_tasks::metrics::verification::{tar_at_far, FARS};
use visage_testing::{registry_with, with_eval_context, EvalOptions, TinySynthFace};

/// (image, template, media, faceness): template 1 has two images of media
/// 10 and one of media 11; template 2 one image; template 3 two media of
/// one image each.
const FACES: [(&str, i64, i64, f64); 6] = [
    ("1/a.png", 1, 10, 0.9),
    ("1/b.png", 1, 10, 0.5),
    ("1/c.png", 1, 11, 0.75),
    ("2/a.png", 2, 20, 1.0),
    ("3/a.png", 3, 30, 0.25),
    ("3/b.png", 3, 31, 0.8),
];

/// Template pairs (first, second, same).
const PAIRS: [(i64, i64, bool); 5] = [(1, 2, true), (1, 3, false), (2, 3, false), (3, 3, true), (2, 1, false)];

const POINTS: &str = "38.29 51.69 73.53 51.50 56.02 71.73 41.54 92.36 70.72 92.20";

/// Writes the set into `root` (IJB-B names) and returns its params.
fn write_set(root: &Path) -> IjbParams {
    let faces = TinySynthFace {
        train_identities: 1,
        test_identities: 3,
        per_identity: 2,
        seed: 4,
    }
    .split(Split::Test);
    let (mut tid_mid, mut scores) = (String::new(), String::new());
    for (i, (name, template, media, faceness)) in FACES.iter().enumerate() {
        let image = faces.get(i).unwrap().image;
        let pixels = (image * 255.0).round().clamp(0.0, 255.0).to_kind(Kind::Uint8);
        visage_formats::io::save_image(&root.join("loose_crop").join(name), &pixels).unwrap();
        tid_mid += &format!("{name} {template} {media}\n");
        scores += &format!("{name} {POINTS} {faceness}\n");
    }
    let pairs: String = PAIRS
        .iter()
        .map(|(a, b, same)| format!("{a} {b} {}\n", i64::from(*same)))
        .collect();
    std::fs::create_dir_all(root.join("meta")).unwrap();
    std::fs::write(root.join("meta/ijbb_face_tid_mid.txt"), tid_mid).unwrap();
    std::fs::write(root.join("meta/ijbb_name_5pts_score.txt"), scores).unwrap();
    std::fs::write(root.join("meta/ijbb_template_pair_label.txt"), pairs).unwrap();
    serde_json::from_value(serde_json::json!({"root": root, "which": "ijbb"})).unwrap()
}

fn ijb_dataset(p: &IjbParams) -> Arc<dyn Dataset> {
    let ctx = DatasetContext {
        split: Split::Test,
        seed: 0,
    };
    Arc::new(ijb::dataset(p.clone(), &ctx).unwrap())
}

/// Runs `fr` with `params` under `linear_probe` on `test`; `check` sees
/// the evaluated backbone.
fn evaluate(params: serde_json::Value, test: Arc<dyn Dataset>, check: impl FnOnce(&dyn Backbone)) -> Result<Metrics> {
    let registry = registry_with("fr", fr::register);
    let protocol = Protocol::LinearProbe;
    with_eval_context(
        &registry,
        protocol,
        test.clone(),
        test,
        &EvalOptions::seeded(3),
        |ctx| {
            let mut task = FaceRecognition::new(serde_json::from_value(params).unwrap(), &TaskContext { protocol })?;
            let metrics = task.evaluate(ctx);
            check(ctx.backbone);
            metrics
        },
    )
}

/// `f(x) + f(hflip x)` of every image, one row each, in double precision.
fn embeddings(backbone: &dyn Backbone, test: &dyn Dataset) -> Vec<Vec<f64>> {
    let images: Vec<Tensor> = (0..test.len()).map(|i| test.get(i).unwrap().image).collect();
    let x = Tensor::stack(&images, 0);
    let _guard = visage_core::tch::no_grad_guard();
    let f = |x: &Tensor| backbone.forward(x, false).unwrap()["pooled"].flatten(1, -1);
    let e = (f(&x) + f(&x.flip([-1]))).to_kind(Kind::Double);
    (0..test.len() as i64)
        .map(|i| Vec::<f64>::try_from(e.get(i)).unwrap())
        .collect()
}

/// LAFS's `image2template_feature` by loops: per template, the mean of the
/// faceness-weighted rows of each media, summed over media, normalised.
fn by_hand(rows: &[Vec<f64>]) -> BTreeMap<i64, Vec<f64>> {
    let mut media: BTreeMap<i64, BTreeMap<i64, Vec<Vec<f64>>>> = BTreeMap::new();
    for (row, (_, t, m, s)) in rows.iter().zip(FACES) {
        let weighted = row.iter().map(|x| x * s).collect();
        media.entry(t).or_default().entry(m).or_default().push(weighted);
    }
    media
        .into_iter()
        .map(|(t, per_media)| {
            let mut sum = vec![0.0; rows[0].len()];
            for images in per_media.values() {
                for image in images {
                    for (s, x) in sum.iter_mut().zip(image) {
                        *s += x / images.len() as f64;
                    }
                }
            }
            let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
            (t, sum.iter().map(|x| x / norm).collect())
        })
        .collect()
}

#[test]
fn ijb_templates_are_scored_as_lafs_scores_them() {
    let dir = tempfile::tempdir().unwrap();
    let set = write_set(dir.path());
    let test = ijb_dataset(&set);
    assert_eq!(test.len(), 6);
    let sample = test.get(2).unwrap();
    assert_eq!(sample.labels["template"].int64_value(&[]), 1);
    assert_eq!(sample.labels["media"].int64_value(&[]), 11);
    assert_eq!(sample.labels["faceness"].double_value(&[0]), 0.75);
    let mut hand_scores = vec![];
    let mut computed = vec![];
    let params = serde_json::json!({"templates": {"pairs": set.pairs_file()}});
    let metrics = evaluate(params, test.clone(), |backbone| {
        let rows = embeddings(backbone, test.as_ref());
        let templates = by_hand(&rows);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        hand_scores = PAIRS
            .iter()
            .map(|(a, b, _)| dot(&templates[a], &templates[b]))
            .collect();
        // The library's aggregation and scores on the same rows.
        let flat: Vec<f64> = rows.concat();
        let e = Tensor::from_slice(&flat).view([6, -1]);
        let column = |k: usize| {
            FACES
                .iter()
                .map(|f| [f.1 as f64, f.2 as f64, f.3][k])
                .collect::<Vec<f64>>()
        };
        let as_ids = |v: Vec<f64>| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
        let (ids, features) = template_features(&e, &as_ids(column(0)), &as_ids(column(1)), &column(2)).unwrap();
        let pairs: Vec<TemplatePair> = PAIRS
            .iter()
            .map(|&(first, second, same)| TemplatePair { first, second, same })
            .collect();
        computed = pair_scores(&ids, &features, &pairs, &set.pairs_file()).unwrap();
    })
    .unwrap();
    for (k, (ours, hand)) in computed.iter().zip(&hand_scores).enumerate() {
        assert!((ours - hand).abs() < 1e-9, "pair {k}: {ours} vs {hand}");
    }
    // Template 3 against itself.
    assert!((hand_scores[3] - 1.0).abs() < 1e-9);
    let same: Vec<bool> = PAIRS.iter().map(|p| p.2).collect();
    let tars = tar_at_far(&hand_scores, &same, &FARS).unwrap();
    assert_eq!(metrics.len(), FARS.len(), "{metrics:?}");
    for (far, tar) in FARS.iter().zip(tars) {
        let got = metrics[&format!("tar_at_far_{far:e}")];
        assert!((got - tar).abs() < 1e-9, "FAR {far}: {got} vs {tar}");
    }
    assert!(metrics.contains_key("tar_at_far_1e-4"));
}

#[test]
fn a_broken_pair_list_or_a_missing_template_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let set = write_set(dir.path());
    let test = ijb_dataset(&set);
    let params = serde_json::json!({"templates": {"pairs": set.pairs_file()}});
    std::fs::write(set.pairs_file(), "1 2 1\n\n1 3 yes\n").unwrap();
    let err = evaluate(params.clone(), test.clone(), |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("ijbb_template_pair_label.txt, line 3: expected the label 0 or 1"),
        "{err}"
    );
    std::fs::write(set.pairs_file(), "1 2 1\n\n1 9 0\n").unwrap();
    let err = evaluate(params, test.clone(), |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("ijbb_template_pair_label.txt, line 3: template 9 has no image in the test split"),
        "{err}"
    );
    // A template set scored without its pair list is refused by name.
    let err = evaluate(serde_json::json!({}), test, |_| {}).unwrap_err().to_string();
    assert!(err.contains("`templates: {pairs:"), "{err}");
    // IjbSet names the meta files.
    assert_eq!(IjbSet::Ijbc.prefix(), "ijbc");
}
