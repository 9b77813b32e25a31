//! `fr_benchmark`: face recognition's usual pairing of a training set and
//! a verification set in one dataset, so that one `fine_tune` evaluation
//! trains on the first and verifies on the second (LAFS: WebFace4M's
//! `train.rec`, then LFW, CFP-FP or AgeDB-30 `.bin`). The train split is
//! the [`super::mxrec`] record file, the test split the
//! [`super::verification_bin`] pairs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{DatasetContext, Split};
use visage_core::Result;

use super::mxrec::{self, MxRecParams};
use super::verification_bin::{self, VerificationBinParams};
use crate::table::Table;

/// Parameters of `fr_benchmark`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrBenchmarkParams {
    /// The training set (`root` required): an MXNet record file.
    pub train: MxRecParams,
    /// The verification set (`root` required): a `.bin` of pairs.
    pub test: VerificationBinParams,
}

/// The split `ctx.split` asks for.
pub fn dataset(p: FrBenchmarkParams, ctx: &DatasetContext) -> Result<Table> {
    match ctx.split {
        Split::Train => mxrec::dataset(p.train, ctx),
        Split::Test => verification_bin::dataset(p.test, ctx),
    }
}
