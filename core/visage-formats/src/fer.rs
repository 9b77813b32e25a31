//! Expression and class layouts: RAF-DB (basic) and image folders.

use visage_core::{labels, Result};

use crate::error::ensure;
use crate::{io, split_name, FolderLabel, Job, Record};

/// RAF-DB's label (1-7: surprise, fear, disgust, happiness, sadness, anger,
/// neutral) of each class of [`labels::EXPRESSIONS`] (neutral, happy, sad,
/// surprise, fear, disgust, anger).
pub const RAF_LABEL: [u8; 7] = [7, 4, 5, 1, 2, 3, 6];

/// The expression of a sample, checked against [`labels::EXPRESSIONS`].
fn expression(item: &Record) -> Result<usize> {
    let e = item.int(labels::EXPRESSION)?;
    ensure!(
        (0..labels::EXPRESSIONS.len() as i64).contains(&e),
        "label `expression` of {} is {e}, not an index into the {} expressions ({})",
        item.what(),
        labels::EXPRESSIONS.len(),
        labels::EXPRESSIONS.join(", ")
    );
    Ok(e as usize)
}

/// RAF-DB basic: `EmoLabel/list_patition_label.txt` (sic, RAF's spelling)
/// with `train_00001.jpg 5` lines, train first, and
/// `Image/aligned/train_00001_aligned.jpg`; 100x100 unless `--size`. As in
/// the distribution, the list names `train_00001.jpg` (the original image)
/// while the aligned file carries `_aligned`; `Image/original` is not written.
pub fn rafdb(ex: &Job) -> Result<()> {
    let mut list = String::new();
    for split in ex.splits() {
        for item in ex.records(split) {
            let item = item?;
            let stem = format!("{}_{:05}", split_name(split), item.number());
            let label = RAF_LABEL[expression(&item)?];
            io::save_image(
                &ex.out.join(format!("Image/aligned/{stem}_aligned.jpg")),
                &item.image_u8()?,
            )?;
            list += &format!("{stem}.jpg {label}\n");
        }
    }
    io::write_text(&ex.out.join("EmoLabel/list_patition_label.txt"), &list)
}

/// `<out>/<class>/<number>.png` (one split) or `<out>/<split>/<class>/...`
/// (both). Classes are identities zero-padded to 5 digits (so that the
/// sorted folder order, which torchvision's `ImageFolder` uses for class
/// indices, is the numeric order) or expression names.
pub fn imagefolder(ex: &Job) -> Result<()> {
    let splits = ex.splits();
    for &split in &splits {
        let root = if splits.len() > 1 {
            ex.out.join(split_name(split))
        } else {
            ex.out.clone()
        };
        for item in ex.records(split) {
            let item = item?;
            let class = match ex.options.label {
                FolderLabel::Identity => format!("{:05}", item.int(labels::IDENTITY)?),
                FolderLabel::Expression => labels::EXPRESSIONS[expression(&item)?].to_string(),
            };
            io::save_image(
                &root.join(class).join(format!("{:05}.png", item.number())),
                &item.image_u8()?,
            )?;
        }
    }
    Ok(())
}
