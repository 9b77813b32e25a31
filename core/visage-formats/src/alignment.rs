//! Landmark and head-pose layouts: AFLW2000-3D, 300W (`.pts` and HRNet's
//! CSV), WFLW and AFLW-19. The writers are here; the readers and datasets
//! in [`pts`], [`hrnet`] (with its writer), [`wflw`](mod@wflw) and [`aflw19`](mod@aflw19)
//! (AFLW2000-3D's in [`crate::pose`]).
//!
//! Coordinates follow the conventions of the crate docs: the
//! MATLAB files (`.pts`, `.mat`) hold 1-based pixel centres (`x + 0.5`),
//! WFLW and HRNet's CSV 0-based pixel centres (`x - 0.5`).

pub mod aflw19;
pub mod hrnet;
pub mod pts;
pub mod wflw;

pub use aflw19::{aflw19_dataset, aflw19_layout, read_aflw19, Aflw19Params, AflwFace, AflwInfo};
pub use hrnet::{hrnet_csv, hrnet_dataset, read_hrnet_csv, HrnetParams, HrnetRow};
pub use pts::{pts_dataset, read_pts, PtsParams};
pub use wflw::{read_wflw_list, wflw98, wflw_dataset, WflwFace, WflwParams};

use visage_core::dataset::DatasetContext;
use visage_core::{labels, Registry, Result};

use crate::codec::mat::{self, Value};
use crate::error::{bail, ensure};
use crate::{io, split_name, Job, Record};

/// Our pixel-corner coordinate in MATLAB's 1-based pixel-centre convention.
pub fn matlab(v: f64) -> f64 {
    v + 0.5
}

/// Our pixel-corner coordinate in the 0-based pixel-centre convention.
pub fn zero_based(v: f64) -> f64 {
    v - 0.5
}

/// AFLW2000-3D's `Pose_Para` angles `[pitch, yaw, roll]` in radians from our
/// `[yaw, pitch, roll]` in degrees.
///
/// Sign convention (an assumption, stated because AFLW2000-3D documents
/// none): we follow how its standard readers interpret it: Hopenet,
/// FSA-Net and 6DRepNet read `pitch, yaw, roll = Pose_Para[:3] * 180 / pi`
/// and draw the nose axis at `x = sin(-yaw)`, `y = -cos(yaw) sin(pitch)` and
/// the face's x axis at `y = sin(roll)` (image y down): positive yaw turns
/// the nose to the image's left, positive pitch raises it, positive roll is
/// clockwise on screen. Ours: positive yaw turns the nose to the image's
/// right, positive pitch raises it, positive roll is counter-clockwise.
/// Hence `pitch = +pitch`, `yaw = -yaw`, `roll = -roll`. The three angles
/// are copied, not re-decomposed: our rotation is `Rz(roll) Rx(pitch)
/// Ry(yaw)`, 3DDFA's `Rx(pitch) Ry(yaw) Rz(roll)`, so for large combined
/// angles the two triples describe slightly different rotations (as the
/// benchmark's MAE treats the angles independently, we keep them equal).
pub fn aflw_pose(pose: &[f64]) -> [f64; 3] {
    let rad = std::f64::consts::PI / 180.0;
    [pose[1] * rad, -pose[0] * rad, -pose[2] * rad]
}

/// `<out>/image00001.jpg` beside `<out>/image00001.mat` with `Pose_Para`
/// (1x7: pitch, yaw, roll in radians (see [`aflw_pose`]), then zeros where
/// the real file has the translation and scale of the 3DMM fit) and `pt2d`
/// (2x68: x row, y row, 1-based MATLAB pixel centres). AFLW2000-3D ships
/// only these two variables that its loaders read (plus the 3DMM
/// parameters, not written). Loaders drop faces with an angle beyond 99
/// degrees; none is filtered here.
pub fn aflw2000(ex: &Job) -> Result<()> {
    let split = ex.splits()[0];
    for item in ex.records(split) {
        let item = item?;
        let pose = aflw_pose(&item.vector(labels::POSE, 3)?);
        let marks = item.landmarks()?;
        let mut pt2d: Vec<f64> = marks.iter().map(|p| matlab(p[0])).collect();
        pt2d.extend(marks.iter().map(|p| matlab(p[1])));
        let stem = format!("image{:05}", item.number());
        let mat = mat::write(&[
            (
                "Pose_Para",
                Value::matrix(1, 7, vec![pose[0], pose[1], pose[2], 0.0, 0.0, 0.0, 0.0]),
            ),
            ("pt2d", Value::matrix(2, marks.len(), pt2d)),
        ])?;
        io::save_image(&ex.out.join(format!("{stem}.jpg")), &item.image_u8()?)?;
        io::write_bytes(&ex.out.join(format!("{stem}.mat")), &mat)?;
    }
    Ok(())
}

/// `<out>/<split>/<split>_00001.jpg` beside `.pts`: `version: 1`,
/// `n_points:  68` (two spaces, as in the 300W files), `{`, one `x y` line
/// per point (6 decimals, as the 300W files) in 1-based MATLAB pixel
/// centres (our `x + 0.5`), `}`. 300W's
/// own folders (afw, helen, lfpw, ibug) are replaced by the split's name.
/// Any number of points is written (`n_points` says how many).
pub fn pts300w(ex: &Job) -> Result<()> {
    for split in ex.splits() {
        for item in ex.records(split) {
            let item = item?;
            let marks = item.landmarks()?;
            let mut text = format!("version: 1\nn_points:  {}\n{{\n", marks.len());
            for p in &marks {
                text += &format!("{:.6} {:.6}\n", matlab(p[0]), matlab(p[1]));
            }
            text += "}\n";
            let stem = ex
                .out
                .join(split_name(split))
                .join(format!("{}_{:05}", split_name(split), item.number()));
            io::save_image(&stem.with_extension("jpg"), &item.image_u8()?)?;
            io::write_text(&stem.with_extension("pts"), &text)?;
        }
    }
    Ok(())
}

/// WFLW's point count.
pub const WFLW_POINTS: usize = 98;

/// One WFLW line: 196 coordinates `x0 y0 ... x97 y97` (0-based pixel
/// centres), the box `x_min y_min x_max y_max` (WFLW's detection box; here
/// the landmarks' bounds, rounded outwards), 6 attribute flags (pose,
/// expression, illumination, make-up, occlusion, blur), the image path.
/// Flags from the labels where they exist: pose = an angle beyond 45
/// degrees, expression = not neutral, occlusion = a landmark not visible;
/// illumination, make-up and blur are 0.
pub fn wflw_line(item: &Record, path: &str) -> Result<String> {
    let marks = item.landmarks()?;
    if marks.len() != WFLW_POINTS {
        bail!(
            "format `wflw` needs {WFLW_POINTS}-point landmarks (label `landmarks` of shape [98, 2]); \
             dataset `{}` has {} points, and {} points cannot be turned into WFLW's 98 honestly",
            item.dataset(),
            marks.len(),
            marks.len()
        );
    }
    let mut fields: Vec<String> = marks
        .iter()
        .flat_map(|p| [zero_based(p[0]), zero_based(p[1])])
        .map(|v| format!("{v:.6}"))
        .collect();
    let (lo, hi) = bounds(&marks);
    fields.extend(
        [lo[0].floor(), lo[1].floor(), hi[0].ceil(), hi[1].ceil()]
            .iter()
            .map(|v| format!("{}", *v as i64)),
    );
    let pose = if item.has(labels::POSE) {
        item.vector(labels::POSE, 3)?.iter().any(|a| a.abs() > 45.0)
    } else {
        false
    };
    let expression = item.has(labels::EXPRESSION) && item.int(labels::EXPRESSION)? != 0;
    let occlusion = item.visible(marks.len())?.iter().any(|v| !v);
    for flag in [pose, expression, false, false, occlusion, false] {
        fields.push(if flag { "1" } else { "0" }.into());
    }
    fields.push(path.into());
    Ok(fields.join(" ") + "\n")
}

/// `<out>/list_98pt_rect_attr_{train,test}.txt` (the distribution keeps them
/// in `WFLW_annotations/list_98pt_rect_attr_train_test/`; `datasets.md` names
/// the files only) and images under `<out>/WFLW_images/`, the lines' paths
/// being relative to it (`<split>/<split>_00001.jpg`). Needs 98 points: a
/// 68-point dataset is an error, not an interpolation.
pub fn wflw(ex: &Job) -> Result<()> {
    for split in ex.splits() {
        let mut text = String::new();
        for item in ex.records(split) {
            let item = item?;
            let path = format!("{0}/{0}_{1:05}.jpg", split_name(split), item.number());
            text += &wflw_line(&item, &path)?;
            io::save_image(&ex.out.join("WFLW_images").join(&path), &item.image_u8()?)?;
        }
        io::write_text(
            &ex.out.join(format!("list_98pt_rect_attr_{}.txt", split_name(split))),
            &text,
        )?;
    }
    Ok(())
}

/// Min and max of the points.
fn bounds(points: &[[f64; 2]]) -> ([f64; 2], [f64; 2]) {
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    for p in points {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    (lo, hi)
}

/// The AFLW-19 points from iBUG-68 (0-based iBUG indices; a point from
/// several is their mean, visible when all of them are), in AFLW's order
/// without its two ear points: left brow left corner, centre, right corner;
/// right brow left corner, centre, right corner; left eye left corner,
/// centre, right corner; right eye left corner, centre, right corner; nose
/// left, nose tip, nose right; mouth left corner, centre, right corner;
/// chin. "Left" is the image's left (iBUG 17..=21 is the brow on the
/// image's left of a frontal face), matching AFLW's point order as the
/// AFLW-19 benchmark uses it.
pub const AFLW19_FROM_IBUG68: [&[usize]; 19] = [
    &[17],
    &[19],
    &[21],
    &[22],
    &[24],
    &[26],
    &[36],
    &[36, 37, 38, 39, 40, 41],
    &[39],
    &[42],
    &[42, 43, 44, 45, 46, 47],
    &[45],
    &[31],
    &[30],
    &[35],
    &[48],
    &[62, 66],
    &[54],
    &[8],
];

/// The 19 AFLW points and their visibility from 68 iBUG points.
pub fn aflw19_points(marks: &[[f64; 2]], visible: &[bool]) -> Result<Vec<([f64; 2], bool)>> {
    ensure!(
        marks.len() == labels::IBUG68,
        "format `aflw19` derives its 19 points from iBUG-68 landmarks; the dataset has {} points",
        marks.len()
    );
    Ok(AFLW19_FROM_IBUG68
        .iter()
        .map(|from| {
            let n = from.len() as f64;
            let x = from.iter().map(|&i| marks[i][0]).sum::<f64>() / n;
            let y = from.iter().map(|&i| marks[i][1]).sum::<f64>() / n;
            ([x, y], from.iter().all(|&i| visible[i]))
        })
        .collect())
}

/// `<out>/AFLWinfo_release.mat` with, for the N exported samples (train
/// first, then test): `bbox` (N x 4: left, right, top, bottom of the 68
/// landmarks, 1-based), `data` (N x 38: x1..x19 then y1..y19, 1-based
/// MATLAB pixel centres), `mask_new` (N x 19, 1 visible), `nameList` (N x 1
/// cell of `<split>/image00001.jpg`, relative to `<out>/flickr/` where the
/// images are, as AFLW's `flickr/0/image00002.jpg`), `ra` (1 x N, 1-indexed
/// permutation: the train samples in a seeded order, then the test
/// samples). The real file has 24386 faces and its users take
/// `ra(1:20000)` as train: a loader must use the train count of this export
/// (the number of `train/` names), not 20000.
pub fn aflw19(ex: &Job) -> Result<()> {
    let (mut bbox, mut data, mut mask, mut names) = (vec![], vec![], vec![], vec![]);
    let mut ra = vec![];
    for split in ex.splits() {
        let first = names.len();
        for item in ex.records(split) {
            let item = item?;
            let marks = item.landmarks()?;
            let points = aflw19_points(&marks, &item.visible(marks.len())?)?;
            let (lo, hi) = bounds(&marks);
            bbox.extend([matlab(lo[0]), matlab(hi[0]), matlab(lo[1]), matlab(hi[1])]);
            data.extend(points.iter().map(|p| matlab(p.0[0])));
            data.extend(points.iter().map(|p| matlab(p.0[1])));
            mask.extend(points.iter().map(|p| if p.1 { 1.0 } else { 0.0 }));
            let name = format!("{}/image{:05}.jpg", split_name(split), item.number());
            io::save_image(&ex.out.join("flickr").join(&name), &item.image_u8()?)?;
            names.push(Value::Char(name));
        }
        let n = names.len() - first;
        let mut rng = visage_core::rng::Rng::new(&[ex.options.seed, 0x7261, split as u64]);
        ra.extend(rng.permutation(n).into_iter().map(|i| (first + i + 1) as f64));
    }
    let n = names.len();
    let mat = mat::write(&[
        ("bbox", Value::matrix(n, 4, bbox)),
        ("data", Value::matrix(n, 38, data)),
        ("mask_new", Value::matrix(n, 19, mask)),
        ("nameList", Value::Cell(names)),
        ("ra", Value::matrix(1, n, ra)),
    ])?;
    io::write_bytes(&ex.out.join("AFLWinfo_release.mat"), &mat)
}

/// Registers the datasets `pts300w`, `hrnet_csv`, `wflw` and `aflw19`.
pub fn register(registry: &mut Registry) -> Result<()> {
    use crate::files::split_path;
    registry.dataset("pts300w", |p: PtsParams, ctx: &DatasetContext| {
        pts_dataset(split_path("pts300w", ctx.split, p.train.as_deref(), p.test.as_deref())?)
    })?;
    registry.dataset("hrnet_csv", |p: HrnetParams, ctx: &DatasetContext| {
        let csv = split_path("hrnet_csv", ctx.split, p.train.as_deref(), p.test.as_deref())?;
        hrnet_dataset(csv, p.images.as_deref())
    })?;
    registry.dataset("wflw", |p: WflwParams, ctx: &DatasetContext| {
        let list = split_path("wflw", ctx.split, p.train.as_deref(), p.test.as_deref())?;
        wflw_dataset(list, p.images.as_deref())
    })?;
    registry.dataset("aflw19", |p: Aflw19Params, ctx: &DatasetContext| {
        aflw19_dataset(&p, ctx.split)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;

    #[test]
    fn aflw19_derivation_and_pose_signs() {
        let marks: Vec<[f64; 2]> = (0..68).map(|i| [i as f64, 2.0 * i as f64]).collect();
        let mut visible = vec![true; 68];
        visible[40] = false;
        let p = aflw19_points(&marks, &visible).unwrap();
        assert_eq!(p[0].0, [17.0, 34.0]);
        assert_eq!(p[7], ([38.5, 77.0], false), "left eye centre: mean of 36..=41");
        assert_eq!(p[10], ([44.5, 89.0], true));
        assert_eq!(p[16].0, [64.0, 128.0], "mouth centre: mean of 62, 66");
        assert_eq!(p[18].0, [8.0, 16.0]);
        assert!(aflw19_points(&marks[..5], &visible).is_err());
        let pose = aflw_pose(&[30.0, -10.0, 90.0]);
        let r = std::f64::consts::PI / 180.0;
        assert_eq!(pose, [-10.0 * r, -30.0 * r, -90.0 * r]);
    }

    fn item(points: usize) -> Record {
        let marks: Vec<f32> = (0..points).flat_map(|i| [i as f32 + 0.5, 10.5]).collect();
        let mut visible = vec![1.0f32; points];
        visible[3] = 0.0;
        let labels = [
            (
                labels::LANDMARKS,
                tch::Tensor::from_slice(&marks).view([points as i64, 2]),
            ),
            (labels::LANDMARKS_VISIBLE, tch::Tensor::from_slice(&visible)),
            (labels::POSE, tch::Tensor::from_slice(&[50.0f32, 0.0, 0.0])),
            (labels::EXPRESSION, tch::Tensor::from(0i64)),
        ];
        Record::new(
            visage_core::dataset::Split::Test,
            0,
            tch::Tensor::zeros([3, 4, 4], (tch::Kind::Float, tch::Device::Cpu)),
            labels.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            "wflw",
            "fake".into(),
        )
    }

    #[test]
    fn wflw_writes_98_points_and_refuses_68() {
        let line = wflw_line(&item(98), "a/b.jpg").unwrap();
        let fields: Vec<&str> = line.trim_end().split(' ').collect();
        assert_eq!(fields.len(), 196 + 4 + 6 + 1);
        assert_eq!(fields[..4], ["0.000000", "10.000000", "1.000000", "10.000000"]);
        assert_eq!(fields[196..200], ["0", "10", "98", "11"]);
        // pose (|yaw| > 45), not expression (neutral), occlusion (point 3).
        assert_eq!(fields[200..206], ["1", "0", "0", "0", "1", "0"]);
        assert_eq!(fields[206], "a/b.jpg");
        let err = wflw_line(&item(68), "x.jpg").unwrap_err().to_string();
        assert!(
            err.contains("needs 98-point landmarks") && err.contains("`fake` has 68 points"),
            "{err}"
        );
    }
}
