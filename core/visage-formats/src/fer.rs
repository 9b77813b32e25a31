//! Expression layouts: RAF-DB (basic), FER-2013 and AffectNet (readers
//! and writers), and image folders (writer).
//!
//! Every reader gives `expression` as an index into
//! [`labels::EXPRESSIONS`] (neutral, happy, sad, surprise, fear, disgust,
//! anger), mapped from the benchmark's own order: RAF-DB
//! ([`rafdb::from_raf`]), FER-2013 ([`fer2013::FROM_FER`]), AffectNet (the
//! same order, contempt as 7 when kept).

pub mod affectnet;
pub mod fer2013;
pub mod rafdb;

use visage_core::dataset::DatasetInfo;
use visage_core::{labels, Registry, Result};

use crate::error::ensure;
use crate::{io, split_name, FolderLabel, Job, Record};

/// RAF-DB's label (1-7: surprise, fear, disgust, happiness, sadness, anger,
/// neutral) of each class of [`labels::EXPRESSIONS`] (neutral, happy, sad,
/// surprise, fear, disgust, anger).
pub const RAF_LABEL: [u8; 7] = [7, 4, 5, 1, 2, 3, 6];

/// The expression of a sample, checked against [`labels::EXPRESSIONS`].
pub(crate) fn expression(item: &Record) -> Result<usize> {
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

/// The info of an expression dataset of `classes` classes: the first
/// `classes` of [`labels::EXPRESSIONS`], then `contempt` (AffectNet-8).
pub(crate) fn expression_info(classes: usize) -> DatasetInfo {
    let mut names: Vec<String> = labels::EXPRESSIONS.iter().map(|s| s.to_string()).collect();
    names.push("contempt".into());
    names.truncate(classes);
    DatasetInfo {
        labels: vec![labels::EXPRESSION.into()],
        classes: Some(names),
        ..Default::default()
    }
}

/// Registers the datasets `rafdb`, `fer2013` and `affectnet`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.dataset("rafdb", rafdb::dataset)?;
    registry.dataset("fer2013", fer2013::dataset)?;
    registry.dataset("affectnet", affectnet::dataset)?;
    Ok(())
}
