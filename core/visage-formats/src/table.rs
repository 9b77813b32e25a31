//! The dataset every reader returns: a list of entries (where the image
//! is, and its labels) read from the benchmark's files when the dataset is
//! built, images decoded when a sample is asked for.

use std::path::PathBuf;
use std::sync::Arc;

use tch::Tensor;
use visage_core::data::decode::{decode_rgb8, f_rgb8_to_tensor, load_image};
use visage_core::dataset::{Dataset, DatasetInfo};
use visage_core::{Error, Result, Sample};

/// Where an entry's image is.
#[derive(Debug, Clone)]
pub enum Pixels {
    /// A JPEG or PNG file.
    File(PathBuf),
    /// JPEG or PNG bytes held in memory (verification `.bin`); `origin`
    /// names them in messages (`lfw.bin: image 17`).
    Encoded {
        /// The encoded image.
        bytes: Arc<[u8]>,
        /// The file and place they come from.
        origin: String,
    },
    /// A square grey image of `side x side` 8-bit values (FER-2013),
    /// given as RGB with three equal channels.
    Grey {
        /// Width and height.
        side: usize,
        /// Row-major values.
        values: Vec<u8>,
    },
    /// An image record of an MXNet `.rec` file, read when asked for.
    Record {
        /// The `.rec` file.
        path: PathBuf,
        /// The record's byte offset (from the `.idx` file).
        offset: u64,
        /// The record's key, for messages.
        key: u64,
    },
}

impl Pixels {
    /// The image as float `[3, H, W]` in 0..1.
    pub fn load(&self) -> Result<Tensor> {
        match self {
            Pixels::File(path) => load_image(path, None, false),
            Pixels::Encoded { bytes, origin } => decode(bytes, origin),
            Pixels::Grey { side, values } => {
                let s = *side as i64;
                let grey = Tensor::f_from_slice(values)?.f_view([1, s, s])?;
                Ok(grey
                    .f_repeat([3, 1, 1])?
                    .f_to_kind(tch::Kind::Float)?
                    .f_div_scalar(255.0)?)
            }
            Pixels::Record { path, offset, key } => {
                let (_, bytes) = crate::fr::mxrec::read_image_record(path, *offset, *key)?;
                decode(&bytes, &format!("{}: record {key}", path.display()))
            }
        }
    }

    /// The file the image comes from, when it is one.
    pub fn file(&self) -> Option<PathBuf> {
        match self {
            Pixels::File(path) | Pixels::Record { path, .. } => Some(path.clone()),
            _ => None,
        }
    }
}

/// Decodes JPEG or PNG bytes into float `[3, H, W]`.
fn decode(bytes: &[u8], origin: &str) -> Result<Tensor> {
    let rgb = decode_rgb8(bytes, None).map_err(|e| Error::msg(format!("{origin}: {e}")))?;
    f_rgb8_to_tensor(&rgb)
}

/// One label value.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// An int64 scalar (`expression`, `identity`, `same`, `fold`).
    Int(i64),
    /// A float vector (`au`).
    Floats(Vec<f32>),
}

impl Label {
    /// As a tensor: int64 `[]` or float `[N]`.
    pub fn tensor(&self) -> Tensor {
        match self {
            Label::Int(v) => Tensor::from(*v),
            Label::Floats(v) => Tensor::from_slice(v),
        }
    }
}

/// One sample: where its image is and its labels by name.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The image.
    pub pixels: Pixels,
    /// The labels (names of `visage_core::labels`).
    pub labels: Vec<(&'static str, Label)>,
}

/// A dataset of entries read from a benchmark's files.
#[derive(Debug)]
pub struct Table {
    entries: Vec<Entry>,
    info: DatasetInfo,
}

impl Table {
    /// A dataset of `entries`, described by `info`.
    pub fn new(entries: Vec<Entry>, info: DatasetInfo) -> Self {
        Table { entries, info }
    }

    /// The entries, in sample order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

impl Dataset for Table {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let entry = self
            .entries
            .get(index)
            .ok_or_else(|| Error::msg(format!("index {index} is out of range (0..{})", self.entries.len())))?;
        let mut sample = Sample::new(entry.pixels.load()?);
        for (name, label) in &entry.labels {
            sample = sample.with_label(*name, label.tensor());
        }
        Ok(sample)
    }

    fn source(&self, index: usize) -> Option<PathBuf> {
        self.entries.get(index).and_then(|e| e.pixels.file())
    }

    fn info(&self) -> DatasetInfo {
        self.info.clone()
    }
}
