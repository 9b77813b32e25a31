//! Binary codecs the benchmark files are made of: Python pickles
//! (verification `.bin`), MATLAB Level 5 MAT-files (AFLW2000-3D, AFLW) and
//! NumPy arrays and archives (FSA-Net `.npz`).

pub mod mat;
pub mod npy;
pub mod npz;
pub mod pickle;
