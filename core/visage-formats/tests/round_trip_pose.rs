//! Pose layouts: synthface written by each writer and read back by its
//! reader, labels equal to the generator's within the file's precision.

mod synth;

use synth::{export, face, pixels, values};
use visage_core::dataset::{Dataset, Split};
use visage_core::labels;
use visage_formats::pose::{self, read_biwi_pose, read_fsanet_npz, read_pose_mat};

const BOTH: [Split; 2] = [Split::Train, Split::Test];

/// Our pose of a face as its f32 label, in f64.
fn label_pose(split: Split, i: usize) -> [f64; 3] {
    let p = face(split, i).pose;
    [p.yaw as f32 as f64, p.pitch as f32 as f64, p.roll as f32 as f64]
}

#[test]
fn aflw2000_mat_round_trip() {
    let (_dir, out) = export("aflw2000", &[Split::Test], 4);
    for i in 0..4 {
        let f = face(Split::Test, i);
        let read = read_pose_mat(&out.join(format!("image{:05}.mat", i + 1))).unwrap();
        let want = label_pose(Split::Test, i);
        for k in 0..3 {
            // Degrees -> radians -> degrees in doubles.
            assert!((read.pose[k] - want[k]).abs() < 1e-12, "{:?} vs {want:?}", read.pose);
        }
        for (p, xy) in read.landmarks.iter().enumerate() {
            // f32 + 0.5 - 0.5 in doubles is exact.
            assert_eq!(*xy, [f.landmarks[p][0] as f64, f.landmarks[p][1] as f64]);
        }
    }
    let all = pose::pose_mat_dataset(&out, None).unwrap();
    assert_eq!(all.len(), 4);
    let info = all.info();
    assert_eq!(info.labels, [labels::POSE, labels::LANDMARKS]);
    assert_eq!(info.landmarks.unwrap().inter_ocular, Some([36, 45]));
    let s = all.get(2).unwrap();
    assert_eq!(s.image.size(), [3, 48, 48]);
    let pose = values(&s.labels[labels::POSE]);
    let want = label_pose(Split::Test, 2);
    assert!((0..3).all(|k| (pose[k] - want[k]).abs() < 1e-4), "{pose:?}");
    // The angle filter: only faces with every |angle| <= 20 degrees.
    let kept = (0..4)
        .filter(|&i| label_pose(Split::Test, i).iter().all(|a| a.abs() <= 20.0))
        .count();
    let filtered = pose::pose_mat_dataset(&out, Some(20.0));
    match kept {
        0 => assert!(filtered.is_err()),
        n => assert_eq!(filtered.unwrap().len(), n),
    }
}

#[test]
fn fsanet_npz_round_trip() {
    let (_dir, out) = export("fsanet-npz", &BOTH, 3);
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let arrays = read_fsanet_npz(&out.join(format!("{name}.npz"))).unwrap();
        assert_eq!((arrays.count, arrays.height, arrays.width), (3, 48, 48));
        for i in 0..3 {
            assert_eq!(arrays.poses[i], label_pose(split, i), "exact: float64 of the f32 label");
        }
        // BGR in the file: the blue channel of pixel (0, 0) first... read back as RGB.
        let f = face(split, 1);
        let px = pixels(&f);
        let plane = 48 * 48;
        let at = (48 * 48 * 3) + (5 * 48 + 7) * 3;
        assert_eq!(arrays.bgr[at], px[2 * plane + 5 * 48 + 7], "blue first");
        assert_eq!(arrays.bgr[at + 2], px[5 * 48 + 7], "red last");
        let s = arrays.get(1).unwrap();
        let back: Vec<u8> = values(&s.image).iter().map(|v| (v * 255.0).round() as u8).collect();
        assert_eq!(back, px);
        assert_eq!(values(&s.labels[labels::POSE]), label_pose(split, 1));
    }
}

#[test]
fn biwi_round_trip() {
    let (_dir, out) = export("biwi", &BOTH, 3);
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        for i in 0..3 {
            let read = read_biwi_pose(&out.join(format!("{name}/frame_{:05}_pose.txt", i + 1))).unwrap();
            let angles = read.angles();
            let want = label_pose(split, i);
            for k in 0..3 {
                // 9 decimals of the rotation: about 1e-7 degrees.
                assert!((angles[k] - want[k]).abs() < 1e-6, "{angles:?} vs {want:?}");
            }
            assert_eq!(read.translation, [0.0; 3]);
        }
        let data = pose::biwi_dataset(&out.join(name)).unwrap();
        assert_eq!(data.len(), 3);
        let s = data.get(0).unwrap();
        let back: Vec<u8> = values(&s.image).iter().map(|v| (v * 255.0).round() as u8).collect();
        assert_eq!(back, pixels(&face(split, 0)), "PNG is lossless");
    }
}

#[test]
fn registered_datasets_take_typed_params() {
    let (_dir, out) = export("biwi", &[Split::Test], 2);
    let mut registry = visage_core::Registry::new();
    visage_formats::register(&mut registry).unwrap();
    for name in [
        "aflw2000",
        "fsanet_npz",
        "biwi",
        "pts300w",
        "hrnet_csv",
        "wflw",
        "aflw19",
        "lapa",
        "celebamask",
    ] {
        assert!(registry.names(visage_core::Kind::Dataset).contains(&name), "{name}");
    }
    let ctx = |split| visage_core::dataset::DatasetContext { split, seed: 0 };
    let params = serde_json::json!({ "test": out.join("test") }).to_string();
    let data = registry.build_dataset("biwi", &params, &ctx(Split::Test)).unwrap();
    assert_eq!(data.len(), 2);
    let err = registry
        .build_dataset("biwi", &params, &ctx(Split::Train))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("the train split is read from the parameter `train`, which is not set"),
        "{err}"
    );
    let typo = serde_json::json!({ "tset": out }).to_string();
    let err = registry
        .build_dataset("biwi", &typo, &ctx(Split::Test))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tset"), "{err}");
    // AFLW2000's angle filter is on by default.
    let schema = registry.info(visage_core::Kind::Dataset, "aflw2000").unwrap();
    let normal = schema.normalize("{}").unwrap();
    assert!(normal.contains("\"max_angle\":99.0"), "{normal}");
}
