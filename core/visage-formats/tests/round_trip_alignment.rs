//! Alignment layouts: synthface written by each writer and read back by its
//! reader, labels equal to the generator's within the file's precision.

mod synth;

use synth::{export, export_from, face, synthface, values};
use visage_core::dataset::{Dataset, Split};
use visage_core::{labels, Result, Sample};
use visage_formats::alignment::{
    self, aflw19_dataset, aflw19_points, read_aflw19, read_hrnet_csv, read_pts, read_wflw_list, Aflw19Params,
};

const BOTH: [Split; 2] = [Split::Train, Split::Test];

fn marks(split: Split, i: usize) -> Vec<[f64; 2]> {
    face(split, i)
        .landmarks
        .iter()
        .map(|p| [p[0] as f64, p[1] as f64])
        .collect()
}

fn close(a: [f64; 2], b: [f64; 2], tol: f64) -> bool {
    (a[0] - b[0]).abs() <= tol && (a[1] - b[1]).abs() <= tol
}

#[test]
fn pts_round_trip() {
    let (_dir, out) = export("pts300w", &BOTH, 3);
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        for i in 0..3 {
            let read = read_pts(&out.join(format!("{name}/{name}_{:05}.pts", i + 1))).unwrap();
            let want = marks(split, i);
            assert_eq!(read.len(), 68);
            // 6 decimals.
            assert!(read.iter().zip(&want).all(|(a, b)| close(*a, *b, 5.1e-7)), "{name} {i}");
        }
        let data = alignment::pts_dataset(&out.join(name)).unwrap();
        assert_eq!(data.len(), 3);
        let lm = values(&data.get(1).unwrap().labels[labels::LANDMARKS]);
        assert!((lm[2 * 30] - marks(split, 1)[30][0]).abs() < 1e-5);
        assert!(!data.info().landmarks.unwrap().has_box);
    }
}

#[test]
fn hrnet_csv_round_trip() {
    let (_dir, out) = export("hrnet-csv", &BOTH, 3);
    let csv = out.join("face_landmarks_300w_test.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("image_name,scale,center_w,center_h,original_0_x,original_0_y,"));
    let rows = read_hrnet_csv(&csv).unwrap();
    assert_eq!(rows.len(), 3);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.image, format!("test/test_{:05}.jpg", i + 1));
        let want = marks(Split::Test, i);
        assert!(row.landmarks.iter().zip(&want).all(|(a, b)| close(*a, *b, 5.1e-7)));
        // Box: the landmarks' bounds' centre +- half the longer side.
        let lo = |k: usize| want.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
        let hi = |k: usize| want.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max);
        let half = (hi(0) - lo(0)).max(hi(1) - lo(1)) / 2.0;
        let (cx, cy) = ((lo(0) + hi(0)) / 2.0, (lo(1) + hi(1)) / 2.0);
        let b = row.face_box();
        // scale has 6 decimals: 100 * 5e-7 on each side.
        for (got, want) in b.iter().zip([cx - half, cy - half, cx + half, cy + half]) {
            assert!((got - want).abs() < 6e-5, "{b:?}");
        }
    }
    let data = alignment::hrnet_dataset(&csv, None).unwrap();
    let s = data.get(0).unwrap();
    assert_eq!(values(&s.labels[labels::BOX]).len(), 4);
    assert!(data.info().landmarks.unwrap().has_box);
}

/// synthface with 98 points: the 68, then points 0..30 moved by a quarter
/// pixel (WFLW has 98; the writer refuses 68).
struct Synth98(Box<dyn Dataset>);

fn to_98(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut out = points.to_vec();
    // In f32, as the tensor label is.
    let moved = |v: f64| (v as f32 + 0.25) as f64;
    out.extend(points[..30].iter().map(|p| [moved(p[0]), moved(p[1])]));
    out
}

impl Dataset for Synth98 {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let mut s = self.0.get(index)?;
        let lm = s.labels[labels::LANDMARKS].shallow_clone();
        let extra = lm.narrow(0, 0, 30) + 0.25;
        s.labels
            .insert(labels::LANDMARKS.into(), tch::Tensor::cat(&[lm, extra], 0));
        let v = s.labels[labels::LANDMARKS_VISIBLE].shallow_clone();
        let extra = v.narrow(0, 0, 30);
        s.labels.insert(
            labels::LANDMARKS_VISIBLE.into(),
            tch::Tensor::cat(&[v.shallow_clone(), extra], 0),
        );
        Ok(s)
    }
}

#[test]
fn wflw_round_trip() {
    let (_dir, out) = export_from("wflw", &BOTH, 3, |split| Box::new(Synth98(synthface(split))));
    let list = out.join("list_98pt_rect_attr_train.txt");
    let faces = read_wflw_list(&list).unwrap();
    assert_eq!(faces.len(), 3);
    for (i, read) in faces.iter().enumerate() {
        let f = face(Split::Train, i);
        let want = to_98(&marks(Split::Train, i));
        assert!(read.landmarks.iter().zip(&want).all(|(a, b)| close(*a, *b, 5.1e-7)));
        let lo = |k: usize| want.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min).floor();
        let hi = |k: usize| want.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max).ceil();
        assert_eq!(read.face_box, [lo(0), lo(1), hi(0), hi(1)]);
        let pose = [f.pose.yaw, f.pose.pitch, f.pose.roll]
            .iter()
            .any(|a| (*a as f32).abs() > 45.0);
        assert_eq!(read.attributes[0], pose);
        assert_eq!(read.attributes[1], f.expression != 0);
        assert_eq!(read.attributes[4], f.visible.iter().any(|v| !v));
        assert_eq!(read.image, format!("train/train_{:05}.jpg", i + 1));
    }
    let data = alignment::wflw_dataset(&list, None).unwrap();
    let info = data.info();
    let layout = info.landmarks.unwrap();
    assert_eq!(
        (layout.count, layout.inter_ocular, layout.pupils),
        (98, Some([60, 72]), Some([vec![96], vec![97]]))
    );
    assert_eq!(info.labels, [labels::LANDMARKS, labels::BOX]);
    assert_eq!(data.get(2).unwrap().labels[labels::LANDMARKS].size(), [98, 2]);
}

#[test]
fn aflw19_round_trip() {
    let (_dir, out) = export("aflw19", &BOTH, 3);
    let file = out.join("AFLWinfo_release.mat");
    let info = read_aflw19(&file).unwrap();
    assert_eq!(info.faces.len(), 6);
    for n in 0..6 {
        let (split, i) = if n < 3 { (Split::Train, n) } else { (Split::Test, n - 3) };
        let f = face(split, i);
        let read = &info.faces[n];
        let want = aflw19_points(&marks(split, i), &f.visible).unwrap();
        for (k, (xy, visible)) in want.iter().enumerate() {
            assert!(close(read.landmarks[k], *xy, 1e-12), "face {n} point {k}");
            assert_eq!(read.visible[k], *visible);
        }
        let m = marks(split, i);
        let left = m.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
        let bottom = m.iter().map(|p| p[1]).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((read.face_box[0], read.face_box[3]), (left, bottom));
    }
    let params = |frontal| Aflw19Params {
        file: file.clone(),
        images: None,
        train_count: None,
        frontal,
    };
    // Train: the first 3 of `ra`, the train faces (the export's train count).
    let train = aflw19_dataset(&params(false), Split::Train).unwrap();
    assert_eq!(train.len(), 3);
    let mut seen: Vec<usize> = info.order[..3].to_vec();
    seen.sort();
    assert_eq!(seen, [0, 1, 2]);
    let first = info.order[0];
    let s = train.get(0).unwrap();
    let lm = values(&s.labels[labels::LANDMARKS]);
    assert!((lm[0] - info.faces[first].landmarks[0][0]).abs() < 1e-4);
    assert_eq!(s.labels[labels::LANDMARKS_VISIBLE].size(), [19]);
    assert!(train
        .source(0)
        .unwrap()
        .ends_with(format!("flickr/train/image{:05}.jpg", first + 1)));
    let layout = train.info().landmarks.unwrap();
    assert_eq!(
        (layout.inter_ocular, layout.pupils, layout.has_box),
        (Some([6, 11]), Some([vec![7], vec![10]]), true)
    );
    // Frontal: the test faces with all 19 points visible.
    let frontal = (3..6).filter(|&n| info.faces[n].visible.iter().all(|&v| v)).count();
    match aflw19_dataset(&params(true), Split::Test) {
        Ok(d) => assert_eq!(d.len(), frontal),
        Err(e) => assert!(frontal == 0 && e.to_string().contains("no faces in this split"), "{e}"),
    }
}
