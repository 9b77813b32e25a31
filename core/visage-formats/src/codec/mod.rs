//! Binary codecs the benchmark files are made of: Python pickles
//! (verification `.bin`) and MATLAB Level 5 MAT-files (AFLW2000-3D, AFLW).

pub mod mat;
pub mod pickle;
