//! Behaviour of the built-in augmentations, through the registry where the
//! parameters matter.

use tch::{Device, Kind, Tensor};

use super::geometry::{transform, Affine};
use super::*;
use crate::augmentation::Augmentation;
use crate::labels::{IBUG68, IBUG68_FLIP, LANDMARKS, LANDMARKS_VISIBLE, LAPA_FLIP, PARSING, POSE};
use crate::{Kind as ComponentKind, Sample};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

fn build(name: &str, params: &str) -> Result<Box<dyn Augmentation>> {
    let mut registry = Registry::new();
    crate::builtin::register(&mut registry)?;
    registry.build_augmentation(name, params)
}

fn floats(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_kind(Kind::Int64).flatten(0, -1)).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

fn random_image(c: i64, h: i64, w: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::rand([c, h, w], CPU)
}

/// Marked landmarks: (iBUG index, x, y, LaPa class painted around it). The
/// classes mirror with the indices (36 <-> 45 and 4 <-> 5, ...), so after any
/// chain point `i` must still sit on class `class(i)`.
const MARKS: [(usize, f64, f64, i64); 8] = [
    (36, 20.3, 22.6, 4),
    (45, 50.7, 21.2, 5),
    (17, 14.5, 12.5, 2),
    (26, 57.2, 13.8, 3),
    (30, 36.4, 33.3, 6),
    (51, 35.1, 42.7, 7),
    (57, 37.8, 50.2, 9),
    (62, 28.6, 46.1, 8),
];
const FACE_H: i64 = 60;
const FACE_W: i64 = 72;

/// A 60x72 face: skin (class 1) everywhere, a 5x5 blob of each mark's class
/// around its landmark, channel 0 of the image 1 on the blobs and 0
/// elsewhere; pose (20, -10, 5).
fn face() -> Sample {
    let (h, w) = (FACE_H as usize, FACE_W as usize);
    let mut mask = vec![1i64; h * w];
    let mut mark = vec![0f32; h * w];
    let mut points = vec![0f32; IBUG68 * 2];
    for i in 0..IBUG68 {
        // Unmarked points on a spiral, away from nothing in particular.
        points[2 * i] = 4.0 + (i as f32 * 7.3) % 64.0;
        points[2 * i + 1] = 3.0 + (i as f32 * 5.1) % 54.0;
    }
    for &(i, x, y, class) in &MARKS {
        points[2 * i] = x as f32;
        points[2 * i + 1] = y as f32;
        let (row, col) = (y as i64, x as i64);
        for r in row - 2..=row + 2 {
            for c in col - 2..=col + 2 {
                mask[(r * FACE_W + c) as usize] = class;
                mark[(r * FACE_W + c) as usize] = 1.0;
            }
        }
    }
    let mark = Tensor::from_slice(&mark).view([1, FACE_H, FACE_W]);
    let ramp = Tensor::arange(FACE_W, CPU)
        .view([1, 1, FACE_W])
        .expand([1, FACE_H, FACE_W], false)
        / FACE_W as f64;
    let image = Tensor::cat(&[mark, Tensor::full([1, FACE_H, FACE_W], 0.5, CPU), ramp], 0);
    Sample::new(image)
        .with_label(PARSING, Tensor::from_slice(&mask).view([FACE_H, FACE_W]))
        .with_label(LANDMARKS, Tensor::from_slice(&points).view([IBUG68 as i64, 2]))
        .with_label(LANDMARKS_VISIBLE, Tensor::ones([IBUG68 as i64], CPU))
        .with_label(POSE, Tensor::from_slice(&[20.0f32, -10.0, 5.0]))
        .with_label("identity", Tensor::from(7i64))
}

fn copy(s: &Sample) -> Sample {
    Sample {
        views: vec![],
        image: s.image.copy(),
        labels: s.labels.iter().map(|(k, v)| (k.clone(), v.copy())).collect(),
    }
}

#[test]
fn every_builtin_is_registered() {
    let mut r = Registry::new();
    crate::builtin::register(&mut r).unwrap();
    assert_eq!(
        r.names(ComponentKind::Augmentation),
        vec![
            "affine",
            "center_crop",
            "color_jitter",
            "distance_crop",
            "gaussian_blur",
            "gaussian_noise",
            "grayscale",
            "hflip",
            "normalize",
            "random_erasing",
            "random_resized_crop",
            "resize",
            "rotate",
            "sobel",
            "solarize"
        ]
    );
}

#[test]
fn hflip_twice_is_the_identity_and_once_mirrors_every_label() {
    let flip = build("hflip", r#"{"p": 1.0}"#).unwrap();
    let original = face();
    let once = flip.apply(copy(&original), 1).unwrap();
    let twice = flip.apply(copy(&once), 2).unwrap();
    assert_eq!(max_abs_diff(&twice.image, &original.image), 0.0);
    for name in [PARSING, LANDMARKS, LANDMARKS_VISIBLE, POSE, "identity"] {
        assert!(
            max_abs_diff(&twice.labels[name], &original.labels[name]) < 1e-5,
            "{name}"
        );
    }
    // Once: x -> W - x with the index permutation, yaw and roll negated.
    let before = floats(&original.labels[LANDMARKS]);
    let after = floats(&once.labels[LANDMARKS]);
    for i in 0..IBUG68 {
        let j = IBUG68_FLIP[i];
        assert!(
            (after[2 * i] - (FACE_W as f64 - before[2 * j])).abs() < 1e-5,
            "point {i}"
        );
        assert!((after[2 * i + 1] - before[2 * j + 1]).abs() < 1e-5, "point {i}");
    }
    assert_eq!(floats(&once.labels[POSE]), vec![-20.0, -10.0, -5.0]);
    let (m0, m1) = (ints(&original.labels[PARSING]), ints(&once.labels[PARSING]));
    let w = FACE_W as usize;
    for r in 0..FACE_H as usize {
        for c in 0..w {
            assert_eq!(m1[r * w + c], LAPA_FLIP[m0[r * w + (w - 1 - c)] as usize]);
        }
    }
    assert_eq!(max_abs_diff(&once.image, &original.image.flip([2])), 0.0);
    // p = 0 never flips.
    let never = build("hflip", r#"{"p": 0.0}"#).unwrap().apply(face(), 3).unwrap();
    assert_eq!(max_abs_diff(&never.image, &original.image), 0.0);
}

/// Whether some pixel within one of `(x, y)`'s pixel satisfies `pred`.
fn near(x: f64, y: f64, h: i64, w: i64, pred: impl Fn(usize) -> bool) -> bool {
    let (row, col) = (y.floor() as i64, x.floor() as i64);
    if pred((row * w + col) as usize) {
        return true;
    }
    (row - 1..=row + 1)
        .flat_map(|r| (col - 1..=col + 1).map(move |c| (r, c)))
        .filter(|&(r, c)| 0 <= r && r < h && 0 <= c && c < w)
        .any(|(r, c)| pred((r * w + c) as usize))
}

#[test]
fn landmarks_stay_on_their_features_through_random_geometric_chains() {
    let ops: Vec<Box<dyn Augmentation>> = [
        ("hflip", r#"{"p": 0.5}"#),
        ("rotate", r#"{"degrees": 30, "p": 0.8}"#),
        (
            "affine",
            r#"{"degrees": 15, "translate": [0.1, 0.1], "scale": [0.85, 1.15], "shear": [-8, 8, -5, 5]}"#,
        ),
        ("random_resized_crop", r#"{"size": [56, 64], "scale": [0.5, 1.0]}"#),
        ("resize", r#"{"size": [50, 66]}"#),
        ("center_crop", r#"{"size": [52, 60]}"#),
        ("resize", r#"{"size": 64}"#),
    ]
    .iter()
    .map(|(n, p)| build(n, p).unwrap())
    .collect();
    let (mut checked, mut hidden) = (0, 0);
    for seed in 0..80u64 {
        let mut rng = Rng::new(&[seed, 99]);
        let mut sample = face();
        for k in 0..4 {
            let op = &ops[(rng.next_u64() % ops.len() as u64) as usize];
            sample = op.apply(sample, rng.next_u64()).unwrap();
            let (_, h, w) = geometry::image_dims(&sample.image).unwrap();
            assert_eq!(sample.labels[PARSING].size(), vec![h, w], "seed {seed} step {k}");
            let mask = ints(&sample.labels[PARSING]);
            let mark = floats(&sample.image.get(0));
            let points = floats(&sample.labels[LANDMARKS]);
            let visible = floats(&sample.labels[LANDMARKS_VISIBLE]);
            for &(i, _, _, class) in &MARKS {
                let (x, y) = (points[2 * i], points[2 * i + 1]);
                let inside = x >= 0.0 && y >= 0.0 && x < w as f64 && y < h as f64;
                if visible[i] == 0.0 {
                    hidden += 1;
                    continue;
                }
                assert!(inside, "seed {seed}: visible point {i} at ({x}, {y}) outside {h}x{w}");
                assert!(
                    near(x, y, h, w, |p| mask[p] == class),
                    "seed {seed} step {k}: point {i} at ({x:.2}, {y:.2}) is not on class {class}"
                );
                assert!(
                    near(x, y, h, w, |p| mark[p] > 0.5),
                    "seed {seed} step {k}: point {i} at ({x:.2}, {y:.2}) is not on its image mark"
                );
                checked += 1;
            }
            assert_eq!(sample.labels["identity"].int64_value(&[]), 7);
        }
    }
    assert!(checked > 1500 && hidden > 0, "checked {checked}, hidden {hidden}");
}

#[test]
fn rotation_moves_points_about_the_centre_and_adds_to_roll() {
    // 90 degrees counter-clockwise on a square image: exactly torch's rot90.
    let image = random_image(3, 40, 40, 1);
    let sample = Sample::new(image.copy())
        .with_label(LANDMARKS, Tensor::from_slice(&[30.0f32, 10.0]).view([1, 2]))
        .with_label(POSE, Tensor::from_slice(&[0.0f32, 0.0, 10.0]));
    let out = transform(sample, &spatial::Rotate::op(90.0, 40, 40)).unwrap();
    assert!(max_abs_diff(&out.image, &image.rot90(1, [1, 2])) < 1e-5);
    // (30, 10) is (10, -10) from the centre (20, 20); CCW on screen takes
    // it to (-10, -10): (10, 10).
    let p = floats(&out.labels[LANDMARKS]);
    assert!((p[0] - 10.0).abs() < 1e-4 && (p[1] - 10.0).abs() < 1e-4, "{p:?}");
    assert!((floats(&out.labels[POSE])[2] - 100.0).abs() < 1e-4);

    // Random angles against a hand computation on a non-square image.
    let rotate = Rotate::new(RotateParams { degrees: 40.0, p: 1.0 }).unwrap();
    let (h, w) = (FACE_H, FACE_W);
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    for seed in 0..20 {
        let a = rotate.angle(seed).unwrap();
        assert!(a.abs() <= 40.0);
        let original = face();
        let out = rotate.apply(copy(&original), seed).unwrap();
        let (before, after) = (floats(&original.labels[LANDMARKS]), floats(&out.labels[LANDMARKS]));
        let (s, c) = a.to_radians().sin_cos();
        for i in 0..IBUG68 {
            let (dx, dy) = (before[2 * i] - cx, before[2 * i + 1] - cy);
            let (x, y) = (cx + c * dx + s * dy, cy - s * dx + c * dy);
            assert!((after[2 * i] - x).abs() < 1e-3 && (after[2 * i + 1] - y).abs() < 1e-3);
        }
        assert!((floats(&out.labels[POSE])[2] - (5.0 + a)).abs() < 1e-4);
        // Rotating back restores roll and the points.
        let back = transform(out, &spatial::Rotate::op(-a, h, w)).unwrap();
        let pose = floats(&back.labels[POSE]);
        assert!(
            (pose[2] - 5.0).abs() < 1e-4 && pose[0] == 20.0 && pose[1] == -10.0,
            "{pose:?}"
        );
        assert!(max_abs_diff(&back.labels[LANDMARKS], &original.labels[LANDMARKS]) < 1e-3);
    }
}

#[test]
fn affine_maps_compose_and_report_their_rotation() {
    let r = Affine::rotation_about(30.0, 5.0, 7.0);
    let (x, y) = r.then(&r.inverse().unwrap()).apply(3.0, -2.0);
    assert!((x - 3.0).abs() < 1e-12 && (y + 2.0).abs() < 1e-12);
    assert!((r.then(&Affine::scaling(2.0, 2.0)).rotation_degrees() - 30.0).abs() < 1e-9);
    // A mirror then a rotation: the rotation is still found.
    let m = Affine::hflip(10.0).then(&r);
    assert!(m.det() < 0.0 && (m.rotation_degrees() - 30.0).abs() < 1e-9);
    assert!(Affine::scaling(0.0, 1.0).inverse().is_err());
}

#[test]
fn random_resized_crop_respects_size_bounds_and_seed() {
    let crop = RandomResizedCrop::new(RandomResizedCropParams {
        size: Size::HeightWidth([32, 48]),
        scale: [0.08, 1.0],
        ratio: [0.75, 4.0 / 3.0],
        antialias: true,
    })
    .unwrap();
    let (h, w) = (160, 200);
    for seed in 0..300 {
        let b = crop.crop_box(seed, h, w);
        assert!(
            b.top >= 0 && b.left >= 0 && b.top + b.height <= h && b.left + b.width <= w,
            "{b:?}"
        );
        let area = (b.height * b.width) as f64 / (h * w) as f64;
        let ratio = b.width as f64 / b.height as f64;
        assert!((0.08 * 0.95..=1.0).contains(&area), "seed {seed}: area {area}");
        assert!(
            (0.75 * 0.97..=4.0 / 3.0 * 1.03).contains(&ratio),
            "seed {seed}: ratio {ratio}"
        );
    }
    let image = random_image(3, h, w, 2);
    let a = crop.apply(Sample::new(image.copy()), 5).unwrap();
    let b = crop.apply(Sample::new(image.copy()), 5).unwrap();
    let c = crop.apply(Sample::new(image.copy()), 6).unwrap();
    assert_eq!(a.image.size(), vec![3, 32, 48]);
    assert_eq!(max_abs_diff(&a.image, &b.image), 0.0);
    assert!(max_abs_diff(&a.image, &c.image) > 0.01);
    // Nothing fits: torchvision's fallback, the whole width at the largest
    // allowed height.
    let wide = RandomResizedCrop::new(RandomResizedCropParams {
        size: Size::Single(8),
        scale: [0.9, 1.0],
        ratio: [3.0, 4.0],
        antialias: true,
    })
    .unwrap();
    let b = wide.crop_box(0, 90, 90);
    assert_eq!((b.top, b.left, b.height, b.width), (30, 0, 30, 90));
}

#[test]
fn crops_and_resizes_move_landmarks_exactly() {
    let sample = || {
        Sample::new(random_image(1, 40, 60, 3))
            .with_label(LANDMARKS, Tensor::from_slice(&[30.0f32, 20.0, 1.0, 1.0]).view([2, 2]))
            .with_label(LANDMARKS_VISIBLE, Tensor::ones([2], CPU))
    };
    let out = build("resize", r#"{"size": 20}"#).unwrap().apply(sample(), 0).unwrap();
    assert_eq!(out.image.size(), vec![1, 20, 30]);
    assert_eq!(floats(&out.labels[LANDMARKS]), vec![15.0, 10.0, 0.5, 0.5]);
    let out = build("center_crop", r#"{"size": [20, 30]}"#)
        .unwrap()
        .apply(sample(), 0)
        .unwrap();
    assert_eq!(out.image.size(), vec![1, 20, 30]);
    assert_eq!(floats(&out.labels[LANDMARKS]), vec![15.0, 10.0, -14.0, -9.0]);
    assert_eq!(floats(&out.labels[LANDMARKS_VISIBLE]), vec![1.0, 0.0]);
    // A crop larger than the image pads with zeros.
    let out = build("center_crop", r#"{"size": 50}"#)
        .unwrap()
        .apply(sample(), 0)
        .unwrap();
    assert_eq!(out.image.size(), vec![1, 50, 50]);
    assert_eq!(floats(&out.image.get(0).get(0)), vec![0.0; 50]);
    assert_eq!(floats(&out.labels[LANDMARKS])[..2], [25.0, 25.0]);
}

#[test]
fn distance_crop_takes_two_quadrants_shared_by_both_views() {
    let params = |view| DistanceCropParams { ratio: 0.4, view };
    let (v0, v1) = (
        DistanceCrop::new(params(0)).unwrap(),
        DistanceCrop::new(params(1)).unwrap(),
    );
    let mut quadrants_seen = [0; 4];
    for seed in 0..200 {
        let boxes = v0.crop_boxes(seed, 64, 64).unwrap();
        assert_eq!(boxes, v1.crop_boxes(seed, 64, 64).unwrap());
        assert_ne!(boxes[0].0, boxes[1].0);
        for (q, b) in boxes {
            quadrants_seen[q] += 1;
            // 2 floor(64 · 0.2) = 24, inside its quadrant.
            assert_eq!((b.height, b.width), (24, 24));
            let (top, left) = (if q < 2 { 0 } else { 32 }, if q % 2 == 0 { 0 } else { 32 });
            assert!(
                b.top >= top && b.top + 24 <= top + 32 && b.left >= left && b.left + 24 <= left + 32,
                "{b:?}"
            );
        }
    }
    assert!(quadrants_seen.iter().all(|&n| n > 50), "{quadrants_seen:?}");
    let image = random_image(3, 64, 64, 4);
    let out = v1.apply(Sample::new(image.copy()), 9).unwrap();
    let b = v1.crop_boxes(9, 64, 64).unwrap()[1].1;
    assert_eq!(
        max_abs_diff(&out.image, &image.narrow(1, b.top, 24).narrow(2, b.left, 24)),
        0.0
    );
    assert!(v0.apply(Sample::new(random_image(3, 4, 4, 0)), 0).is_err());
}

#[test]
fn photometric_ops_do_what_they_say() {
    let image = random_image(3, 16, 20, 5);
    let run = |name: &str, params: &str| build(name, params).unwrap().apply(face_free(&image), 1).unwrap().image;
    let g = run("grayscale", r#"{"p": 1}"#);
    assert!(max_abs_diff(&g.get(0), &g.get(1)) == 0.0 && max_abs_diff(&g.get(1), &g.get(2)) == 0.0);
    let s = run("solarize", r#"{"threshold": 0.6, "p": 1}"#);
    let (x, y) = (floats(&image), floats(&s));
    assert!(x.iter().zip(&y).all(|(a, b)| if *a >= 0.6 {
        (b - (1.0 - a)).abs() < 1e-6
    } else {
        a == b
    }));
    let n = run("normalize", "{}");
    let mean = Tensor::from_slice(&[0.485f32, 0.456, 0.406]).view([3, 1, 1]);
    let std = Tensor::from_slice(&[0.229f32, 0.224, 0.225]).view([3, 1, 1]);
    assert!(max_abs_diff(&(n * std + mean), &image) < 1e-5);
    let constant = Tensor::full([3, 12, 12], 0.3, CPU);
    let blurred = build("gaussian_blur", r#"{"kernel_size": 7}"#)
        .unwrap()
        .apply(Sample::new(constant.copy()), 2)
        .unwrap()
        .image;
    assert!(max_abs_diff(&blurred, &constant) < 1e-6);
    let sobel = build("sobel", "{}").unwrap();
    let edges = sobel.apply(Sample::new(constant.copy()), 0).unwrap().image;
    assert_eq!(edges.size(), vec![3, 12, 12]);
    assert_eq!(edges.abs().max().double_value(&[]), 0.0);
    // A horizontal grey ramp: central differences of 2 steps of 0.05.
    let ramp = (Tensor::arange(12, CPU) * 0.05)
        .view([1, 1, 12])
        .expand([1, 12, 12], false);
    let edges = sobel.apply(Sample::new(ramp), 0).unwrap().image;
    assert!((floats(&edges.get(0).get(5).get(5))[0] - 0.1).abs() < 1e-6);
    // PCL's zero padding lights up the border of a constant image.
    let framed = build("sobel", r#"{"zero_padding": true}"#)
        .unwrap()
        .apply(Sample::new(constant.copy()), 0)
        .unwrap()
        .image;
    assert!(floats(&framed.get(0).get(0).get(0))[0] > 0.2);
    assert_eq!(floats(&framed.get(0).get(5).get(5))[0], 0.0);
}

fn face_free(image: &Tensor) -> Sample {
    let s = face();
    Sample {
        views: vec![],
        image: image.copy(),
        labels: s.labels,
    }
}

#[test]
fn photometric_ops_leave_labels_alone() {
    let image = random_image(3, FACE_H, FACE_W, 6);
    for (name, params) in [
        (
            "color_jitter",
            r#"{"brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2}"#,
        ),
        ("gaussian_noise", r#"{"std": 0.2}"#),
        ("random_erasing", r#"{"p": 1, "value": "random"}"#),
        ("sobel", "{}"),
    ] {
        let out = build(name, params).unwrap().apply(face_free(&image), 3).unwrap();
        assert!(max_abs_diff(&out.image, &image) > 0.01, "{name} did nothing");
        let original = face();
        for (k, v) in &original.labels {
            assert_eq!(max_abs_diff(&out.labels[k], v), 0.0, "{name} changed {k}");
        }
    }
}

#[test]
fn color_jitter_matches_hsv_and_handles_grey_images() {
    let red = Tensor::from_slice(&[1.0f32, 0.0, 0.0]).view([3, 1, 1]);
    let green = color::adjust_hue(&red, 1.0 / 3.0).unwrap();
    assert!(max_abs_diff(&green, &Tensor::from_slice(&[0.0f32, 1.0, 0.0]).view([3, 1, 1])) < 1e-5);
    let image = random_image(3, 8, 8, 7);
    assert!(max_abs_diff(&color::adjust_hue(&image, 0.0).unwrap(), &image) < 1e-5);
    let jitter = build("color_jitter", r#"{"brightness": 0.5, "saturation": 0.5, "hue": 0.1}"#).unwrap();
    let a = jitter.apply(Sample::new(image.copy()), 11).unwrap().image;
    let b = jitter.apply(Sample::new(image.copy()), 11).unwrap().image;
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    let grey = jitter.apply(Sample::new(random_image(1, 8, 8, 8)), 1).unwrap().image;
    assert_eq!(grey.size(), vec![1, 8, 8]);
    assert!(jitter.apply(Sample::new(random_image(2, 8, 8, 8)), 1).is_err());
}

#[test]
fn noise_and_erasing_are_seeded() {
    let image = Tensor::full([3, 64, 64], 0.5, CPU);
    let noise = build("gaussian_noise", r#"{"std": 0.05}"#).unwrap();
    let a = noise.apply(Sample::new(image.copy()), 1).unwrap().image;
    let b = noise.apply(Sample::new(image.copy()), 1).unwrap().image;
    let c = noise.apply(Sample::new(image.copy()), 2).unwrap().image;
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert!(max_abs_diff(&a, &c) > 0.01);
    let std = (&a - 0.5).std(true).double_value(&[]);
    assert!((std - 0.05).abs() < 0.003, "{std}");
    let erase = build("random_erasing", r#"{"p": 1, "value": [0.1, 0.2, 0.3]}"#).unwrap();
    let e = erase.apply(Sample::new(image.copy()), 4).unwrap().image;
    let erased = floats(&e.get(1).eq(0.2).sum(Kind::Int64))[0];
    assert!(erased >= 0.02 * 4096.0 * 0.9, "{erased}");
    assert_eq!(
        floats(&e.get(1).ne(0.2).logical_and(&e.get(1).ne(0.5)).sum(Kind::Int64))[0],
        0.0
    );
}

#[test]
fn bad_params_are_errors_naming_the_field() {
    for (name, params, field) in [
        ("hflip", r#"{"p": 1.5}"#, "p"),
        ("gaussian_noise", r#"{"std": -0.1}"#, "std"),
        ("gaussian_blur", r#"{"kernel_size": 4}"#, "kernel_size"),
        ("gaussian_blur", r#"{"kernel_size": 3, "sigma": [2, 1]}"#, "sigma"),
        ("random_resized_crop", r#"{"size": 8, "scale": [0.5, 0.2]}"#, "scale"),
        ("resize", r#"{"size": [0, 4]}"#, "size"),
        ("color_jitter", r#"{"hue": 0.7}"#, "hue"),
        ("color_jitter", r#"{"brightness": -1}"#, "brightness"),
        ("normalize", r#"{"mean": [0.5], "std": [0]}"#, "std"),
        ("distance_crop", r#"{"view": 2}"#, "view"),
        ("affine", r#"{"shear": [1, 2, 3]}"#, "shear"),
        ("random_erasing", r#"{"value": "noise"}"#, "value"),
        ("rotate", r#"{"degrees": 10, "q": 1}"#, "q"),
    ] {
        let err = match build(name, params) {
            Ok(_) => panic!("{name} accepted {params}"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&format!("at `{field}`")), "{name} {params}: {err}");
    }
}

#[test]
fn odd_inputs_are_errors_not_panics() {
    let flip = build("hflip", r#"{"p": 1}"#).unwrap();
    assert!(flip.apply(Sample::new(Tensor::zeros([4, 4], CPU)), 0).is_err());
    let wrong_mask = Sample::new(Tensor::zeros([3, 4, 4], CPU))
        .with_label(PARSING, Tensor::zeros([5, 4], (Kind::Int64, Device::Cpu)));
    assert!(flip.apply(wrong_mask, 0).unwrap_err().to_string().contains("parsing"));
    let few_points = Sample::new(Tensor::zeros([3, 4, 4], CPU)).with_label(LANDMARKS, Tensor::zeros([5, 2], CPU));
    assert!(flip.apply(few_points, 0).unwrap_err().to_string().contains("iBUG"));
    // Without labels, geometric ops just move pixels.
    let plain = build("rotate", r#"{"degrees": 10}"#)
        .unwrap()
        .apply(Sample::new(Tensor::ones([3, 9, 9], CPU)), 0)
        .unwrap();
    assert!(plain.labels.is_empty());
}

/// Same outputs as torchvision's functional ops (float rounding aside), on
/// reference tensors that `tests/reference/augmentations.py` writes with the
/// venv's torchvision (installed by `./scripts/test`).
#[test]
fn matches_torchvision() {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    let dir = std::env::temp_dir().join(format!("visage-tv-refs-{}", std::process::id()));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/augmentations.py");
    let out = std::process::Command::new(std::path::Path::new(&venv).join("bin/python"))
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = dir.display().to_string();
    let load = |n: &str| Tensor::read_npy(format!("{dir}/{n}.npy")).unwrap();
    let input = load("input");
    let (h, w) = (input.size()[1], input.size()[2]);
    let rotated = transform(Sample::new(input.copy()), &spatial::Rotate::op(25.0, h, w)).unwrap();
    assert!(max_abs_diff(&rotated.image, &load("rotate")) < 1e-5);
    for (name, params, reference) in [
        ("color_jitter", r#"{"hue": [0.1, 0.1]}"#, "hue"),
        ("color_jitter", r#"{"hue": [-0.37, -0.37]}"#, "hue_neg"),
        ("color_jitter", r#"{"saturation": [1.5, 1.5]}"#, "saturation"),
        ("color_jitter", r#"{"contrast": [0.6, 0.6]}"#, "contrast"),
        ("color_jitter", r#"{"brightness": [1.3, 1.3]}"#, "brightness"),
        ("resize", r#"{"size": [20, 30]}"#, "resize"),
        ("resize", r#"{"size": [57, 75]}"#, "resize_up"),
        ("resize", r#"{"size": 30}"#, "resize_short"),
        ("gaussian_blur", r#"{"kernel_size": 7, "sigma": 1.3}"#, "blur"),
        ("center_crop", r#"{"size": 50}"#, "center_crop"),
        ("center_crop", r#"{"size": [21, 30]}"#, "center_crop_small"),
        ("grayscale", r#"{"p": 1}"#, "gray"),
        ("solarize", r#"{"threshold": 0.6, "p": 1}"#, "solarize"),
        ("normalize", "{}", "normalize"),
    ] {
        let out = build(name, params)
            .unwrap()
            .apply(Sample::new(input.copy()), 0)
            .unwrap()
            .image;
        let r = load(reference);
        assert_eq!(out.size(), r.size(), "{reference}");
        let diff = max_abs_diff(&out, &r);
        assert!(diff < 1e-5, "{reference}: max abs diff {diff}");
    }
}

#[test]
fn normalized_params_build_the_same_component() {
    let mut registry = Registry::new();
    crate::builtin::register(&mut registry).unwrap();
    for (name, params) in [
        ("resize", r#"{"size": 64}"#),
        ("random_resized_crop", r#"{"size": [112, 96]}"#),
        ("affine", r#"{"degrees": 10, "shear": 5}"#),
        ("gaussian_blur", r#"{"kernel_size": 7, "sigma": 1.5}"#),
        ("color_jitter", r#"{"brightness": 0.8, "hue": [-0.1, 0.2]}"#),
        ("random_erasing", r#"{"value": "random"}"#),
        ("distance_crop", r#"{"view": 1}"#),
        ("sobel", r#"{"p": 0.6}"#),
    ] {
        let normalized = registry
            .info(ComponentKind::Augmentation, name)
            .unwrap()
            .normalize(params)
            .unwrap();
        let a = registry.build_augmentation(name, params).unwrap();
        let b = registry.build_augmentation(name, &normalized).unwrap();
        let image = random_image(3, 64, 64, 9);
        let (a, b) = (
            a.apply(Sample::new(image.copy()), 3).unwrap().image,
            b.apply(Sample::new(image.copy()), 3).unwrap().image,
        );
        assert_eq!(max_abs_diff(&a, &b), 0.0, "{name}: {normalized}");
    }
}

#[test]
fn affine_moves_pose_by_its_rotation_only() {
    let affine = RandomAffine::new(AffineParams {
        degrees: 25.0,
        translate: Some([0.1, 0.2]),
        scale: Some([0.8, 1.2]),
        shear: None,
        p: 1.0,
    })
    .unwrap();
    for seed in 0..10 {
        let map = affine.map(seed, FACE_H, FACE_W).unwrap();
        let out = affine.apply(face(), seed).unwrap();
        let pose = floats(&out.labels[POSE]);
        let roll = map.rotation_degrees();
        assert!(roll.abs() <= 25.0);
        assert!(
            pose[0] == 20.0 && pose[1] == -10.0 && (pose[2] - (5.0 + roll)).abs() < 1e-4,
            "{pose:?}"
        );
        // Landmarks follow the same map.
        let (before, after) = (floats(&face().labels[LANDMARKS]), floats(&out.labels[LANDMARKS]));
        let (x, y) = map.apply(before[0], before[1]);
        assert!((after[0] - x).abs() < 1e-3 && (after[1] - y).abs() < 1e-3);
    }
}
