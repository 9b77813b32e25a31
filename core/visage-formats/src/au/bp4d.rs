//! BP4D-style list reader: lines `img_path AU1:1 AU2:-1 ...` (1 present,
//! -1 absent), every line naming the same units in the same order.

use std::path::Path;

use visage_core::dataset::DatasetContext;
use visage_core::{Error, Result};

use super::list::{self, AuList, AuListParams, AuRecord};
use crate::table::Table;

/// Reads the list at `path`, images under `root`.
pub fn read(root: &Path, path: &Path) -> Result<AuList> {
    list::read_with(path, "a BP4D-style AU list (`img_path AU1:1 ...`)", |lines| {
        if lines.is_empty() {
            return Err(Error::msg(format!(
                "{}: empty; expected lines `img_path AU1:1 AU2:-1 ...`",
                path.display()
            )));
        }
        let mut units: Option<Vec<String>> = None;
        let mut records = vec![];
        for line in &lines {
            let f: Vec<&str> = line.text.split_whitespace().collect();
            if f.len() < 2 {
                return Err(line.error("an image path and at least one `AU<n>:<1|-1>` field"));
            }
            let mut names = vec![];
            let mut au = vec![];
            for field in &f[1..] {
                let (name, value) = field
                    .split_once(':')
                    .filter(|(n, _)| n.strip_prefix("AU").is_some_and(|d| d.parse::<u32>().is_ok()))
                    .ok_or_else(|| line.error(format_args!("`AU<n>:<1|-1>` fields, found `{field}`")))?;
                au.push(match value {
                    "1" => 1.0,
                    "-1" => 0.0,
                    _ => return Err(line.error(format_args!("{name} as 1 or -1, found `{value}`"))),
                });
                names.push(name.to_string());
            }
            match &units {
                None => units = Some(names),
                Some(u) if *u != names => {
                    return Err(line.error(format_args!(
                        "the units of line 1 in the same order ({}), found {}",
                        u.join(" "),
                        names.join(" ")
                    )))
                }
                Some(_) => {}
            }
            records.push(AuRecord {
                image: list::image(root, f[0], line)?,
                au,
            });
        }
        Ok((units.unwrap_or_default(), records))
    })
}

/// The `bp4d` dataset: the split's list (`<split>.txt` by default).
pub fn dataset(p: AuListParams, ctx: &DatasetContext) -> Result<Table> {
    list::dataset(&p, ctx, "txt", read)
}
