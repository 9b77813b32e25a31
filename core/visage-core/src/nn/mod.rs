//! Neural-network building blocks and the built-in backbones: ResNet with
//! torchvision's names, PCL's FaceCycle encoder, ViT with timm's and MAE's names, and weight interop
//! with PyTorch checkpoints.

pub mod facecycle;
mod pickle;
pub mod resnet;
pub mod vit;
pub mod weights;

pub use facecycle::{FaceCycle, FaceCycleParams};
pub use resnet::{ResNet, ResNetParams};
pub use vit::{VisionTransformer, VitParams, VitSize};
