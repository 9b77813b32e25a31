//! Benchmark file formats: one reader and one writer per layout of
//! `shared/design/datasets.md`, the pickle and `.mat` codecs they share,
//! and the coordinate conventions of each, in one place.
//!
//! Modules by task family: [`fer`] (expressions), [`fr`] (face
//! recognition and verification), [`au`] (action units), [`pose`]
//! (300W-LP / AFLW2000-3D `.mat`, FSA-Net `.npz`, BIWI), [`alignment`]
//! (300W `.pts` and HRNet CSV, WFLW, AFLW-19, and AFLW2000-3D's writer),
//! [`parsing`] (LaPa, CelebAMask-HQ); shared: [`io`] (atomic writes, image
//! encoding), [`files`] and [`table`] (the readers' datasets and checked
//! reads), [`text`] (line-numbered text reads) and [`codec`] (pickle, MAT
//! v5, npy/npz). Errors name the file, the line or record and what was
//! expected.
//! The writers read a [`Job`] (datasets of the asked splits, the output
//! folder, [`Options`]) one [`Record`] at a time; [`WRITERS`] lists them by
//! format name (`runner export --format`).
//!
//! ## Conventions shared by every writer
//! - Sample `i` (0-based) of a split is file number `i + 1`, as the real
//!   benchmarks count from 1 (`train_00001.jpg`).
//! - Images are the dataset's `[C, H, W]` floats in 0..1, clamped, scaled to
//!   0..255 and rounded; JPEG (quality 90) or PNG by extension. A job's
//!   size `S` resizes to `S x S` (bilinear, antialiased) and scales
//!   landmarks and parsing masks (nearest) with the image.
//! - Landmark coordinates: our labels put pixel `(i, j)` on
//!   `[j, j+1) x [i, i+1)` (`visage_core::labels`). Files of MATLAB origin
//!   (300W `.pts`, AFLW2000-3D and AFLW `.mat`) use 1-based pixel centres:
//!   the centre of the top-left pixel is `(1, 1)`, so they hold `x + 0.5`.
//!   The other text formats (WFLW, LaPa, HRNet's CSV) use 0-based pixel
//!   centres (the top-left pixel's centre is `(0, 0)`, as in OpenCV), so
//!   they hold `x - 0.5`. WFLW's box and AFLW-19's `bbox` are the
//!   landmarks' bounds: WFLW's in our coordinates rounded outwards,
//!   AFLW's 1-based like its points. Readers invert exactly this.
//! - Head pose: our `[yaw, pitch, roll]` degrees; the `.mat` files hold
//!   `[pitch, -yaw, -roll]` in radians ([`alignment::aflw_pose`]), the
//!   FSA-Net `.npz` `[-yaw, pitch, -roll]` in degrees (made from those
//!   files), BIWI the rotation `Rz(roll) Rx(pitch) Ry(yaw)` itself
//!   ([`pose`]).
//! - Every file is written to a temporary name in its folder and renamed,
//!   so a killed export never leaves a half-written file.

#![warn(missing_docs)]

pub(crate) mod error;

pub mod alignment;
pub mod au;
pub mod catalog;
pub mod codec;
pub mod fer;
pub mod files;
pub mod fr;
pub mod io;
pub mod job;
pub mod parsing;
pub mod pose;
pub mod record;
pub mod table;
pub mod text;

pub use catalog::{writer, Splits, Writer, WRITERS};
pub use job::{split_name, FolderLabel, Job, Options, Source};
pub use record::Record;

/// Registers every reader's dataset: [`fer::register`], [`fr::register`],
/// [`au::register`], [`pose::register`], [`alignment::register`],
/// [`parsing::register`].
pub fn register(registry: &mut visage_core::Registry) -> visage_core::Result<()> {
    fer::register(registry)?;
    fr::register(registry)?;
    au::register(registry)?;
    pose::register(registry)?;
    alignment::register(registry)?;
    parsing::register(registry)?;
    Ok(())
}
