//! MXNet RecordIO training sets (`train.rec` + `train.idx`, as in the
//! MS1M/WebFace packs of insightface).
//!
//! A record is the magic `0xced7230a` (u32, little-endian), a u32 whose low
//! 29 bits are the payload's length (the top 3 a continuation flag, 0 for
//! a whole record), the payload, and zero padding to 4 bytes. A payload
//! is an `IRHeader` (`flag` u32, `label` f32, `id` u64, `id2` u64), then
//! `flag` more f32 labels when `flag > 0`, then the image bytes. Record 0
//! has `flag > 0` and the labels `[id_start, id_end]`: image records are
//! keys `1..id_start`, identity records `id_start..id_end` (each with the
//! `[first, end)` keys of its images). An image record's identity is its
//! `label` (flag 0) or its first extra label. `train.idx` has one line
//! `key<TAB>byte offset` per record.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetContext, DatasetInfo};
use visage_core::{labels, Error, Result};

use crate::error::ensure;
use crate::table::{Entry, Label, Pixels, Table};
use crate::text::{read_text, Line};
use crate::{io, Job};

/// The RecordIO magic number.
pub const MAGIC: u32 = 0xced7_230a;

/// The largest payload a single record holds (29 bits).
const MAX_LEN: usize = (1 << 29) - 1;

/// Bytes of an `IRHeader`.
const HEADER: usize = 24;

/// Parameters of the `mxnet_rec` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MxRecParams {
    /// The folder holding `<name>.rec` and `<name>.idx`.
    pub root: PathBuf,
    /// The files' name without extension.
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_name() -> String {
    "train".into()
}

/// A record's `IRHeader` and extra labels.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHeader {
    /// The number of extra labels (0: `label` is the label).
    pub flag: u32,
    /// The label when `flag` is 0.
    pub label: f32,
    /// The record's id.
    pub id: u64,
    /// A second id (unused by the face packs).
    pub id2: u64,
    /// The `flag` extra labels.
    pub labels: Vec<f32>,
}

impl RecordHeader {
    /// The label: `label` when `flag` is 0, else the first extra label.
    pub fn first_label(&self) -> f32 {
        self.labels.first().copied().unwrap_or(self.label)
    }
}

/// Reads `<name>.idx`: record key to byte offset.
pub fn read_idx(path: &Path) -> Result<BTreeMap<u64, u64>> {
    let text = read_text(path, "a RecordIO index (`key<TAB>offset` lines)")?;
    let mut offsets = BTreeMap::new();
    for line in Line::all(path, &text) {
        let f = line.fields(None, 2, "key, byte offset")?;
        let key: u64 = line.parse(f[0], "the key")?;
        let offset: u64 = line.parse(f[1], "the byte offset")?;
        if offsets.insert(key, offset).is_some() {
            return Err(line.error(format_args!("a new key, found {key} a second time")));
        }
    }
    Ok(offsets)
}

/// Reads the payload of the record at `offset`; `key` names it in errors.
fn read_payload(file: &mut File, path: &Path, offset: u64, key: u64) -> Result<Vec<u8>> {
    let at = |what: String| Error::msg(format!("{}: record {key} at byte {offset}: {what}", path.display()));
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| at(format!("cannot seek: {e}")))?;
    let mut head = [0u8; 8];
    file.read_exact(&mut head)
        .map_err(|_| at("truncated: expected the 8-byte record head".into()))?;
    let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    if magic != MAGIC {
        return Err(at(format!(
            "expected the RecordIO magic 0xced7230a, found 0x{magic:08x}"
        )));
    }
    let lrec = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if lrec >> 29 != 0 {
        return Err(at("a record split in parts (over 512 MiB); not supported".into()));
    }
    let len = (lrec as usize) & MAX_LEN;
    let mut payload = vec![0u8; len];
    file.read_exact(&mut payload)
        .map_err(|_| at(format!("truncated: expected {len} bytes of payload")))?;
    Ok(payload)
}

/// Splits a payload into its header and the bytes after it.
fn parse_header(payload: &[u8], at: impl Fn(String) -> Error) -> Result<(RecordHeader, &[u8])> {
    if payload.len() < HEADER {
        return Err(at(format!(
            "expected a {HEADER}-byte IRHeader, the payload has {} bytes",
            payload.len()
        )));
    }
    let u32_at = |i: usize| u32::from_le_bytes(payload[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().unwrap_or_default());
    let flag = u32_at(0);
    let extra = (flag as usize).saturating_mul(4);
    if payload.len() - HEADER < extra {
        return Err(at(format!(
            "expected {flag} labels after the IRHeader, the payload is too short"
        )));
    }
    let labels = payload[HEADER..HEADER + extra]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let header = RecordHeader {
        flag,
        label: f32::from_bits(u32_at(4)),
        id: u64_at(8),
        id2: u64_at(16),
        labels,
    };
    Ok((header, &payload[HEADER + extra..]))
}

/// Reads record `key` at `offset` of the `.rec` at `path`: its header and
/// image bytes.
pub fn read_image_record(path: &Path, offset: u64, key: u64) -> Result<(RecordHeader, Vec<u8>)> {
    let mut file =
        File::open(path).map_err(|e| Error::msg(format!("{}: cannot read the RecordIO file: {e}", path.display())))?;
    let payload = read_payload(&mut file, path, offset, key)?;
    let at = |what: String| Error::msg(format!("{}: record {key}: {what}", path.display()));
    let (header, image) = parse_header(&payload, at)?;
    Ok((header, image.to_vec()))
}

/// One image record of a training set.
#[derive(Debug, Clone, PartialEq)]
pub struct RecImage {
    /// The record's key.
    pub key: u64,
    /// Its byte offset.
    pub offset: u64,
    /// Its identity.
    pub identity: usize,
}

/// Reads the index and every image record's header: the images and the
/// number of identities (`id_end - id_start`).
pub fn read(root: &Path, name: &str) -> Result<(Vec<RecImage>, usize)> {
    let rec = root.join(format!("{name}.rec"));
    let idx = read_idx(&root.join(format!("{name}.idx")))?;
    let mut file =
        File::open(&rec).map_err(|e| Error::msg(format!("{}: cannot read the RecordIO file: {e}", rec.display())))?;
    let offset_of = |key: u64| {
        idx.get(&key)
            .copied()
            .ok_or_else(|| Error::msg(format!("{name}.idx: expected record {key}, which it does not list")))
    };
    let shown = rec.display().to_string();
    let at = |key: u64| {
        let shown = shown.clone();
        move |what: String| Error::msg(format!("{shown}: record {key}: {what}"))
    };
    let payload = read_payload(&mut file, &rec, offset_of(0)?, 0)?;
    let (head, _) = parse_header(&payload, at(0))?;
    let [start, end] = head.labels[..] else {
        return Err(at(0)(format!(
            "expected the header record (flag 2, labels [id_start, id_end]), found flag {}",
            head.flag
        )));
    };
    let (start, end) = (start as u64, end as u64);
    if start < 1 || end < start {
        return Err(at(0)(format!(
            "expected 1 <= id_start <= id_end, found [{start}, {end}]"
        )));
    }
    let identities = (end - start) as usize;
    let mut images = Vec::with_capacity(start as usize - 1);
    for key in 1..start {
        let offset = offset_of(key)?;
        let payload = read_payload(&mut file, &rec, offset, key)?;
        let (header, _) = parse_header(&payload, at(key))?;
        let label = header.first_label();
        if !(label >= 0.0 && label.fract() == 0.0 && (label as usize) < identities) {
            return Err(at(key)(format!(
                "expected an identity label 0..{identities} (id_end - id_start of record 0), found {label}"
            )));
        }
        images.push(RecImage {
            key,
            offset,
            identity: label as usize,
        });
    }
    Ok((images, identities))
}

/// The `mxnet_rec` dataset: the image records in key order, with
/// `identity`. One training set: every split reads it.
pub fn dataset(p: MxRecParams, _ctx: &DatasetContext) -> Result<Table> {
    ensure!(
        !p.name.is_empty() && !p.name.contains(['/', '\\']),
        "mxnet_rec: `name` must be a file name without extension, got `{}`",
        p.name
    );
    let (images, identities) = read(&p.root, &p.name)?;
    let path = p.root.join(format!("{}.rec", p.name));
    let entries = images
        .into_iter()
        .map(|r| Entry {
            pixels: Pixels::Record {
                path: path.clone(),
                offset: r.offset,
                key: r.key,
            },
            labels: vec![(labels::IDENTITY, Label::Int(r.identity as i64))],
        })
        .collect();
    let info = DatasetInfo {
        labels: vec![labels::IDENTITY.into()],
        identities: Some(identities),
        ..Default::default()
    };
    Ok(Table::new(entries, info))
}

/// One record: head, payload of `header` (labels after it) and `data`,
/// padding to 4 bytes.
pub fn encode_record(flag_labels: &[f32], label: f32, id: u64, data: &[u8]) -> Result<Vec<u8>> {
    let len = HEADER + 4 * flag_labels.len() + data.len();
    ensure!(len <= MAX_LEN, "a record of {len} bytes is over RecordIO's 512 MiB");
    let mut out = Vec::with_capacity(8 + len + 3);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&(flag_labels.len() as u32).to_le_bytes());
    out.extend_from_slice(&label.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    for l in flag_labels {
        out.extend_from_slice(&l.to_le_bytes());
    }
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(4) * 4, 0);
    Ok(out)
}

/// `<out>/train.rec` and `<out>/train.idx` of the first exported split:
/// the images (JPEG) ordered by identity (stable: sample order within
/// one), each with flag 0 and its identity as label; then one identity
/// record per identity `0..=max` (flag 2, labels `[first, end)` of its
/// image keys, empty for an identity not exported), so that labels are the
/// dataset's own; record 0 says `[id_start, id_end]`.
pub fn write(ex: &Job) -> Result<()> {
    let split = ex.splits()[0];
    let mut items = vec![];
    for record in ex.records(split) {
        let record = record?;
        let id = record.int(labels::IDENTITY)?;
        ensure!(
            (0..1 << 24).contains(&id),
            "format `mxnet-rec` stores identities as floats: {} has identity {id}, expected 0..2^24",
            record.what()
        );
        let jpeg = io::encode(&record.image_u8()?, &ex.out, "jpg")?;
        items.push((id as u64, jpeg));
    }
    items.sort_by_key(|(id, _)| *id);
    let n = items.len() as u64;
    let max = items.last().map_or(0, |(id, _)| *id);
    let id_start = n + 1;
    let id_end = id_start + max + 1;
    let mut records = vec![encode_record(&[id_start as f32, id_end as f32], 0.0, 0, &[])?];
    for (k, (id, jpeg)) in items.iter().enumerate() {
        records.push(encode_record(&[], *id as f32, k as u64 + 1, jpeg)?);
    }
    for id in 0..=max {
        let first = 1 + items.iter().position(|(i, _)| *i >= id).unwrap_or(items.len()) as u64;
        let end = 1 + items.iter().position(|(i, _)| *i > id).unwrap_or(items.len()) as u64;
        records.push(encode_record(&[first as f32, end as f32], 0.0, id_start + id, &[])?);
    }
    let (mut rec, mut idx) = (vec![], String::new());
    for (key, r) in records.iter().enumerate() {
        idx += &format!("{key}\t{}\n", rec.len());
        rec.extend_from_slice(r);
    }
    io::write_bytes(&ex.out.join("train.rec"), &rec)?;
    io::write_text(&ex.out.join("train.idx"), &idx)
}
