//! Face parsing layouts: LaPa and CelebAMask-HQ. The writers are here;
//! the readers and datasets in [`lapa`](mod@lapa) and
//! [`celebamask`](mod@celebamask).

pub mod celebamask;
pub mod lapa;
pub mod mask;

pub use celebamask::{CelebAMask, CelebAMaskParams, CELEBAMASK_CLASSES};
pub use lapa::{read_lapa_landmarks, Lapa, LapaParams};

use visage_core::dataset::DatasetContext;
use visage_core::{labels, Registry, Result};

use crate::alignment::zero_based;
use crate::{io, split_name, Job};

/// `<out>/{train,test}/images/<stem>.jpg`, `labels/<stem>.png` (8-bit grey,
/// the LaPa class ids 0-10 exactly, lossless) and `landmarks/<stem>.txt`,
/// `<stem>` = `<split>_00001`. Our test split goes to `test/`; no `val/` is
/// written.
///
/// Deviation: LaPa's landmark files hold 106 points (a count line `106`,
/// then one `x y` line per point); we have no 106-point layout, so the
/// files hold the dataset's own points with their count (`68` and 68 lines
/// for iBUG-68), 0-based pixel centres. A loader that requires 106 points
/// fails on the count line, which says why.
pub fn lapa(ex: &Job) -> Result<()> {
    for split in ex.splits() {
        let dir = ex.out.join(split_name(split));
        for item in ex.records(split) {
            let item = item?;
            let stem = format!("{}_{:05}", split_name(split), item.number());
            let (h, w, ids) = item.parsing(labels::LAPA_CLASSES.len())?;
            let marks = item.landmarks()?;
            let mut text = format!("{}\n", marks.len());
            for p in &marks {
                text += &format!("{:.6} {:.6}\n", zero_based(p[0]), zero_based(p[1]));
            }
            io::save_image(&dir.join("images").join(format!("{stem}.jpg")), &item.image_u8()?)?;
            io::save_grey_png(&dir.join("labels").join(format!("{stem}.png")), h, w, &ids)?;
            io::write_text(&dir.join("landmarks").join(format!("{stem}.txt")), &text)?;
        }
    }
    Ok(())
}

/// The CelebAMask-HQ part of each LaPa class (0, background, has none).
/// CelebAMask-HQ's `l_`/`r_` are taken as the image's left/right, as LaPa's
/// and iBUG's in `visage_core::labels` (an assumption: the dataset does not
/// document it). CelebAMask-HQ's `skin` is the whole face region under
/// brows, eyes, nose and lips, which its loaders paint over: the `skin` mask
/// written is the union of LaPa classes 1-9, so that painting the parts in
/// CelebAMask-HQ's order gives back exactly our mask.
pub const CELEBAMASK_PART: [Option<&str>; 11] = [
    None,
    Some("skin"),
    Some("l_brow"),
    Some("r_brow"),
    Some("l_eye"),
    Some("r_eye"),
    Some("nose"),
    Some("u_lip"),
    Some("mouth"),
    Some("l_lip"),
    Some("hair"),
];

/// `<out>/CelebA-HQ-img/<id>.jpg`,
/// `<out>/CelebAMask-HQ-mask-anno/<id / 2000>/<id:05>_<part>.png` (8-bit
/// grey, 255 in the part, 0 elsewhere; written only for parts present, as
/// in the dataset), `<out>/CelebA-HQ-to-CelebA-mapping.txt` (header `idx
/// orig_idx orig_file`, rows `id id <id + 1:06>.jpg`: the exported id is
/// its own CelebA index) and `<out>/list_eval_partition.txt`
/// (`<orig_file> 0` for train, `2` for test; only the exported files).
/// Ids count from 0 over the train samples, then the test samples. Masks
/// have the image's size (CelebAMask-HQ's are 512 for 1024 images).
pub fn celebamask(ex: &Job) -> Result<()> {
    let mut mapping = String::from("idx orig_idx orig_file\n");
    let mut partition = String::new();
    let mut id = 0usize;
    for split in ex.splits() {
        for item in ex.records(split) {
            let item = item?;
            let (h, w, ids) = item.parsing(labels::LAPA_CLASSES.len())?;
            io::save_image(&ex.out.join(format!("CelebA-HQ-img/{id}.jpg")), &item.image_u8()?)?;
            let folder = ex.out.join(format!("CelebAMask-HQ-mask-anno/{}", id / 2000));
            for (class, part) in CELEBAMASK_PART.iter().enumerate() {
                let Some(part) = part else { continue };
                let inside = |c: u8| {
                    if class == 1 {
                        (1..=9).contains(&c)
                    } else {
                        c as usize == class
                    }
                };
                let mask: Vec<u8> = ids.iter().map(|&c| if inside(c) { 255 } else { 0 }).collect();
                if mask.iter().any(|&m| m != 0) {
                    io::save_grey_png(&folder.join(format!("{id:05}_{part}.png")), h, w, &mask)?;
                }
            }
            let orig = format!("{:06}.jpg", id + 1);
            mapping += &format!("{id} {id} {orig}\n");
            partition += &format!(
                "{orig} {}\n",
                if split == visage_core::dataset::Split::Train {
                    0
                } else {
                    2
                }
            );
            id += 1;
        }
    }
    io::write_text(&ex.out.join("CelebA-HQ-to-CelebA-mapping.txt"), &mapping)?;
    io::write_text(&ex.out.join("list_eval_partition.txt"), &partition)
}

/// Registers the datasets `lapa` and `celebamask`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.dataset("lapa", |p: LapaParams, ctx: &DatasetContext| Lapa::new(&p, ctx.split))?;
    registry.dataset("celebamask", |p: CelebAMaskParams, ctx: &DatasetContext| {
        CelebAMask::new(&p, ctx.split)
    })?;
    Ok(())
}
