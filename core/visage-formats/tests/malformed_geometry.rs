//! Hand-made malformed files for the pose, alignment and parsing readers:
//! each is an error naming the file, the line or record and what was
//! expected; none panics.

mod synth;

use std::path::{Path, PathBuf};

use synth::{err, export};
use visage_core::dataset::{Dataset, Split};
use visage_formats::alignment::{self, read_aflw19, read_hrnet_csv, read_pts, read_wflw_list};
use visage_formats::codec::mat::{self, Value};
use visage_formats::codec::npy::Npy;
use visage_formats::codec::npz;
use visage_formats::parsing::{read_lapa_landmarks, CelebAMask, CelebAMaskParams, Lapa, LapaParams};
use visage_formats::pose::{self, read_biwi_pose, read_fsanet_npz, read_pose_mat};

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn image(path: &Path) {
    let pixels = tch::Tensor::zeros([3, 4, 4], (tch::Kind::Uint8, tch::Device::Cpu));
    visage_formats::io::save_image(path, &pixels).unwrap();
}

fn has(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "`{p}` not in: {e}");
    }
}

fn pose_mat(pt2d_cols: usize) -> Vec<u8> {
    mat::write(&[
        (
            "Pose_Para",
            Value::matrix(1, 7, vec![0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 0.0]),
        ),
        ("pt2d", Value::matrix(2, pt2d_cols, vec![1.0; 2 * pt2d_cols])),
    ])
    .unwrap()
}

#[test]
fn pose_mat_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir.path().join("a.mat"), pose_mat(68));
    assert_eq!(read_pose_mat(&good).unwrap().landmarks[0], [0.5, 0.5]);
    let bytes = pose_mat(68);
    let cut = write(&dir.path().join("cut.mat"), &bytes[..bytes.len() - 100]);
    // pt2d's element: 16 (flags) + 16 (dims) + 16 (name) + 8 + 2 * 68 * 8 bytes.
    has(
        &err(read_pose_mat(&cut)),
        &["cut.mat: variable 2 (element at byte 256): truncated at byte 264: the element needs 1144 bytes, 1044 left"],
    );
    let short = write(&dir.path().join("short.mat"), &bytes[..100]);
    has(
        &err(read_pose_mat(&short)),
        &["short.mat", "expected at least the 128-byte header"],
    );
    let few = write(&dir.path().join("few.mat"), pose_mat(5));
    has(&err(read_pose_mat(&few)), &["few.mat", "`pt2d` is 2x5, expected 2x68"]);
    let no_pt = write(
        &dir.path().join("nopt.mat"),
        mat::write(&[("Pose_Para", Value::matrix(1, 7, vec![0.0; 7]))]).unwrap(),
    );
    has(
        &err(read_pose_mat(&no_pt)),
        &["nopt.mat", "no variable `pt2d` (the file has: Pose_Para)"],
    );
    has(
        &err(read_pose_mat(&dir.path().join("gone.mat"))),
        &["gone.mat", "cannot read"],
    );
    // A face image without its .mat.
    let folder = dir.path().join("set");
    image(&folder.join("x.jpg"));
    has(
        &err(pose::pose_mat_dataset(&folder, None)),
        &["x.jpg", "x.mat beside it"],
    );
}

#[test]
fn fsanet_npz_files() {
    let dir = tempfile::tempdir().unwrap();
    let images = Npy::u8(vec![2, 2, 2, 3], vec![7; 24]);
    let save = |name: &str, pose: &Npy| {
        write(
            &dir.path().join(name),
            npz::write(&[("image", &images), ("pose", pose)]).unwrap(),
        )
    };
    let good = save("good.npz", &Npy::f64(vec![2, 3], &[1.0, 2.0, 3.0, -4.0, 5.0, 6.0]));
    assert_eq!(read_fsanet_npz(&good).unwrap().poses[1], [4.0, 5.0, -6.0]);
    let bytes = std::fs::read(&good).unwrap();
    let cut = write(&dir.path().join("cut.npz"), &bytes[..bytes.len() - 30]);
    has(
        &err(read_fsanet_npz(&cut)),
        &["cut.npz", "not a readable .npz (zip) archive, truncated or damaged"],
    );
    let shape = save("shape.npz", &Npy::f64(vec![2, 2], &[0.0; 4]));
    has(
        &err(read_fsanet_npz(&shape)),
        &["shape.npz", "array `pose` has shape [2, 2], expected (2, 3)"],
    );
    let range = save("range.npz", &Npy::f64(vec![2, 3], &[0.0, 0.0, 0.0, 0.0, 500.0, 0.0]));
    has(
        &err(read_fsanet_npz(&range)),
        &["range.npz", "record 1", "not three angles in -180..=180"],
    );
    let missing = write(&dir.path().join("one.npz"), npz::write(&[("image", &images)]).unwrap());
    has(
        &err(read_fsanet_npz(&missing)),
        &["one.npz", "no array `pose` (the archive has: image)"],
    );
    // A truncated array inside a whole archive.
    let mut bad = images.clone();
    bad.data.truncate(20);
    let inner = write(
        &dir.path().join("inner.npz"),
        npz::write(&[("image", &Npy::u8(vec![20], bad.data))]).unwrap(),
    );
    let mut raw = std::fs::read(&inner).unwrap();
    // The shape says 20 values; claim 24 instead.
    let at = raw.windows(5).position(|w| w == b"(20,)").unwrap();
    raw[at + 1..at + 3].copy_from_slice(b"24");
    let inner = write(&inner, raw);
    has(&err(read_fsanet_npz(&inner)), &["inner.npz", "entry `image.npy`"]);
}

#[test]
fn biwi_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str, text: &str| write(&dir.path().join(name), text);
    let good = p("g_pose.txt", "1 0 0\n0 1 0\n0 0 1\n\n1 2 3\n");
    assert_eq!(read_biwi_pose(&good).unwrap().angles(), [0.0, 0.0, 0.0]);
    let short = p("s_pose.txt", "1 0 0\n0 1\n0 0 1\n\n1 2 3\n");
    has(
        &err(read_biwi_pose(&short)),
        &["s_pose.txt:2: expected 3 numbers (row 2 of the rotation), found 2 in `0 1`"],
    );
    let ends = p("e_pose.txt", "1 0 0\n0 1 0\n0 0 1\n");
    has(
        &err(read_biwi_pose(&ends)),
        &["e_pose.txt: ends after 3 lines", "missing the translation"],
    );
    let skew = p("k_pose.txt", "1 0 0\n0 2 0\n0 0 1\n\n0 0 0\n");
    has(
        &err(read_biwi_pose(&skew)),
        &["k_pose.txt", "not a rotation (row 2 . row 2 = 4.0000, expected 1)"],
    );
    let text = p("t_pose.txt", "1 0 x\n0 1 0\n0 0 1\n\n0 0 0\n");
    has(
        &err(read_biwi_pose(&text)),
        &["t_pose.txt:1: expected a number (row 1 of the rotation), found `x`"],
    );
    image(&dir.path().join("f/frame_00001_rgb.png"));
    has(
        &err(pose::biwi_dataset(&dir.path().join("f"))),
        &["frame_00001_rgb.png", "frame_00001_pose.txt beside it"],
    );
}

#[test]
fn pts_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str, text: &str| write(&dir.path().join(name), text);
    let ok = p("ok.pts", "version: 1\nn_points: 2\n{\n1.5 2.5\n3 4\n}\n");
    assert_eq!(read_pts(&ok).unwrap(), [[1.0, 2.0], [2.5, 3.5]]);
    let cut = p("cut.pts", "version: 1\nn_points: 2\n{\n1.5 2.5\n3\n}\n");
    has(
        &err(read_pts(&cut)),
        &["cut.pts:5: expected point 2 of 2 (`x y`), found `3`"],
    );
    let open = p("open.pts", "version: 1\nn_points: 2\n{\n1 2\n3 4\n");
    has(&err(read_pts(&open)), &["open.pts: the file ends early, expected `}`"]);
    let count = p("count.pts", "version: 1\nn_points: two\n");
    has(
        &err(read_pts(&count)),
        &["count.pts:2: expected `n_points: N`, found `n_points: two`"],
    );
    // Two points where the dataset needs 68.
    let set = dir.path().join("set");
    write(&set.join("a.pts"), "version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n");
    has(&err(alignment::pts_dataset(&set)), &["a.pts: 2 points, expected 68"]);
    let mut text = String::from("version: 1\nn_points: 68\n{\n");
    text += &"1 1\n".repeat(68);
    text += "}\n";
    std::fs::remove_file(set.join("a.pts")).unwrap();
    write(&set.join("b.pts"), &text);
    has(&err(alignment::pts_dataset(&set)), &["b.pts: no image beside it"]);
}

#[test]
fn hrnet_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str, text: &str| write(&dir.path().join(name), text);
    let head = "image_name,scale,center_w,center_h,original_0_x,original_0_y\n";
    let ok = p("ok.csv", &format!("{head}a.jpg,1.0,10,20,1.5,2.5\n"));
    let rows = read_hrnet_csv(&ok).unwrap();
    assert_eq!(rows[0].face_box(), [-89.5, -79.5, 110.5, 120.5]);
    assert_eq!(rows[0].landmarks, [[2.0, 3.0]]);
    let short = p("short.csv", &format!("{head}a.jpg,1.0,10,20,1.5\n"));
    has(
        &err(read_hrnet_csv(&short)),
        &[
            "short.csv:2: expected `image,scale,center_w,center_h,x0,y0,...`",
            "found 5 fields",
        ],
    );
    let word = p("word.csv", &format!("{head}a.jpg,1.0,ten,20,1,2\n"));
    has(
        &err(read_hrnet_csv(&word)),
        &["word.csv:2: expected center_w, found `ten`"],
    );
    let scale = p("scale.csv", &format!("{head}a.jpg,-1,10,20,1,2\n"));
    has(
        &err(read_hrnet_csv(&scale)),
        &["scale.csv:2: the scale is -1, expected > 0"],
    );
    let ragged = p(
        "ragged.csv",
        &format!("{head}a.jpg,1,10,20,1,2\nb.jpg,1,10,20,1,2,3,4\n"),
    );
    has(
        &err(read_hrnet_csv(&ragged)),
        &["ragged.csv:3: 2 points, expected 1 as the first row"],
    );
    let mut row = String::from("a.jpg,1,10,20");
    row += &",1,1".repeat(68);
    let noimg = p("noimg.csv", &format!("{row}\n"));
    has(
        &err(alignment::hrnet_dataset(&noimg, None)),
        &["noimg.csv: row 1: image", "a.jpg not found"],
    );
}

#[test]
fn wflw_files() {
    let dir = tempfile::tempdir().unwrap();
    let line = |flag: &str, n: usize| {
        let mut f: Vec<String> = vec!["1.0".into(); n];
        f.extend(["0", "0", "9", "9"].map(String::from));
        f.extend(["0", "0", flag, "0", "0", "0"].map(String::from));
        f.push("a/b.jpg".into());
        f.join(" ") + "\n"
    };
    let ok = write(&dir.path().join("ok.txt"), line("1", 196));
    let faces = read_wflw_list(&ok).unwrap();
    assert_eq!(faces[0].landmarks[97], [1.5, 1.5]);
    assert_eq!(faces[0].attributes, [false, false, true, false, false, false]);
    let short = write(&dir.path().join("short.txt"), line("0", 195));
    has(&err(read_wflw_list(&short)), &["short.txt:1: 206 fields, expected 207"]);
    let flag = write(&dir.path().join("flag.txt"), line("0", 196) + &line("2", 196));
    has(
        &err(read_wflw_list(&flag)),
        &["flag.txt:2: attribute flag 3 is `2`, expected 0 or 1"],
    );
    let bad = write(&dir.path().join("bad.txt"), line("0", 196).replacen("1.0", "nan", 1));
    has(
        &err(read_wflw_list(&bad)),
        &["bad.txt:1: expected a number (coordinate x of point 0), found `nan`"],
    );
    has(
        &err(read_wflw_list(&dir.path().join("none.txt"))),
        &["none.txt: cannot read"],
    );
    has(
        &err(alignment::wflw_dataset(&ok, None)),
        &["ok.txt: face 1: image", "WFLW_images/a/b.jpg not found"],
    );
}

fn aflw_mat(mask: f64, ra: Vec<f64>) -> Vec<u8> {
    mat::write(&[
        (
            "bbox",
            Value::matrix(2, 4, vec![1.0, 9.0, 2.0, 8.0, 1.0, 9.0, 2.0, 8.0]),
        ),
        ("data", Value::matrix(2, 38, vec![3.0; 76])),
        ("mask_new", Value::matrix(2, 19, [vec![mask], vec![1.0; 37]].concat())),
        (
            "nameList",
            Value::Cell(vec![Value::Char("a.jpg".into()), Value::Char("b.jpg".into())]),
        ),
        ("ra", Value::matrix(1, 2, ra)),
    ])
    .unwrap()
}

#[test]
fn aflw19_files() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(&dir.path().join("ok.mat"), aflw_mat(0.0, vec![2.0, 1.0]));
    let info = read_aflw19(&ok).unwrap();
    assert_eq!(info.order, [1, 0]);
    assert_eq!(info.faces[0].face_box, [0.5, 1.5, 8.5, 7.5]);
    assert!(!info.faces[0].visible[0]);
    let mask = write(&dir.path().join("mask.mat"), aflw_mat(2.0, vec![2.0, 1.0]));
    has(
        &err(read_aflw19(&mask)),
        &["mask.mat: record 1: `mask_new` point 1 is 2, expected 0 or 1"],
    );
    let ra = write(&dir.path().join("ra.mat"), aflw_mat(1.0, vec![1.0, 7.0]));
    has(
        &err(read_aflw19(&ra)),
        &["ra.mat: `ra` record 2: 7 is not an unused face number in 1..=2"],
    );
    let twice = write(&dir.path().join("twice.mat"), aflw_mat(1.0, vec![1.0, 1.0]));
    has(
        &err(read_aflw19(&twice)),
        &["twice.mat: `ra` record 2: 1 is not an unused"],
    );
    let bytes = aflw_mat(1.0, vec![1.0, 2.0]);
    let cut = write(&dir.path().join("cut.mat"), &bytes[..bytes.len() - 20]);
    has(
        &err(read_aflw19(&cut)),
        &["cut.mat: variable 5 (element at byte", "truncated at byte"],
    );
    let wrong = write(
        &dir.path().join("wrong.mat"),
        mat::write(&[("bbox", Value::matrix(2, 3, vec![0.0; 6]))]).unwrap(),
    );
    has(&err(read_aflw19(&wrong)), &["wrong.mat: `bbox` is 2x3, expected N x 4"]);
}

#[test]
fn lapa_files() {
    let (_dir, out) = export("lapa", &[Split::Test], 2);
    let lm = out.join("test/landmarks/test_00001.txt");
    write(&lm, "3\n1 2\n3 4\n");
    has(
        &err(read_lapa_landmarks(&lm)),
        &["test_00001.txt: ends after 2 points, expected point 3 of 3"],
    );
    write(&lm, "2\n1 2\n3 four\n");
    has(
        &err(read_lapa_landmarks(&lm)),
        &["test_00001.txt:3: expected point 2 of 2 (`x y`), found `four`"],
    );
    write(&lm, "two\n");
    has(
        &err(read_lapa_landmarks(&lm)),
        &["test_00001.txt:1: expected the point count, found `two`"],
    );
    let p = LapaParams {
        root: out.clone(),
        test_folder: "test".into(),
    };
    // A count that differs from the other faces.
    write(&lm, "1\n1 2\n");
    has(
        &err(Lapa::new(&p, Split::Test)),
        &["test_00002.txt: 68 points, expected 1 as the other faces"],
    );
    std::fs::remove_file(&lm).unwrap();
    has(&err(Lapa::new(&p, Split::Test)), &["test_00001.txt: cannot read"]);
    // A class id out of 0..11.
    let (_dir, out) = export("lapa", &[Split::Test], 1);
    let png = out.join("test/labels/test_00001.png");
    visage_formats::io::save_grey_png(&png, 2, 2, &[0, 1, 11, 0]).unwrap();
    let data = Lapa::new(
        &LapaParams {
            root: out.clone(),
            test_folder: "test".into(),
        },
        Split::Test,
    )
    .unwrap();
    has(
        &err(data.get(0)),
        &["test_00001.png: pixel (row 1, column 0) has class id 11, expected 0..11"],
    );
    std::fs::remove_file(&png).unwrap();
    has(
        &err(Lapa::new(
            &LapaParams {
                root: out,
                test_folder: "test".into(),
            },
            Split::Test,
        )),
        &["test_00001.png: missing, expected the label map"],
    );
}

#[test]
fn celebamask_files() {
    let (_dir, out) = export("celebamask", &[Split::Test], 2);
    let p = CelebAMaskParams {
        root: out.clone(),
        train_with_val: false,
    };
    let partition = out.join("list_eval_partition.txt");
    write(&partition, "000001.jpg 2\n000002.jpg 5\n");
    has(
        &err(CelebAMask::new(&p, Split::Test)),
        &["list_eval_partition.txt:2: expected `<file> 0|1|2` (train, val, test), found `000002.jpg 5`"],
    );
    write(&partition, "000001.jpg 2\n");
    has(
        &err(CelebAMask::new(&p, Split::Test)),
        &["list_eval_partition.txt: no line for `000002.jpg` (CelebA-HQ face 1)"],
    );
    write(&partition, "000001.jpg 2\n000002.jpg 2\n");
    let mapping = out.join("CelebA-HQ-to-CelebA-mapping.txt");
    let good = std::fs::read_to_string(&mapping).unwrap();
    write(&mapping, "idx orig_idx orig_file\n0 0\n");
    has(
        &err(CelebAMask::new(&p, Split::Test)),
        &["CelebA-HQ-to-CelebA-mapping.txt:2: expected `idx orig_idx orig_file`, found `0 0`"],
    );
    write(&mapping, good);
    let data = CelebAMask::new(&p, Split::Test).unwrap();
    // Face 1 without any part mask.
    for entry in std::fs::read_dir(out.join("CelebAMask-HQ-mask-anno/0")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("00001_") {
            std::fs::remove_file(path).unwrap();
        }
    }
    has(
        &err(data.get(1)),
        &["face 1: no part mask found (expected at least", "00001_skin.png"],
    );
    // A part of another size than the others.
    visage_formats::io::save_grey_png(&out.join("CelebAMask-HQ-mask-anno/0/00000_hat.png"), 2, 2, &[0; 4]).unwrap();
    has(
        &err(data.get(0)),
        &["00000_hat.png: 2x2, expected 48x48 as the other parts of face 0"],
    );
}
