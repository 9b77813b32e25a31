//! FER-2013: `fer2013.csv` with the header `emotion,pixels,Usage`, rows of
//! the label (0-6: angry, disgust, fear, happy, sad, surprise, neutral),
//! 48x48 grey values separated by spaces and the usage (`Training`,
//! `PublicTest`, `PrivateTest`).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetContext, Split};
use visage_core::labels;
use visage_core::Result;

use super::{expression, expression_info};
use crate::error::{ensure, Context};
use crate::table::{Entry, Label, Pixels, Table};
use crate::text::{read_text, Line};
use crate::{io, Job};

/// Our expression index of each FER-2013 label: angry 6, disgust 5, fear
/// 4, happy 1, sad 2, surprise 3, neutral 0.
pub const FROM_FER: [usize; 7] = [6, 5, 4, 1, 2, 3, 0];

/// The file's name under the root.
pub const FILE: &str = "fer2013.csv";

/// Parameters of the `fer2013` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fer2013Params {
    /// The folder holding `fer2013.csv`.
    pub root: PathBuf,
    /// The `Usage` of the test split: `PrivateTest` (the usual test set,
    /// default) or `PublicTest` (the validation set). Train is `Training`.
    #[serde(default = "default_test_usage")]
    pub test_usage: String,
}

fn default_test_usage() -> String {
    "PrivateTest".into()
}

/// One row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fer2013Record {
    /// The expression, an index into [`labels::EXPRESSIONS`].
    pub expression: usize,
    /// The image side (48 in the real file; any square is read).
    pub side: usize,
    /// Row-major grey values.
    pub pixels: Vec<u8>,
    /// `Training`, `PublicTest` or `PrivateTest`.
    pub usage: String,
}

/// Every row of `<root>/fer2013.csv`.
pub fn read(root: &Path) -> Result<Vec<Fer2013Record>> {
    let path = root.join(FILE);
    let text = read_text(&path, "FER-2013's CSV (`emotion,pixels,Usage`)")?;
    let mut lines = Line::all(&path, &text);
    let header = lines.next().ok_or_else(|| {
        visage_core::Error::msg(format!(
            "{}: empty; expected the header `emotion,pixels,Usage`",
            path.display()
        ))
    })?;
    if header.text.trim() != "emotion,pixels,Usage" {
        return Err(header.error("the header `emotion,pixels,Usage`"));
    }
    lines.map(|line| record(&line)).collect()
}

/// One `label,pixels,usage` row.
fn record(line: &Line) -> Result<Fer2013Record> {
    let f = line.fields(Some(','), 3, "emotion,pixels,Usage")?;
    let label: usize = line.parse(f[0], "the emotion")?;
    let expression = *FROM_FER
        .get(label)
        .ok_or_else(|| line.error(format_args!("an emotion 0-6, found {label}")))?;
    let pixels = f[1]
        .split_whitespace()
        .map(|v| line.parse::<u8>(v, "a pixel 0-255"))
        .collect::<Result<Vec<u8>>>()?;
    let side = (pixels.len() as f64).sqrt().round() as usize;
    if side == 0 || side * side != pixels.len() {
        return Err(line.error(format_args!(
            "a square image's pixels (48 x 48 = 2304), found {}",
            pixels.len()
        )));
    }
    let usage = f[2].to_string();
    if !["Training", "PublicTest", "PrivateTest"].contains(&usage.as_str()) {
        return Err(line.error("the usage `Training`, `PublicTest` or `PrivateTest`"));
    }
    Ok(Fer2013Record {
        expression,
        side,
        pixels,
        usage,
    })
}

/// The `fer2013` dataset: the rows of the split's usage in file order,
/// images as RGB with three equal channels, with `expression`.
pub fn dataset(p: Fer2013Params, ctx: &DatasetContext) -> Result<Table> {
    ensure!(
        ["PublicTest", "PrivateTest"].contains(&p.test_usage.as_str()),
        "fer2013: `test_usage` must be `PublicTest` or `PrivateTest`, got `{}`",
        p.test_usage
    );
    let usage = match ctx.split {
        Split::Train => "Training",
        Split::Test => p.test_usage.as_str(),
    };
    let entries = read(&p.root)?
        .into_iter()
        .filter(|r| r.usage == usage)
        .map(|r| Entry {
            pixels: Pixels::Grey {
                side: r.side,
                values: r.pixels,
            },
            labels: vec![(labels::EXPRESSION, Label::Int(r.expression as i64))],
        })
        .collect();
    Ok(Table::new(entries, expression_info(labels::EXPRESSIONS.len())))
}

/// The grey value of an RGB pixel as PIL's `convert('L')` computes it
/// (ITU-R 601-2 luma, fixed point, rounded).
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// `<out>/fer2013.csv`: the header, then the train rows (`Training`) and
/// the test rows (`PrivateTest`); images in grey ([`luma`]) at the job's
/// size (48 by default, as the real file).
pub fn write(ex: &Job) -> Result<()> {
    let mut text = String::from("emotion,pixels,Usage\n");
    for split in ex.splits() {
        let usage = match split {
            Split::Train => "Training",
            Split::Test => "PrivateTest",
        };
        for record in ex.records(split) {
            let record = record?;
            let ours = expression(&record)?;
            let label = FROM_FER
                .iter()
                .position(|&e| e == ours)
                .context(format!("{}: no FER-2013 label", record.what()))?;
            let rgb = record.image_u8()?;
            let (h, w) = (rgb.size()[1], rgb.size()[2]);
            ensure!(
                h == w,
                "format `fer2013` holds square images; {} is {h}x{w}",
                record.what()
            );
            let values = Vec::<u8>::try_from(rgb.f_flatten(0, -1)?)?;
            let plane = (h * w) as usize;
            let grey: Vec<String> = (0..plane)
                .map(|i| luma(values[i], values[plane + i], values[2 * plane + i]).to_string())
                .collect();
            text += &format!("{label},{},{usage}\n", grey.join(" "));
        }
    }
    io::write_text(&ex.out.join(FILE), &text)
}
