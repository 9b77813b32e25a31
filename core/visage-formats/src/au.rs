//! Action-unit layouts: a DISFA-style CSV and BP4D-style lists (readers
//! [`disfa`], [`bp4d`] and the writers below). Readers give `au` as float
//! `[K]`, 1.0 present and 0.0 absent, in the order of the list's own units
//! (`info().action_units`, e.g. `AU1`, `AU2`, ...).
//!
//! Neither benchmark ships such a list with its frames (DISFA has per-AU
//! intensity files, BP4D per-session CSVs); these are the preprocessed
//! lists that AU repositories build and that `datasets.md` specifies. One
//! file per split, `<out>/<split>.csv` or `<out>/<split>.txt`, with image
//! paths relative to `<out>`: `images/<split>/<split>_00001.jpg`. The units
//! are the dataset's 12 (`labels::AU_NAMES`), occurrence = value > 0.5.

pub mod bp4d;
pub mod disfa;
pub mod list;

use visage_core::{labels, Registry, Result};

use crate::{io, split_name, Job, Record};

/// The image path of a sample, relative to `<out>`.
fn image_path(item: &Record) -> String {
    let split = split_name(item.split);
    format!("images/{split}/{split}_{:05}.jpg", item.number())
}

/// Writes every sample's image and calls `line` with its path and AU flags.
fn write(ex: &Job, ext: &str, header: Option<String>, line: impl Fn(&str, &[bool]) -> String) -> Result<()> {
    for split in ex.splits() {
        let mut text = header.clone().unwrap_or_default();
        for item in ex.records(split) {
            let item = item?;
            let au: Vec<bool> = item
                .vector(labels::AU, labels::AU_NAMES.len())?
                .iter()
                .map(|&v| v > 0.5)
                .collect();
            let path = image_path(&item);
            io::save_image(&ex.out.join(&path), &item.image_u8()?)?;
            text += &line(&path, &au);
        }
        io::write_text(&ex.out.join(format!("{}.{ext}", split_name(split))), &text)?;
    }
    Ok(())
}

/// `au_1` for `AU1`: the CSV column of a unit, by its FACS number.
pub fn csv_column(name: &str) -> String {
    format!("au_{}", name.trim_start_matches("AU"))
}

/// `<out>/<split>.csv`: header `img_path,au_1,au_2,au_4,...,au_26`, rows of
/// the path and 0/1 per unit.
pub fn disfa(ex: &Job) -> Result<()> {
    let columns: Vec<String> = labels::AU_NAMES.iter().map(|n| csv_column(n)).collect();
    let header = format!("img_path,{}\n", columns.join(","));
    write(ex, "csv", Some(header), |path, au| {
        let values: Vec<&str> = au.iter().map(|&a| if a { "1" } else { "0" }).collect();
        format!("{path},{}\n", values.join(","))
    })
}

/// `<out>/<split>.txt`: lines `img_path AU1:1 AU2:-1 ...` (1 present, -1
/// absent), units in label order, no header.
pub fn bp4d(ex: &Job) -> Result<()> {
    write(ex, "txt", None, |path, au| {
        let fields: Vec<String> = labels::AU_NAMES
            .iter()
            .zip(au)
            .map(|(n, &a)| format!("{n}:{}", if a { 1 } else { -1 }))
            .collect();
        format!("{path} {}\n", fields.join(" "))
    })
}

/// Registers the datasets `disfa` and `bp4d`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.dataset("disfa", disfa::dataset)?;
    registry.dataset("bp4d", bp4d::dataset)?;
    Ok(())
}
