//! Neural-network building blocks and the built-in backbones: ResNet with
//! torchvision's names, ViT with timm's and MAE's names, and weight interop
//! with PyTorch checkpoints.

mod pickle;
pub mod resnet;
pub mod vit;
pub mod weights;

pub use resnet::{ResNet, ResNetParams};
pub use vit::{VisionTransformer, VitParams, VitSize};
