//! The data pipeline: image sources, decoding, and a [`Loader`] that decodes
//! and augments batches on a pool of threads with bounded prefetch.
//!
//! - [`order`]: which samples each batch holds ([`DataOrder`], [`Sampling`]):
//!   an endless stream with a fresh permutation per epoch from
//!   `(seed, epoch)` (pre-training), or one epoch, shuffled or in index
//!   order, with or without `drop_last` (evaluation).
//! - [`Loader`]: `workers` threads build whole batches; a reorder buffer
//!   hands them out in order, at most `prefetch` ahead of the consumer.
//!   Batches are bit-identical for any number of workers, including 0 (the
//!   calling thread). See [`Loader`] for bad samples and threads.
//! - [`decode`]: JPEG and PNG in pure Rust (`image` with `zune-jpeg`).
//! - [`sources`]: the built-in datasets `image_folder` (every image under a
//!   folder, at any depth; optional class label from the first-level folder)
//!   and `file_list` (a text file of `path [label]` lines), with
//!   `on_bad_sample: error | skip`. Any other [`crate::dataset::Dataset`],
//!   e.g. the `synthface` generator, works with the loader too.
//!
//! ```
//! use std::sync::Arc;
//! use tch::Device;
//! use visage_core::data::{sources, Loader, LoaderConfig, Sampling};
//! use visage_core::dataset::Split;
//!
//! # let dir = std::env::temp_dir().join(format!("visage-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(dir.join("a")).unwrap();
//! # image::RgbImage::new(8, 8).save(dir.join("a/x.png")).unwrap();
//! let params = serde_json::from_value(serde_json::json!({"root": dir, "resize": 4}))?;
//! let folder = sources::ImageFolder::new(params, Split::Train)?;
//! let config = LoaderConfig {
//!     batch_size: 1,
//!     workers: 1,
//!     prefetch: 2,
//!     seed: 0,
//!     sampling: Sampling::Epoch { epoch: 0, shuffle: true, drop_last: false },
//!     per_identity: None,
//!     device: Device::Cpu,
//! };
//! for batch in Loader::new(Arc::new(folder), Arc::new([]), config)? {
//!     assert_eq!(batch?.images.size(), vec![1, 3, 4, 4]);
//! }
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod decode;
mod loader;
pub mod order;
pub mod sources;
#[cfg(test)]
mod tests;

pub use loader::{Loader, LoaderConfig, ViewGroup};
pub use order::{DataOrder, Sampling};
pub use sources::OnBadSample;
