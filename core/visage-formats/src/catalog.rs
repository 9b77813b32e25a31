//! The writers by format name, with the labels each needs and the splits
//! it holds: what `runner export --format` chooses from.

use visage_core::labels as l;
use visage_core::Result;

use crate::{alignment, au, fer, fr, parsing, pose, Job};

/// Which splits a format holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splits {
    /// Train and test (default both).
    Both,
    /// One split per export (default test), e.g. an evaluation-only benchmark.
    One,
    /// Both allowed, default train.
    TrainFirst,
}

/// One format: its name, the labels it needs, and its writer.
pub struct Writer {
    /// The format's name (`rafdb`, `verification-bin`, ...).
    pub name: &'static str,
    /// The labels every sample must carry.
    pub needs: &'static [&'static str],
    /// The splits it holds.
    pub splits: Splits,
    /// The image size it is written at unless asked otherwise (RAF-DB's
    /// aligned images are 100x100).
    pub default_size: Option<i64>,
    /// Writes the job's samples.
    pub write: fn(&Job) -> Result<()>,
}

/// Every writer, in the order `runner export` lists them.
pub const WRITERS: &[Writer] = &[
    Writer {
        name: "rafdb",
        needs: &[l::EXPRESSION],
        splits: Splits::Both,
        default_size: Some(100),
        write: fer::rafdb,
    },
    Writer {
        name: "fer2013",
        needs: &[l::EXPRESSION],
        splits: Splits::Both,
        default_size: Some(48),
        write: fer::fer2013::write,
    },
    Writer {
        name: "affectnet",
        needs: &[l::EXPRESSION],
        splits: Splits::Both,
        default_size: None,
        write: fer::affectnet::write,
    },
    Writer {
        name: "verification-bin",
        needs: &[l::IDENTITY],
        splits: Splits::One,
        default_size: None,
        write: fr::verification_bin,
    },
    Writer {
        name: "lfw-pairs",
        needs: &[l::IDENTITY],
        splits: Splits::One,
        default_size: None,
        write: fr::lfw_pairs,
    },
    Writer {
        name: "mxnet-rec",
        needs: &[l::IDENTITY],
        splits: Splits::TrainFirst,
        default_size: None,
        write: fr::mxrec::write,
    },
    Writer {
        name: "disfa",
        needs: &[l::AU],
        splits: Splits::Both,
        default_size: None,
        write: au::disfa,
    },
    Writer {
        name: "bp4d",
        needs: &[l::AU],
        splits: Splits::Both,
        default_size: None,
        write: au::bp4d,
    },
    Writer {
        name: "aflw2000",
        needs: &[l::POSE, l::LANDMARKS],
        splits: Splits::One,
        default_size: None,
        write: alignment::aflw2000,
    },
    Writer {
        name: "fsanet-npz",
        needs: &[l::POSE],
        splits: Splits::Both,
        default_size: None,
        write: pose::fsanet_npz,
    },
    Writer {
        name: "biwi",
        needs: &[l::POSE],
        splits: Splits::Both,
        default_size: None,
        write: pose::biwi,
    },
    Writer {
        name: "pts300w",
        needs: &[l::LANDMARKS],
        splits: Splits::Both,
        default_size: None,
        write: alignment::pts300w,
    },
    Writer {
        name: "hrnet-csv",
        needs: &[l::LANDMARKS],
        splits: Splits::Both,
        default_size: None,
        write: alignment::hrnet_csv,
    },
    Writer {
        name: "wflw",
        needs: &[l::LANDMARKS],
        splits: Splits::Both,
        default_size: None,
        write: alignment::wflw,
    },
    Writer {
        name: "aflw19",
        needs: &[l::LANDMARKS, l::LANDMARKS_VISIBLE],
        splits: Splits::Both,
        default_size: None,
        write: alignment::aflw19,
    },
    Writer {
        name: "lapa",
        needs: &[l::PARSING, l::LANDMARKS],
        splits: Splits::Both,
        default_size: None,
        write: parsing::lapa,
    },
    Writer {
        name: "celebamask",
        needs: &[l::PARSING],
        splits: Splits::Both,
        default_size: None,
        write: parsing::celebamask,
    },
    Writer {
        name: "imagefolder",
        needs: &[],
        splits: Splits::TrainFirst,
        default_size: None,
        write: fer::imagefolder,
    },
];

/// The writer of format `name`.
pub fn writer(name: &str) -> Option<&'static Writer> {
    WRITERS.iter().find(|w| w.name == name)
}
