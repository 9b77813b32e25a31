//! The task metrics against independent references on seeded random
//! inputs: scikit-learn (`f1_score`, `roc_auc_score`, `roc_curve`,
//! `confusion_matrix`, `balanced_accuracy_score`, `jaccard_score`), numpy
//! for pose and NME, and a numpy version of LAFS's 10-fold verification
//! written from tasks.md. The references come from
//! tests/reference/metrics.py, run with the project venv's python.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};
use visage_core::metric::{Labels, Metric};
use visage_tasks::metrics::alignment::{self, NmeParams, PointSet, Unit};
use visage_tasks::metrics::{au, classification, parsing, pose, verification};

const CPU: (Kind, Device) = (Kind::Double, Device::Cpu);

fn python() -> PathBuf {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: source scripts/env.sh && visage_env");
    Path::new(&venv).join("bin/python")
}

/// A tensor as nested JSON arrays (integers for integer kinds).
fn nested(t: &Tensor) -> Value {
    if t.dim() == 0 {
        return match t.kind() {
            Kind::Int64 | Kind::Bool => json!(t.int64_value(&[])),
            _ => json!(t.double_value(&[])),
        };
    }
    Value::Array((0..t.size()[0]).map(|i| nested(&t.get(i))).collect())
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn close(ours: f64, theirs: f64, tolerance: f64, what: &str) {
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{what}: ours {ours}, reference {theirs}"
    );
}

/// Writes `inputs`, runs metrics.py on them and reads its reference.json.
fn reference(inputs: &Value) -> Value {
    let dir = std::env::temp_dir().join(format!("visage-tasks-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    visage_core::fs::write_atomic(&dir.join("inputs.json"), inputs.to_string().as_bytes()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/metrics.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "metrics.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    serde_json::from_str(&text).unwrap()
}

/// Imbalanced classes: class `c` drawn with weight `c + 1`, and predictions
/// right about 60% of the time.
fn classes(n: i64, c: i64) -> (Tensor, Tensor) {
    let weights = Tensor::arange(c, CPU) + 1.0;
    let target = weights.multinomial(n, true);
    let guess = Tensor::randint(c, [n], (Kind::Int64, Device::Cpu));
    let right = Tensor::rand([n], CPU).lt(0.6);
    (target.where_self(&right, &guess), target)
}

struct Inputs {
    classification: (Tensor, Tensor),
    au: (Tensor, Tensor),
    pose: (Tensor, Tensor),
    embeddings: Tensor,
    same: Tensor,
    scores: Tensor,
    genuine: Tensor,
    landmarks: (Tensor, Tensor, Tensor, Tensor),
    parsing: (Tensor, Tensor),
}

const PAIRS: i64 = 1003;
const FARS: [f64; 6] = verification::FARS;
const CORNERS: [usize; 2] = [36, 45];
const THRESHOLD: f64 = 0.08;

fn pupils() -> [Vec<usize>; 2] {
    [(36..42).collect(), (42..48).collect()]
}

fn inputs() -> Inputs {
    tch::manual_seed(7);
    // AU: 12 columns with positive rates 0.05 .. 0.6, the last never
    // present; probabilities on a 0.05 grid (ties), higher for positives.
    let (n, k) = (400, 12);
    let rates = Tensor::linspace(0.05, 0.6, k, CPU);
    let au_target = Tensor::rand([n, k], CPU).lt_tensor(&rates).to_kind(Kind::Double);
    let _ = au_target.narrow(1, k - 1, 1).fill_(0.0);
    let au_p = ((Tensor::rand([n, k], CPU) * 0.7 + &au_target * 0.3) * 20.0).round() / 20.0;
    // Verification: identity vectors; a genuine pair shares one.
    let (d, people) = (16, 200);
    let identities = Tensor::randn([people, d], CPU);
    let first = Tensor::randint(people, [PAIRS], (Kind::Int64, Device::Cpu));
    let same = Tensor::rand([PAIRS], CPU).lt(0.5);
    let other = Tensor::randint(people, [PAIRS], (Kind::Int64, Device::Cpu));
    let second = first.where_self(&same, &other);
    let noise = |t: Tensor| t + Tensor::randn([PAIRS, d], CPU) * 0.9;
    let pairs = Tensor::stack(
        &[
            noise(identities.index_select(0, &first)),
            noise(identities.index_select(0, &second)),
        ],
        1,
    );
    // TAR: 4000 template scores on a 0.01 grid (ties), genuine higher.
    let genuine = Tensor::rand([4000], CPU).lt(0.3);
    let scores = ((Tensor::randn([4000], CPU) + genuine.to_kind(Kind::Double) * 2.5) * 100.0).round() / 100.0;
    // Landmarks: 68 points in a 100 px face, predictions off by a few px.
    let m = 60;
    let target = Tensor::rand([m, 68, 2], CPU) * 100.0 + 50.0;
    let predicted = &target + Tensor::randn([m, 68, 2], CPU) * (Tensor::rand([m, 1, 1], CPU) * 12.0);
    let corner = Tensor::rand([m, 2], CPU) * 40.0;
    let boxes = Tensor::cat(&[&corner, &(&corner + Tensor::rand([m, 2], CPU) * 100.0 + 80.0)], 1);
    let visible = Tensor::rand([m, 68], CPU).gt(0.2).to_kind(Kind::Double);
    // Parsing: 11 classes, class 10 never used, 70% of pixels right.
    let truth = Tensor::randint(10, [3, 24, 20], (Kind::Int64, Device::Cpu));
    let wrong = Tensor::randint(10, [3, 24, 20], (Kind::Int64, Device::Cpu));
    let guess = truth.where_self(&Tensor::rand([3, 24, 20], CPU).lt(0.7), &wrong);
    Inputs {
        classification: classes(500, 7),
        au: (au_p, au_target),
        pose: (Tensor::randn([300, 3], CPU) * 30.0, Tensor::randn([300, 3], CPU) * 30.0),
        embeddings: pairs.view([2 * PAIRS, d]),
        same,
        scores,
        genuine,
        landmarks: (predicted, target, boxes, visible),
        parsing: (guess, truth),
    }
}

fn as_json(i: &Inputs) -> Value {
    json!({
        "classification": {"predicted": nested(&i.classification.0), "target": nested(&i.classification.1), "classes": 7},
        "au": {"probabilities": nested(&i.au.0), "target": nested(&i.au.1)},
        "pose": {"predicted": nested(&i.pose.0), "target": nested(&i.pose.1)},
        "verification": {"embeddings": nested(&i.embeddings), "same": nested(&i.same.to_kind(Kind::Int64)), "folds": 10},
        "tar": {"scores": nested(&i.scores), "same": nested(&i.genuine.to_kind(Kind::Int64)), "fars": FARS.to_vec()},
        "alignment": {
            "predicted": nested(&i.landmarks.0), "target": nested(&i.landmarks.1),
            "boxes": nested(&i.landmarks.2), "visible": nested(&i.landmarks.3),
            "corners": CORNERS.to_vec(), "pupils": pupils(), "threshold": THRESHOLD,
        },
        "parsing": {"predicted": nested(&i.parsing.0), "target": nested(&i.parsing.1), "classes": 11},
    })
}

fn check_classification(i: &Inputs, r: &Value) {
    let (p, t) = &i.classification;
    let m = classification::confusion_matrix(p, t, 7).unwrap();
    assert_eq!(
        floats(&json!(Vec::<i64>::try_from(m.flatten(0, -1)).unwrap())),
        floats(&r["confusion"])
    );
    close(
        classification::accuracy(p, t).unwrap(),
        r["accuracy"].as_f64().unwrap(),
        1e-9,
        "accuracy",
    );
    let mca = classification::mean_class_accuracy(&m).unwrap();
    close(
        mca,
        r["mean_class_accuracy"].as_f64().unwrap(),
        1e-9,
        "mean class accuracy",
    );
}

fn check_au(i: &Inputs, r: &Value) {
    let (p, t) = &i.au;
    let ours = au::f1_per_au(p, t, 0.5).unwrap();
    for (k, (a, b)) in ours.iter().zip(floats(&r["f1"])).enumerate() {
        close(*a, b, 1e-9, &format!("F1 of AU {k}"));
    }
    let names: Vec<String> = (0..12).map(|k| format!("AU{k}")).collect();
    close(
        au::mean_auc(p, t, &names).unwrap(),
        r["auc_mean"].as_f64().unwrap(),
        1e-9,
        "mean AUC",
    );
}

fn check_pose(i: &Inputs, r: &Value) {
    let m = pose::mae(&i.pose.0, &i.pose.1).unwrap();
    let theirs = floats(&r["mae"]);
    for (ours, (theirs, name)) in [m.yaw, m.pitch, m.roll, m.mean]
        .iter()
        .zip(theirs.iter().zip(["yaw", "pitch", "roll", "mean"]))
    {
        close(*ours, *theirs, 1e-9, name);
    }
}

fn check_verification(i: &Inputs, r: &Value) {
    let same: Vec<bool> = Vec::<bool>::try_from(&i.same).unwrap();
    let folds = verification::contiguous_folds(same.len(), 10);
    let ours =
        verification::k_fold_accuracy(&verification::pair_distances(&i.embeddings).unwrap(), &same, &folds).unwrap();
    close(ours.accuracy, r["accuracy"].as_f64().unwrap(), 1e-9, "10-fold accuracy");
    close(ours.std, r["std"].as_f64().unwrap(), 1e-9, "10-fold std");
    // (serde_json reads decimals to within an ulp, not always exactly.)
    for (a, b) in ours.fold_thresholds.iter().zip(floats(&r["thresholds"])) {
        close(*a, b, 1e-12, "a fold's threshold");
    }
    // The task is neither trivial nor hopeless.
    assert!(ours.accuracy > 70.0 && ours.accuracy < 99.0, "{}", ours.accuracy);
    // The component, with the same folds as a `fold` label, agrees.
    let per_image = |v: &[i64]| Tensor::from_slice(v).repeat_interleave_self_int(2, 0, None);
    let same_ids: Vec<i64> = same.iter().map(|&s| s as i64).collect();
    let labels: Labels = [
        ("same".to_string(), per_image(&same_ids)),
        ("fold".to_string(), per_image(&folds)),
    ]
    .into();
    let v = verification::Verification(Default::default())
        .compute(&i.embeddings, &labels)
        .unwrap();
    assert_eq!(v["accuracy"], ours.accuracy);
    let genuine: Vec<bool> = Vec::<bool>::try_from(&i.genuine).unwrap();
    let tar = verification::tar_at_far(&Vec::<f64>::try_from(&i.scores).unwrap(), &genuine, &FARS).unwrap();
    for ((ours, theirs), far) in tar.iter().zip(floats(&r["tar"]["tar"])).zip(FARS) {
        close(*ours, theirs, 1e-9, &format!("TAR at FAR {far}"));
    }
}

fn check_alignment(i: &Inputs, r: &Value) {
    let (predicted, target, boxes, visible) = &i.landmarks;
    let labels: Labels = [
        ("landmarks".to_string(), target.shallow_clone()),
        ("box".to_string(), boxes.shallow_clone()),
        ("landmarks_visible".to_string(), visible.shallow_clone()),
    ]
    .into();
    let [left, right] = pupils().map(PointSet::Many);
    let units = [
        (Unit::InterOcular, CORNERS.map(PointSet::One).to_vec()),
        (Unit::InterPupil, vec![left, right]),
        (Unit::Box, vec![]),
        (Unit::Diag, vec![]),
    ];
    for (unit, points) in units {
        let v = alignment::Nme(NmeParams::new(unit, points))
            .compute(predicted, &labels)
            .unwrap();
        let name = format!("nme_{}", unit.name());
        close(v[&name], r[&name].as_f64().unwrap(), 1e-9, &name);
    }
    let params = NmeParams {
        visible: Some("landmarks_visible".into()),
        ..NmeParams::new(Unit::Box, vec![])
    };
    let v = alignment::Nme(params).compute(predicted, &labels).unwrap();
    close(
        v["nme_box"],
        r["nme_box_visible"].as_f64().unwrap(),
        1e-9,
        "NME over visible points",
    );
    let params = NmeParams {
        threshold: Some(THRESHOLD),
        ..NmeParams::new(Unit::Box, vec![])
    };
    let v = alignment::FailureRate::new(params)
        .unwrap()
        .compute(predicted, &labels)
        .unwrap();
    let fr = r["failure_rate"].as_f64().unwrap();
    close(v["failure_rate_box"], fr, 1e-9, "failure rate");
    assert!(fr > 5.0 && fr < 95.0, "the threshold splits the images: {fr}");
    close(v["auc_box"], r["auc_exact"].as_f64().unwrap(), 1e-9, "CED AUC");
    // FaRL's Simpson approximation on a 1e-4 grid differs by about step / threshold.
    close(
        v["auc_box"],
        r["auc_simpson"].as_f64().unwrap(),
        100.0 * 1e-4 / THRESHOLD,
        "CED AUC (Simpson)",
    );
}

fn check_parsing(i: &Inputs, r: &Value) {
    let (p, t) = &i.parsing;
    let mut m = parsing::empty(11);
    for n in 0..3 {
        parsing::accumulate(&p.narrow(0, n, 1), &t.narrow(0, n, 1), 11, &mut m).unwrap();
    }
    assert_eq!(
        floats(&json!(Vec::<i64>::try_from(m.flatten(0, -1)).unwrap())),
        floats(&r["confusion"])
    );
    let s = parsing::scores(&m).unwrap();
    let theirs: Vec<Option<f64>> = r["f1"].as_array().unwrap().iter().map(Value::as_f64).collect();
    assert_eq!(s.f1.len(), theirs.len());
    assert!(s.f1[10].is_none() && theirs[10].is_none());
    for (c, (a, b)) in s.f1.iter().zip(&theirs).enumerate().take(10) {
        close(a.unwrap(), b.unwrap(), 1e-9, &format!("F1 of class {c}"));
    }
    close(s.fg_mean, r["fg_mean"].as_f64().unwrap(), 1e-9, "fg_mean");
    close(s.miou, r["miou"].as_f64().unwrap(), 1e-9, "mIoU");
}

#[test]
fn metrics_match_scikit_learn_numpy_and_the_lafs_protocol() {
    let i = inputs();
    let r = reference(&as_json(&i));
    check_classification(&i, &r["classification"]);
    check_au(&i, &r["au"]);
    check_pose(&i, &r["pose"]);
    let mut verification = r["verification"].clone();
    verification["tar"] = r["tar"].clone();
    check_verification(&i, &verification);
    check_alignment(&i, &r["alignment"]);
    check_parsing(&i, &r["parsing"]);
}
