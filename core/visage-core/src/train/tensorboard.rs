//! TensorBoard event files (`<run>/tensorboard/events.out.tfevents.*`):
//! scalar summaries of the loss terms and learning-rate factor per step,
//! written without TensorFlow: TFRecord framing with masked CRC-32C around
//! hand-encoded `Event` protocol buffers.
//!
//! A resumed run opens a new file that starts with a `SessionLog START` at
//! the resumed step, which tells TensorBoard to drop the previous files'
//! points from that step on, so the curves equal an uninterrupted run's.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::fs::io_error;
use crate::Result;

/// An open event file.
pub struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// Creates a new event file under `<run_dir>/tensorboard`; `resume_step`
    /// is the step a resumed run continues from (0 for a fresh run).
    pub fn create(run_dir: &Path, resume_step: u64) -> Result<Self> {
        let dir = run_dir.join("tensorboard");
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // Several files may start within a second (resume): number them.
        let mut n = 0;
        let path = loop {
            let p = dir.join(format!("events.out.tfevents.{}.visage.{}", now.as_secs(), n));
            if !p.exists() {
                break p;
            }
            n += 1;
        };
        let file = File::create(&path).map_err(io_error(&path))?;
        let mut writer = EventWriter { path, file };
        let wall = now.as_secs_f64();
        writer.record(&event(wall, 0, Field::String(3, "brain.Event:2".into())))?;
        if resume_step > 0 {
            // SessionLog { status: START = 1 }
            let session_log = message(&[Field::Varint(1, 1)]);
            writer.record(&event(wall, resume_step, Field::Bytes(7, session_log)))?;
        }
        Ok(writer)
    }

    /// Writes scalars `tag -> value` at `step`.
    pub fn scalars<'a>(&mut self, step: u64, values: impl IntoIterator<Item = (&'a str, f64)>) -> Result<()> {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        // Summary { repeated Value value = 1 }, Value { tag = 1, simple_value = 2 }.
        let summary: Vec<Field> = values
            .into_iter()
            .map(|(tag, v)| Field::Bytes(1, message(&[Field::String(1, tag.into()), Field::Float(2, v as f32)])))
            .collect();
        self.record(&event(wall, step, Field::Bytes(5, message(&summary))))?;
        self.file.flush().map_err(io_error(&self.path))
    }

    /// One TFRecord: length, masked CRC of the length, data, masked CRC.
    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut out = Vec::with_capacity(data.len() + 16);
        out.extend_from_slice(&len);
        out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        self.file.write_all(&out).map_err(io_error(&self.path))
    }
}

/// `Event { wall_time = 1 (double), step = 2 (int64), what }`.
fn event(wall_time: f64, step: u64, what: Field) -> Vec<u8> {
    message(&[Field::Double(1, wall_time), Field::Varint(2, step), what])
}

/// The protocol-buffer field kinds an event needs.
enum Field {
    Varint(u32, u64),
    Double(u32, f64),
    Float(u32, f32),
    String(u32, String),
    Bytes(u32, Vec<u8>),
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn message(fields: &[Field]) -> Vec<u8> {
    let mut out = vec![];
    for field in fields {
        let key = |n: u32, wire: u64, out: &mut Vec<u8>| varint(((n as u64) << 3) | wire, out);
        match field {
            Field::Varint(n, v) => {
                key(*n, 0, &mut out);
                varint(*v, &mut out);
            }
            Field::Double(n, v) => {
                key(*n, 1, &mut out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Float(n, v) => {
                key(*n, 5, &mut out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::String(n, s) => {
                key(*n, 2, &mut out);
                varint(s.len() as u64, &mut out);
                out.extend_from_slice(s.as_bytes());
            }
            Field::Bytes(n, b) => {
                key(*n, 2, &mut out);
                varint(b.len() as u64, &mut out);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

/// CRC-32C (Castagnoli), bitwise: records are small.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    /// TensorBoard's own reader (tests/reference/tensorboard_scalars.py)
    /// sees the resumed values, once per step.
    #[test]
    fn tensorboard_reads_the_files_and_drops_points_past_a_resume() {
        let dir = std::env::temp_dir().join(format!("visage-tb-{}", std::process::id()));
        let mut first = EventWriter::create(&dir, 0).unwrap();
        for step in 0..6 {
            first.scalars(step, [("loss/x", step as f64)]).unwrap();
        }
        let mut resumed = EventWriter::create(&dir, 3).unwrap();
        for step in 3..6 {
            resumed.scalars(step, [("loss/x", 10.0 * step as f64)]).unwrap();
        }
        let venv = std::env::var("VIRTUAL_ENV").expect("run through ./scripts/test");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/tensorboard_scalars.py");
        let out = std::process::Command::new(Path::new(&venv).join("bin/python"))
            .arg(script)
            .arg(dir.join("tensorboard"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let scalars: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            scalars["loss/x"],
            serde_json::json!([[0, 0.0], [1, 1.0], [2, 2.0], [3, 30.0], [4, 40.0], [5, 50.0]])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn varints_encode_as_protobuf_does() {
        let mut out = vec![];
        varint(300, &mut out);
        assert_eq!(out, [0xAC, 0x02]);
    }
}
