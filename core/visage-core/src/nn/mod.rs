//! Neural-network building blocks and the built-in backbones: ResNet with
//! torchvision's names, PCL's FaceCycle encoder, ViT with timm's and MAE's
//! names, LAFS's fViT and its MobileNetV3 landmark network with LAFS's
//! names, and weight interop with PyTorch checkpoints.

pub mod facecycle;
pub mod fvit;
pub mod mobilenet_v3;
mod pickle;
pub mod resnet;
pub mod vit;
pub mod weights;

pub use facecycle::{FaceCycle, FaceCycleParams};
pub use fvit::{Fvit, FvitParams};
pub use mobilenet_v3::{MobileNetV3, MobileNetV3Params};
pub use resnet::{ResNet, ResNetParams};
pub use vit::{VisionTransformer, VitParams, VitSize};
