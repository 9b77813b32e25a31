//! DISFA-style CSV reader: a header `img_path,au_1,au_2,...` naming the
//! units by FACS number, rows of the image path (relative to the root)
//! and 0/1 per unit.

use std::path::Path;

use visage_core::dataset::DatasetContext;
use visage_core::{Error, Result};

use super::list::{self, AuList, AuListParams, AuRecord};
use crate::table::Table;

/// Reads the CSV at `path`, images under `root`.
pub fn read(root: &Path, path: &Path) -> Result<AuList> {
    list::read_with(path, "a DISFA-style AU CSV (`img_path,au_1,...`)", |lines| {
        let Some(header) = lines.first() else {
            return Err(Error::msg(format!(
                "{}: empty; expected the header `img_path,au_1,...`",
                path.display()
            )));
        };
        let columns: Vec<&str> = header.text.split(',').map(str::trim).collect();
        if columns.len() < 2 || columns[0] != "img_path" {
            return Err(header.error("the header `img_path,au_1,...` (at least one unit)"));
        }
        let units = columns[1..]
            .iter()
            .map(|c| match c.strip_prefix("au_").and_then(|n| n.parse::<u32>().ok()) {
                Some(n) => Ok(format!("AU{n}")),
                None => Err(header.error(format_args!("unit columns `au_<number>`, found `{c}`"))),
            })
            .collect::<Result<Vec<String>>>()?;
        let mut records = vec![];
        for line in &lines[1..] {
            let f = line.fields(Some(','), columns.len(), &header.text.replace(',', " "))?;
            let au = f[1..]
                .iter()
                .zip(&units)
                .map(|(v, unit)| match *v {
                    "0" => Ok(0.0),
                    "1" => Ok(1.0),
                    _ => Err(line.error(format_args!("{unit} as 0 or 1, found `{v}`"))),
                })
                .collect::<Result<Vec<f32>>>()?;
            records.push(AuRecord {
                image: list::image(root, f[0], line)?,
                au,
            });
        }
        Ok((units, records))
    })
}

/// The `disfa` dataset: the split's CSV (`<split>.csv` by default).
pub fn dataset(p: AuListParams, ctx: &DatasetContext) -> Result<Table> {
    list::dataset(&p, ctx, "csv", read)
}
