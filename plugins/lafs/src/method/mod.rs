//! LAFS's pre-training: DINO with landmark tokens, one concept per file.
//!
//! - [`head`]: DINO's head (MLP, L2 norm, weight-normalised last layer with
//!   its norm fixed);
//! - [`loss`]: DINO's loss with centring and temperatures;
//! - [`points`]: where tokens are sampled, landmark jitter and subsets;
//! - [`params`]: the method's parameters;
//! - [`lafs`]: the method `lafs`.

pub mod head;
pub mod lafs;
pub mod loss;
pub mod params;
pub mod points;

pub use head::{DinoHead, DinoHeadParams};
pub use lafs::Lafs;
pub use loss::DinoLoss;
pub use params::LafsParams;
pub use points::PointSource;
