//! Head-pose layouts: 300W-LP / AFLW2000-3D raw (`X.jpg` beside `X.mat`),
//! FSA-Net `.npz` and BIWI; readers, datasets and the writers of the last
//! two (AFLW2000-3D's writer is [`crate::alignment::aflw2000`]).
//!
//! Angle conventions. Our `pose` label is `[yaw, pitch, roll]` in degrees
//! with the head's rotation `R = Rz(roll) Rx(pitch) Ry(yaw)`
//! (`visage_core::labels`). The `.mat` files hold `Pose_Para[0..3] =
//! [pitch, yaw, roll]` in radians with yaw and roll of the opposite sign
//! ([`crate::alignment::aflw_pose`], inverted by [`from_aflw_pose`]). The
//! FSA-Net arrays are made from those files (`yaw, pitch, roll =
//! Pose_Para[1], [0], [2]` in degrees), so they hold `[-yaw, pitch, -roll]`
//! of ours. BIWI's pose file holds the rotation matrix; we read and write it
//! as our `R` (an assumption: BIWI's own axes are the Kinect's) and
//! decompose it with [`angles`].

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;
use visage_core::dataset::{Dataset, DatasetContext, DatasetInfo, LandmarkLayout};
use visage_core::{labels, Registry, Result, Sample};

use crate::codec::mat;
use crate::codec::npy::Npy;
use crate::codec::npz;
use crate::error::{bail, ensure, Context};
use crate::files::{self, find, non_empty, number, read_text, split_path, ImageFiles, Item, Label};
use crate::{io, split_name, Job};

const DEGREES: f64 = 180.0 / std::f64::consts::PI;

/// Our `[yaw, pitch, roll]` in degrees from AFLW2000-3D's `Pose_Para`
/// `[pitch, yaw, roll, ...]` in radians: the inverse of
/// [`crate::alignment::aflw_pose`].
pub fn from_aflw_pose(pose_para: &[f64; 3]) -> [f64; 3] {
    [-pose_para[1] * DEGREES, pose_para[0] * DEGREES, -pose_para[2] * DEGREES]
}

/// The rotation `Rz(roll) Rx(pitch) Ry(yaw)` of our `[yaw, pitch, roll]`
/// (degrees), rows first: yaw about `+y` takes the nose `(0, 0, 1)` to
/// `(sin, 0, cos)`, pitch about `x` takes it to `(0, sin, cos)`, roll turns
/// `x` towards `y` (the synthface renderer's matrices).
pub fn rotation(pose: [f64; 3]) -> [[f64; 3]; 3] {
    let (sy, cy) = (pose[0] / DEGREES).sin_cos();
    let (sp, cp) = (pose[1] / DEGREES).sin_cos();
    let (sr, cr) = (pose[2] / DEGREES).sin_cos();
    // Rx(pitch) Ry(yaw), then Rz(roll) on the left.
    let m = [[cy, 0.0, sy], [-sp * sy, cp, sp * cy], [-cp * sy, -sp, cp * cy]];
    [
        [
            cr * m[0][0] - sr * m[1][0],
            cr * m[0][1] - sr * m[1][1],
            cr * m[0][2] - sr * m[1][2],
        ],
        [
            sr * m[0][0] + cr * m[1][0],
            sr * m[0][1] + cr * m[1][1],
            sr * m[0][2] + cr * m[1][2],
        ],
        m[2],
    ]
}

/// Our `[yaw, pitch, roll]` (degrees) of a rotation `Rz(roll) Rx(pitch)
/// Ry(yaw)`: its last row is `[-cos p sin y, -sin p, cos p cos y]` and its
/// middle column `[-sin r cos p, cos r cos p, -sin p]`, so for |pitch| <
/// 90 degrees `pitch = -asin(R[2][1])`, `yaw = atan2(-R[2][0], R[2][2])`,
/// `roll = atan2(-R[0][1], R[1][1])`.
pub fn angles(r: &[[f64; 3]; 3]) -> [f64; 3] {
    let pitch = -r[2][1].clamp(-1.0, 1.0).asin();
    let yaw = (-r[2][0]).atan2(r[2][2]);
    let roll = (-r[0][1]).atan2(r[1][1]);
    [yaw * DEGREES, pitch * DEGREES, roll * DEGREES]
}

/// One face of 300W-LP or AFLW2000-3D: its pose (ours) and 2D landmarks
/// (ours: `pt2d - 0.5`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoseMat {
    /// `[yaw, pitch, roll]` in degrees.
    pub pose: [f64; 3],
    /// The `pt2d` points in our pixel convention.
    pub landmarks: Vec<[f64; 2]>,
}

/// Reads `Pose_Para` (1 x 7 or longer; the first three) and `pt2d` (2 x
/// 68) of an AFLW2000-3D / 300W-LP `.mat` file.
pub fn read_pose_mat(path: &Path) -> Result<PoseMat> {
    let file = mat::read(&files::read_bytes(path)?).with_context(|| path.display())?;
    let (rows, cols, para) = file.matrix("Pose_Para").with_context(|| path.display())?;
    ensure!(
        rows * cols >= 3,
        "{}: `Pose_Para` is {rows}x{cols}, expected 1x7 (pitch, yaw, roll first)",
        path.display()
    );
    let (rows, cols, pt2d) = file.matrix("pt2d").with_context(|| path.display())?;
    ensure!(
        rows == 2 && cols == labels::IBUG68,
        "{}: `pt2d` is {rows}x{cols}, expected 2x68 (x row, y row)",
        path.display()
    );
    ensure!(
        para[..3].iter().chain(&pt2d).all(|v| v.is_finite()),
        "{}: `Pose_Para` or `pt2d` holds a value that is not finite",
        path.display()
    );
    Ok(PoseMat {
        pose: from_aflw_pose(&[para[0], para[1], para[2]]),
        landmarks: (0..cols).map(|i| [pt2d[i] - 0.5, pt2d[cols + i] - 0.5]).collect(),
    })
}

/// Parameters of the dataset `aflw2000`: 300W-LP (train) and AFLW2000-3D
/// (test) folders of `X.jpg` beside `X.mat`, at any depth.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoseMatParams {
    /// The train folder (300W-LP).
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The test folder (AFLW2000-3D).
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// Faces with an angle beyond this many degrees are dropped (99, as
    /// the benchmark's loaders do); `null` keeps every face.
    #[serde(default = "ninety_nine")]
    pub max_angle: Option<f64>,
}

fn ninety_nine() -> Option<f64> {
    Some(99.0)
}

/// The faces of a folder of `X.jpg` + `X.mat`, those beyond `max_angle`
/// dropped: labels `pose` and `landmarks` (iBUG-68).
pub fn pose_mat_dataset(root: &Path, max_angle: Option<f64>) -> Result<ImageFiles> {
    let mut items = vec![];
    let mut dropped = 0;
    for image in find(root, ".jpg")? {
        let mat = image.with_extension("mat");
        ensure!(
            mat.is_file(),
            "{}: no {} beside it (expected the pose file)",
            image.display(),
            mat.display()
        );
        let face = read_pose_mat(&mat)?;
        if max_angle.is_some_and(|m| face.pose.iter().any(|a| a.abs() > m)) {
            dropped += 1;
            continue;
        }
        items.push(Item {
            image,
            labels: vec![
                (labels::POSE, Label::vector(&face.pose)),
                (labels::LANDMARKS, Label::points(&face.landmarks)),
            ],
        });
    }
    tracing::info!(root = %root.display(), kept = items.len(), dropped, "pose .mat faces");
    let info = DatasetInfo {
        landmarks: Some(LandmarkLayout::ibug68(false)),
        ..Default::default()
    };
    Ok(ImageFiles::new(non_empty(items, root, "X.jpg with X.mat")?, info))
}

/// The FSA-Net arrays of one `.npz`: `image` (N, H, W, 3 uint8, BGR) and
/// `pose` (N, 3 degrees), the pose in our convention.
#[derive(Debug, Clone)]
pub struct FsaNet {
    /// Number of faces.
    pub count: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// The `image` array: N x H x W x 3, BGR.
    pub bgr: Vec<u8>,
    /// Our `[yaw, pitch, roll]` per face.
    pub poses: Vec<[f64; 3]>,
}

/// Reads an FSA-Net `.npz`.
pub fn read_fsanet_npz(path: &Path) -> Result<FsaNet> {
    let arrays = npz::read(path)?;
    let get = |name: &str| {
        arrays.iter().find(|(n, _)| n == name).map(|(_, a)| a).with_context(|| {
            let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
            format!(
                "{}: no array `{name}` (the archive has: {})",
                path.display(),
                names.join(", ")
            )
        })
    };
    let (image, pose) = (get("image")?, get("pose")?);
    let [count, height, width, 3] = image.shape[..] else {
        bail!(
            "{}: array `image` has shape {:?}, expected (N, H, W, 3)",
            path.display(),
            image.shape
        )
    };
    ensure!(
        pose.shape == [count, 3],
        "{}: array `pose` has shape {:?}, expected ({count}, 3) (yaw, pitch, roll per image)",
        path.display(),
        pose.shape
    );
    let bgr = image
        .bytes()
        .with_context(|| format!("{}: array `image`", path.display()))?;
    let values = pose
        .floats()
        .with_context(|| format!("{}: array `pose`", path.display()))?;
    let mut poses = Vec::with_capacity(count);
    for (i, p) in values.chunks(3).enumerate() {
        ensure!(
            p.iter().all(|v| v.is_finite() && v.abs() <= 180.0),
            "{}: array `pose`, record {i}: {p:?} is not three angles in -180..=180 degrees",
            path.display()
        );
        poses.push([-p[0], p[1], -p[2]]);
    }
    Ok(FsaNet {
        count,
        height,
        width,
        bgr: bgr.to_vec(),
        poses,
    })
}

/// Parameters of the dataset `fsanet_npz`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsaNetParams {
    /// The `.npz` of the train split.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The `.npz` of the test split.
    #[serde(default)]
    pub test: Option<PathBuf>,
}

impl Dataset for FsaNet {
    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, index: usize) -> Result<Sample> {
        ensure!(index < self.count, "index {index} is out of range (0..{})", self.count);
        let plane = self.height * self.width;
        let pixels = &self.bgr[index * plane * 3..(index + 1) * plane * 3];
        let mut rgb = vec![0f32; plane * 3];
        for (p, px) in pixels.chunks(3).enumerate() {
            for c in 0..3 {
                rgb[c * plane + p] = px[2 - c] as f32 / 255.0;
            }
        }
        let image = Tensor::from_slice(&rgb).f_view([3, self.height as i64, self.width as i64])?;
        let pose = Label::vector(&self.poses[index]).tensor()?;
        Ok(Sample::new(image).with_label(labels::POSE, pose))
    }

    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec![labels::POSE.into()],
            ..Default::default()
        }
    }
}

/// `<out>/<split>.npz` with `image` (N, H, W, 3 uint8, BGR) and `pose` (N,
/// 3 float64 degrees: `-yaw, pitch, -roll` of ours, as FSA-Net's arrays
/// made from the `.mat` files). Every image must have the size of the
/// first.
pub fn fsanet_npz(ex: &Job) -> Result<()> {
    for split in ex.splits() {
        let (mut bgr, mut poses, mut size) = (vec![], vec![], None);
        for item in ex.records(split) {
            let item = item?;
            let p = item.vector(labels::POSE, 3)?;
            poses.extend([-p[0], p[1], -p[2]]);
            let image = item.image_u8()?;
            let hw = (image.size()[1] as usize, image.size()[2] as usize);
            let first = *size.get_or_insert(hw);
            ensure!(
                hw == first,
                "format `fsanet-npz` stacks images of one size: {} is {}x{}, the first {}x{} (pass --size)",
                item.what(),
                hw.0,
                hw.1,
                first.0,
                first.1
            );
            let hwc = Vec::<u8>::try_from(
                image
                    .f_permute([1, 2, 0])?
                    .f_flip([2])?
                    .f_contiguous()?
                    .f_flatten(0, -1)?,
            )?;
            bgr.extend(hwc);
        }
        let (h, w) = size.unwrap_or((0, 0));
        let n = poses.len() / 3;
        let image = Npy::u8(vec![n, h, w, 3], bgr);
        let pose = Npy::f64(vec![n, 3], &poses);
        let bytes = npz::write(&[("image", &image), ("pose", &pose)])?;
        io::write_bytes(&ex.out.join(format!("{}.npz", split_name(split))), &bytes)?;
    }
    Ok(())
}

/// One BIWI frame's pose: the rotation (rows) and the translation.
#[derive(Debug, Clone, PartialEq)]
pub struct BiwiPose {
    /// The rotation, rows as in the file.
    pub rotation: [[f64; 3]; 3],
    /// The head centre's translation.
    pub translation: [f64; 3],
}

impl BiwiPose {
    /// Our `[yaw, pitch, roll]` in degrees.
    pub fn angles(&self) -> [f64; 3] {
        angles(&self.rotation)
    }
}

/// Reads a BIWI `frame_XXXXX_pose.txt`: three lines of three numbers (the
/// rotation's rows), then a line of three (the translation); blank lines
/// are skipped. The rotation must be orthonormal within 1e-3.
pub fn read_biwi_pose(path: &Path) -> Result<BiwiPose> {
    let text = read_text(path)?;
    let mut rows = vec![];
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let what = [
        "row 1 of the rotation",
        "row 2 of the rotation",
        "row 3 of the rotation",
        "the translation",
    ];
    for what in what {
        let Some((n, line)) = lines.next() else {
            bail!(
                "{}: ends after {} lines of numbers, expected 4 (three rotation rows, then the translation); missing {what}",
                path.display(),
                rows.len()
            )
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            fields.len() == 3,
            "{}:{}: expected 3 numbers ({what}), found {} in `{}`",
            path.display(),
            n + 1,
            fields.len(),
            line.trim()
        );
        let mut row = [0.0; 3];
        for (k, f) in fields.iter().enumerate() {
            row[k] = number(f, path, n + 1, &format!("a number ({what})"))?;
        }
        rows.push(row);
    }
    let rotation = [rows[0], rows[1], rows[2]];
    for i in 0..3 {
        for j in 0..3 {
            let dot: f64 = (0..3).map(|k| rotation[i][k] * rotation[j][k]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            if (dot - want).abs() > 1e-3 {
                bail!(
                    "{}: the 3x3 matrix is not a rotation (row {} . row {} = {dot:.4}, expected {want})",
                    path.display(),
                    i + 1,
                    j + 1
                );
            }
        }
    }
    Ok(BiwiPose {
        rotation,
        translation: rows[3],
    })
}

/// Parameters of the dataset `biwi`: folders of `frame_XXXXX_rgb.png` +
/// `frame_XXXXX_pose.txt` at any depth (BIWI's `01/`, `02/`, ...).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BiwiParams {
    /// The train folder.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The test folder.
    #[serde(default)]
    pub test: Option<PathBuf>,
}

/// The frames of a BIWI folder: label `pose`.
pub fn biwi_dataset(root: &Path) -> Result<ImageFiles> {
    let mut items = vec![];
    for image in find(root, "_rgb.png")? {
        let name = image.to_string_lossy();
        let pose_path = PathBuf::from(format!("{}_pose.txt", &name[..name.len() - "_rgb.png".len()]));
        ensure!(
            pose_path.is_file(),
            "{}: no {} beside it (expected the pose file)",
            image.display(),
            pose_path.display()
        );
        let pose = read_biwi_pose(&pose_path)?;
        items.push(Item {
            image,
            labels: vec![(labels::POSE, Label::vector(&pose.angles()))],
        });
    }
    Ok(ImageFiles::new(
        non_empty(items, root, "frame_XXXXX_rgb.png")?,
        DatasetInfo::default(),
    ))
}

/// `<out>/<split>/frame_00001_rgb.png` (lossless) beside
/// `frame_00001_pose.txt`: the rotation `Rz(roll) Rx(pitch) Ry(yaw)` of
/// the `pose` label, three rows of 9 decimals, a blank line, then the
/// translation `0 0 0` (BIWI's is the head centre in millimetres, which we
/// do not have).
pub fn biwi(ex: &Job) -> Result<()> {
    for split in ex.splits() {
        for item in ex.records(split) {
            let item = item?;
            let p = item.vector(labels::POSE, 3)?;
            let r = rotation([p[0], p[1], p[2]]);
            let mut text = String::new();
            for row in r {
                text += &format!("{:.9} {:.9} {:.9}\n", row[0], row[1], row[2]);
            }
            text += "\n0 0 0\n";
            let stem = ex
                .out
                .join(split_name(split))
                .join(format!("frame_{:05}", item.number()));
            let base = stem.to_string_lossy();
            io::save_image(Path::new(&format!("{base}_rgb.png")), &item.image_u8()?)?;
            io::write_text(Path::new(&format!("{base}_pose.txt")), &text)?;
        }
    }
    Ok(())
}

/// Registers `aflw2000` (300W-LP / AFLW2000-3D `.mat`), `fsanet_npz` and
/// `biwi`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.dataset("aflw2000", |p: PoseMatParams, ctx: &DatasetContext| {
        let root = split_path("aflw2000", ctx.split, p.train.as_deref(), p.test.as_deref())?;
        pose_mat_dataset(root, p.max_angle)
    })?;
    registry.dataset("fsanet_npz", |p: FsaNetParams, ctx: &DatasetContext| {
        read_fsanet_npz(split_path(
            "fsanet_npz",
            ctx.split,
            p.train.as_deref(),
            p.test.as_deref(),
        )?)
    })?;
    registry.dataset("biwi", |p: BiwiParams, ctx: &DatasetContext| {
        biwi_dataset(split_path("biwi", ctx.split, p.train.as_deref(), p.test.as_deref())?)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alignment::aflw_pose;
    use visage_core::dataset::Split;

    #[test]
    fn angles_invert_rotation() {
        // Pure yaw of 90 degrees takes the nose (0, 0, 1) to +x: R e_z = (1, 0, 0).
        let r = rotation([90.0, 0.0, 0.0]);
        assert!((r[0][2] - 1.0).abs() < 1e-12 && r[2][2].abs() < 1e-12);
        // Pure pitch of 30 degrees takes the nose to (0, sin 30, cos 30).
        let r = rotation([0.0, 30.0, 0.0]);
        assert!((r[1][2] - 0.5).abs() < 1e-12);
        // Pure roll of 90 degrees takes x to y: R e_x = (0, 1, 0).
        let r = rotation([0.0, 0.0, 90.0]);
        assert!((r[1][0] - 1.0).abs() < 1e-12);
        for pose in [[10.0, -20.0, 30.0], [-75.0, 60.0, -120.0], [170.0, -85.0, 5.0]] {
            let back = angles(&rotation(pose));
            for k in 0..3 {
                assert!((back[k] - pose[k]).abs() < 1e-9, "{pose:?} -> {back:?}");
            }
        }
        let para = aflw_pose(&[30.0, -10.0, 90.0]);
        let back = from_aflw_pose(&para);
        assert!((back[0] - 30.0).abs() < 1e-12 && (back[1] + 10.0).abs() < 1e-12 && (back[2] - 90.0).abs() < 1e-12);
    }

    #[test]
    fn an_unknown_split_path_names_the_parameter() {
        let err = split_path("biwi", Split::Test, Some(Path::new("x")), None).unwrap_err();
        assert!(err.to_string().contains("parameter `test`, which is not set"), "{err}");
    }
}
