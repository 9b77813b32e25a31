//! `runner export` end to end: each benchmark layout written from
//! `synthface` and read back as the benchmark's own tools read it (Python's
//! pickle and scipy for the binary files, parsers for the text files),
//! compared with the renderer's labels.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fails, ok, runner};
use synthface::{render, Face, SynthFaceParams};
use visage_core::dataset::Split;
use visage_core::labels;

const PARAMS: &str = "{resolution: 64, identities: 6, test_identities: 3, samples_per_identity: 4}";

fn params() -> SynthFaceParams {
    serde_json::from_value(serde_json::json!({
        "resolution": 64, "identities": 6, "test_identities": 3, "samples_per_identity": 4
    }))
    .unwrap()
}

/// The face the export wrote as sample `index` of `split` (seed 0).
fn face(split: Split, index: usize) -> Face {
    render(&params(), 0, split, index).unwrap()
}

/// Runs `runner export` on synthface into a fresh folder.
fn export(format: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = vec![
        "export",
        "--dataset",
        "synthface",
        "--dataset-params",
        PARAMS,
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let stdout = ok(runner(&args));
    assert!(stdout.contains("exported"), "{stdout}");
    (dir, out)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A decoded image `[3, H, W]` uint8.
fn image(path: &Path) -> tch::Tensor {
    tch::vision::image::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a Python script (argv[1] = `arg`) with the reference venv and
/// parses its JSON output.
fn python(script: &str, arg: &Path) -> serde_json::Value {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV (run under scripts/env.sh visage_env)");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .args(["-c", script, arg.to_str().unwrap()])
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn rafdb_maps_expressions_to_raf_labels() {
    let (_dir, out) = export("rafdb", &["--count", "5"]);
    let list = read(&out.join("EmoLabel/list_patition_label.txt"));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 10, "{list}");
    // RAF: 1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral.
    let raf = |name: &str| match name {
        "surprise" => 1,
        "fear" => 2,
        "disgust" => 3,
        "happy" => 4,
        "sad" => 5,
        "anger" => 6,
        "neutral" => 7,
        other => panic!("{other}"),
    };
    for (k, line) in lines.iter().enumerate() {
        let (split, prefix, i) = if k < 5 {
            (Split::Train, "train", k)
        } else {
            (Split::Test, "test", k - 5)
        };
        let (file, label) = line.split_once(' ').unwrap();
        assert_eq!(file, format!("{prefix}_{:05}.jpg", i + 1));
        let expected = raf(labels::EXPRESSIONS[face(split, i).expression]);
        assert_eq!(label.parse::<i32>().unwrap(), expected, "{line}");
        let img = image(&out.join(format!("Image/aligned/{prefix}_{:05}_aligned.jpg", i + 1)));
        assert_eq!(img.size(), [3, 100, 100]);
    }
}

#[test]
fn verification_bin_is_a_balanced_pickle_of_jpegs() {
    let (_dir, out) = export(
        "verification-bin",
        &["--count", "12", "--folds", "3", "--pairs", "2", "--name", "cfp_fp"],
    );
    let script = r#"
import io, json, pickle, sys
from PIL import Image
with open(sys.argv[1], 'rb') as f:
    bins, issame = pickle.load(f, encoding='bytes')
sizes = [Image.open(io.BytesIO(b)).size for b in bins]
formats = sorted({Image.open(io.BytesIO(b)).format for b in bins})
print(json.dumps({"bins": len(bins), "issame": [bool(x) for x in issame], "types": sorted({type(b).__name__ for b in bins}), "sizes": sorted(set(sizes)), "formats": formats}))
"#;
    let v = python(script, &out.join("cfp_fp.bin"));
    assert_eq!(v["bins"], 24);
    let same: Vec<bool> = v["issame"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    assert_eq!(same.len(), 12);
    assert_eq!(same.iter().filter(|&&s| s).count(), 6, "half same");
    // Each fold: 2 same pairs, then 2 different.
    assert_eq!(same[..4], [true, true, false, false]);
    assert_eq!(v["types"], serde_json::json!(["bytes"]));
    assert_eq!(v["sizes"], serde_json::json!([[64, 64]]));
    assert_eq!(v["formats"], serde_json::json!(["JPEG"]));
    // One split only.
    let err = fails(runner(&[
        "export",
        "--dataset",
        "synthface",
        "--format",
        "verification-bin",
        "--split",
        "both",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(err.contains("writes one split"), "{err}");
}

#[test]
fn lfw_pairs_reference_the_right_people() {
    let (_dir, out) = export("lfw-pairs", &["--count", "12", "--folds", "2", "--pairs", "3"]);
    let text = read(&out.join("pairs.txt"));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("2\t3"));
    let rest: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rest.len(), 12);
    // Rebuild LFW's names and numbers from the labels.
    let mut files = std::collections::BTreeMap::<(String, usize), usize>::new();
    let mut counts = std::collections::BTreeMap::<usize, usize>::new();
    for i in 0..12 {
        let id = face(Split::Test, i).identity;
        let n = counts.entry(id).or_default();
        *n += 1;
        files.insert((format!("Person_{id:04}"), *n), i);
    }
    let exists = |name: &str, n: &str| {
        let n: usize = n.parse().unwrap();
        assert!(files.contains_key(&(name.to_string(), n)), "{name} {n}");
        let path = out.join(name).join(format!("{name}_{n:04}.jpg"));
        assert_eq!(image(&path).size(), [3, 64, 64]);
    };
    for (k, fields) in rest.iter().enumerate() {
        let same = k % 6 < 3;
        if same {
            assert_eq!(fields.len(), 3, "{fields:?}");
            assert_ne!(fields[1], fields[2]);
            exists(fields[0], fields[1]);
            exists(fields[0], fields[2]);
        } else {
            assert_eq!(fields.len(), 4, "{fields:?}");
            assert_ne!(fields[0], fields[2]);
            exists(fields[0], fields[1]);
            exists(fields[2], fields[3]);
        }
    }
}

#[test]
fn au_lists_hold_the_au_labels() {
    let (_dir, out) = export("disfa", &["--count", "4"]);
    let csv = read(&out.join("train.csv"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "img_path,au_1,au_2,au_4,au_5,au_6,au_9,au_12,au_15,au_17,au_20,au_25,au_26"
    );
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[0], format!("images/train/train_{:05}.jpg", i + 1));
        assert!(out.join(fields[0]).exists());
        let values: Vec<f32> = fields[1..].iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(values, face(Split::Train, i).au(), "{line}");
    }
    assert_eq!(read(&out.join("test.csv")).lines().count(), 5);

    let (_dir, out) = export("bp4d", &["--count", "4", "--split", "test"]);
    assert!(!out.join("train.txt").exists());
    let text = read(&out.join("test.txt"));
    assert_eq!(text.lines().count(), 4);
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[0], format!("images/test/test_{:05}.jpg", i + 1));
        let au = face(Split::Test, i).au();
        for (k, field) in fields[1..].iter().enumerate() {
            let sign = if au[k] > 0.5 { 1 } else { -1 };
            assert_eq!(*field, format!("{}:{sign}", labels::AU_NAMES[k]));
        }
    }
}

#[test]
fn aflw2000_mat_files_hold_pose_and_points() {
    let (_dir, out) = export("aflw2000", &["--count", "3"]);
    let script = r#"
import glob, json, os, sys
import scipy.io
res = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.mat'))):
    m = scipy.io.loadmat(path)
    res[os.path.basename(path)] = {"Pose_Para": m["Pose_Para"].tolist(), "pt2d": m["pt2d"].tolist(), "jpg": os.path.exists(path[:-4] + '.jpg')}
print(json.dumps(res))
"#;
    let v = python(script, &out);
    assert_eq!(v.as_object().unwrap().len(), 3);
    let rad = std::f64::consts::PI / 180.0;
    for i in 0..3 {
        let f = face(Split::Test, i);
        let m = &v[format!("image{:05}.mat", i + 1)];
        assert_eq!(m["jpg"], true);
        let pose: Vec<f64> = m["Pose_Para"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(pose.len(), 7);
        let expected = [f.pose.pitch * rad, -f.pose.yaw * rad, -f.pose.roll * rad];
        for k in 0..3 {
            assert!(close(pose[k], expected[k], 1e-6), "{pose:?} vs {expected:?}");
        }
        assert_eq!(pose[3..], [0.0; 4]);
        let pt = m["pt2d"].as_array().unwrap();
        assert_eq!(pt.len(), 2);
        for (axis, row) in pt.iter().enumerate() {
            let row = row.as_array().unwrap();
            assert_eq!(row.len(), 68);
            for (p, value) in row.iter().enumerate() {
                let want = f.landmarks[p][axis] as f64 + 0.5;
                assert!(close(value.as_f64().unwrap(), want, 1e-5), "point {p}");
            }
        }
    }
}

#[test]
fn fsanet_npz_loads_in_numpy() {
    let (_dir, out) = export("fsanet-npz", &["--count", "3"]);
    let script = r#"
import json, os, sys
import numpy as np
res = {}
for split in ["train", "test"]:
    d = np.load(os.path.join(sys.argv[1], split + ".npz"))
    res[split] = {"keys": sorted(d.files), "image": [list(d["image"].shape), str(d["image"].dtype)], "pose": d["pose"].tolist(), "bgr": d["image"][1, 10, 20].tolist()}
print(json.dumps(res))
"#;
    let v = python(script, &out);
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let r = &v[name];
        assert_eq!(r["keys"], serde_json::json!(["image", "pose"]));
        assert_eq!(r["image"], serde_json::json!([[3, 64, 64, 3], "uint8"]));
        for i in 0..3 {
            let f = face(split, i);
            // yaw, pitch, roll in the .mat files' signs: -yaw, pitch, -roll of ours.
            let want = [-f.pose.yaw, f.pose.pitch, -f.pose.roll];
            for k in 0..3 {
                let got = r["pose"][i][k].as_f64().unwrap();
                assert!(close(got, want[k], 1e-4), "{got} vs {}", want[k]);
            }
        }
        // Pixel (10, 20) of face 1, blue first.
        let f = face(split, 1);
        let px = |c: usize| (f.image[c * 64 * 64 + 10 * 64 + 20].clamp(0.0, 1.0) * 255.0).round() as u64;
        assert_eq!(r["bgr"], serde_json::json!([px(2), px(1), px(0)]));
    }
}

#[test]
fn biwi_pose_files_hold_the_rotation() {
    let (_dir, out) = export("biwi", &["--count", "2", "--split", "test"]);
    for i in 0..2 {
        let f = face(Split::Test, i);
        let text = read(&out.join(format!("test/frame_{:05}_pose.txt", i + 1)));
        let rows: Vec<Vec<f64>> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(' ').map(|v| v.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[3], [0.0, 0.0, 0.0]);
        // The last row of Rz(roll) Rx(pitch) Ry(yaw) is
        // [-cos p sin y, -sin p, cos p cos y].
        let (y, p) = (f.pose.yaw.to_radians(), f.pose.pitch.to_radians());
        assert!(close(rows[2][0], -p.cos() * y.sin(), 1e-6), "{text}");
        assert!(close(rows[2][1], -p.sin(), 1e-6), "{text}");
        assert!(close(rows[2][2], p.cos() * y.cos(), 1e-6), "{text}");
        assert_eq!(
            image(&out.join(format!("test/frame_{:05}_rgb.png", i + 1))).size(),
            [3, 64, 64]
        );
    }
}

#[test]
fn hrnet_csv_rows_hold_the_box_and_points() {
    let (_dir, out) = export("hrnet-csv", &["--count", "2"]);
    let text = read(&out.join("face_landmarks_300w_train.csv"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("image_name,scale,center_w,center_h,original_0_x,original_0_y,"));
    for (i, line) in lines[1..].iter().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4 + 136);
        assert_eq!(fields[0], format!("train/train_{:05}.jpg", i + 1));
        assert!(out.join("images").join(fields[0]).exists());
        let f = face(Split::Train, i);
        let num = |k: usize| fields[k].parse::<f64>().unwrap();
        // 0-based pixel centres: ours - 0.5.
        assert!(close(num(4 + 2 * 8), f.landmarks[8][0] as f64 - 0.5, 1e-5));
        assert!(close(num(5 + 2 * 8), f.landmarks[8][1] as f64 - 0.5, 1e-5));
        let xs = f.landmarks.iter().map(|p| p[0] as f64);
        let (lo, hi) = (
            xs.clone().fold(f64::INFINITY, f64::min),
            xs.fold(f64::NEG_INFINITY, f64::max),
        );
        assert!(close(num(2), (lo + hi) / 2.0 - 0.5, 1e-5));
        assert!(num(1) * 200.0 >= hi - lo - 1e-4);
    }
}

#[test]
fn pts_files_hold_one_based_points() {
    let (_dir, out) = export("pts300w", &["--count", "3"]);
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        for i in 0..3 {
            let stem = out.join(name).join(format!("{name}_{:05}", i + 1));
            assert_eq!(image(&stem.with_extension("jpg")).size(), [3, 64, 64]);
            let text = read(&stem.with_extension("pts"));
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[..3], ["version: 1", "n_points:  68", "{"]);
            assert_eq!(lines[71], "}");
            assert_eq!(lines.len(), 72);
            let f = face(split, i);
            for (p, line) in lines[3..71].iter().enumerate() {
                let xy: Vec<f64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
                assert!(close(xy[0], f.landmarks[p][0] as f64 + 0.5, 1e-5), "{line}");
                assert!(close(xy[1], f.landmarks[p][1] as f64 + 0.5, 1e-5), "{line}");
            }
        }
    }
}

#[test]
fn wflw_needs_98_points() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(runner(&[
        "export",
        "--dataset",
        "synthface",
        "--dataset-params",
        PARAMS,
        "--format",
        "wflw",
        "--count",
        "2",
        "--out",
        dir.path().to_str().unwrap(),
    ]));
    assert!(
        err.contains("98-point landmarks") && err.contains("has 68 points"),
        "{err}"
    );
    assert!(!dir.path().join("list_98pt_rect_attr_train.txt").exists());
}

#[test]
fn aflw19_mat_derives_19_points() {
    let (_dir, out) = export("aflw19", &["--count", "3"]);
    let script = r#"
import json, sys, os
import scipy.io
m = scipy.io.loadmat(os.path.join(sys.argv[1], 'AFLWinfo_release.mat'))
print(json.dumps({k: m[k].tolist() for k in ['bbox', 'data', 'mask_new', 'ra']} | {"nameList": [str(c[0][0]) for c in m['nameList']], "shape": list(m['nameList'].shape)}))
"#;
    let v = python(script, &out);
    let rows = |k: &str| -> Vec<Vec<f64>> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
            .collect()
    };
    let (bbox, data, mask, ra) = (rows("bbox"), rows("data"), rows("mask_new"), rows("ra"));
    assert_eq!((bbox.len(), bbox[0].len()), (6, 4));
    assert_eq!((data.len(), data[0].len()), (6, 38));
    assert_eq!((mask.len(), mask[0].len()), (6, 19));
    assert_eq!(v["shape"], serde_json::json!([6, 1]));
    let mut order: Vec<f64> = ra[0].clone();
    assert!(order[..3].iter().all(|&r| r <= 3.0), "train first: {order:?}");
    order.sort_by(f64::total_cmp);
    assert_eq!(order, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    for n in 0..6 {
        let (split, name, i) = if n < 3 {
            (Split::Train, "train", n)
        } else {
            (Split::Test, "test", n - 3)
        };
        let file = format!("{name}/image{:05}.jpg", i + 1);
        assert_eq!(v["nameList"][n], file.as_str());
        assert!(out.join("flickr").join(&file).exists());
        let f = face(split, i);
        let lm = |p: usize, a: usize| f.landmarks[p][a] as f64 + 0.5;
        // Chin (19th), left eye centre (8th), nose tip (14th).
        for a in 0..2 {
            assert!(close(data[n][18 + 19 * a], lm(8, a), 1e-5));
            let eye = (36..42).map(|p| lm(p, a)).sum::<f64>() / 6.0;
            assert!(close(data[n][7 + 19 * a], eye, 1e-5));
            assert!(close(data[n][13 + 19 * a], lm(30, a), 1e-5));
        }
        assert_eq!(mask[n][0], if f.visible[17] { 1.0 } else { 0.0 });
        let left = (0..68).map(|p| lm(p, 0)).fold(f64::INFINITY, f64::min);
        assert!(close(bbox[n][0], left, 1e-5));
    }
}

/// The PNG's colour type and bit depth from its header.
fn png_kind(path: &Path) -> (u8, u8) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    (bytes[25], bytes[24])
}

#[test]
fn lapa_masks_are_exact() {
    let (_dir, out) = export("lapa", &["--count", "3", "--size", "48"]);
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        for i in 0..3 {
            let stem = format!("{name}_{:05}", i + 1);
            let dir = out.join(name);
            let png = dir.join("labels").join(format!("{stem}.png"));
            assert_eq!(png_kind(&png), (0, 8), "8-bit grey");
            let mask = Vec::<u8>::try_from(image(&png).select(0, 0).flatten(0, -1)).unwrap();
            // --size 48 from 64: nearest source pixel (i + 0.5) * 64 / 48.
            let f = face(split, i);
            let src = |k: usize| (2 * k + 1) * 64 / 96;
            let expected: Vec<u8> = (0..48 * 48)
                .map(|p| f.parsing[src(p / 48) * 64 + src(p % 48)])
                .collect();
            assert_eq!(mask, expected, "{stem}");
            assert_eq!(
                image(&dir.join("images").join(format!("{stem}.jpg"))).size(),
                [3, 48, 48]
            );
            let text = read(&dir.join("landmarks").join(format!("{stem}.txt")));
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], "68");
            assert_eq!(lines.len(), 69);
            let xy: Vec<f64> = lines[31].split(' ').map(|v| v.parse().unwrap()).collect();
            let scale = 48.0 / 64.0;
            assert!(
                close(xy[0], f.landmarks[30][0] as f64 * scale - 0.5, 6e-4),
                "{}",
                lines[31]
            );
            assert!(close(xy[1], f.landmarks[30][1] as f64 * scale - 0.5, 6e-4));
        }
    }
    // Without --size the mask is the label itself.
    let (_dir, out) = export("lapa", &["--count", "1", "--split", "test"]);
    let png = out.join("test/labels/test_00001.png");
    let mask = Vec::<u8>::try_from(image(&png).select(0, 0).flatten(0, -1)).unwrap();
    assert_eq!(mask, face(Split::Test, 0).parsing);
}

#[test]
fn celebamask_parts_paint_back_to_the_mask() {
    let (_dir, out) = export("celebamask", &["--count", "2"]);
    // CelebAMask-HQ's paint order and the LaPa class of each part.
    let order = [
        ("skin", 1u8),
        ("l_brow", 2),
        ("r_brow", 3),
        ("l_eye", 4),
        ("r_eye", 5),
        ("nose", 6),
        ("mouth", 8),
        ("l_lip", 9),
        ("u_lip", 7),
        ("hair", 10),
    ];
    let partition = read(&out.join("list_eval_partition.txt"));
    assert_eq!(partition, "000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n000004.jpg 2\n");
    let mapping = read(&out.join("CelebA-HQ-to-CelebA-mapping.txt"));
    assert_eq!(mapping.lines().nth(3), Some("2 2 000003.jpg"));
    for id in 0..4 {
        let f = if id < 2 {
            face(Split::Train, id)
        } else {
            face(Split::Test, id - 2)
        };
        assert!(out.join(format!("CelebA-HQ-img/{id}.jpg")).exists());
        let mut painted = vec![0u8; 64 * 64];
        for (part, class) in order {
            let path = out.join(format!("CelebAMask-HQ-mask-anno/0/{id:05}_{part}.png"));
            if !path.exists() {
                assert!(!f.parsing.contains(&class), "{part} missing for {id}");
                continue;
            }
            assert_eq!(png_kind(&path), (0, 8));
            let mask = Vec::<u8>::try_from(image(&path).select(0, 0).flatten(0, -1)).unwrap();
            for (p, &m) in mask.iter().enumerate() {
                assert!(m == 0 || m == 255);
                if m == 255 {
                    painted[p] = class;
                }
            }
        }
        assert_eq!(painted, f.parsing, "sample {id}");
    }
}

#[test]
fn imagefolder_by_expression() {
    let (_dir, out) = export("imagefolder", &["--count", "6", "--label", "expression"]);
    for i in 0..6 {
        let class = labels::EXPRESSIONS[face(Split::Train, i).expression];
        assert!(
            out.join(class).join(format!("{:05}.png", i + 1)).exists(),
            "{class} {i}"
        );
    }
    let (_dir, out) = export("imagefolder", &["--count", "2", "--split", "both"]);
    let id = face(Split::Test, 0).identity;
    assert!(out.join(format!("test/{id:05}/00001.png")).exists());
}

#[test]
fn errors_name_the_label_and_the_formats() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let err = fails(runner(&[
        "export",
        "--dataset",
        "example_shapes",
        "--format",
        "rafdb",
        "--count",
        "2",
        "--out",
        out,
    ]));
    assert!(
        err.contains("format `rafdb` needs the label `expression`") && err.contains("example_shapes"),
        "{err}"
    );
    let err = fails(runner(&[
        "export",
        "--dataset",
        "synthface",
        "--format",
        "sfew",
        "--out",
        out,
    ]));
    assert!(err.contains("unknown export format `sfew`"), "{err}");
    for name in [
        "rafdb",
        "verification-bin",
        "lfw-pairs",
        "disfa",
        "bp4d",
        "aflw2000",
        "fsanet-npz",
        "biwi",
        "pts300w",
        "hrnet-csv",
        "wflw",
        "aflw19",
        "lapa",
        "celebamask",
        "imagefolder",
        "fer2013",
        "affectnet",
        "mxnet-rec",
    ] {
        assert!(err.contains(name), "{name} not listed: {err}");
    }
}
