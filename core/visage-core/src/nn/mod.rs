//! Neural-network building blocks and the general backbones: ResNet with
//! torchvision's names and ViT with timm's and MAE's names, and weight
//! interop with PyTorch checkpoints. Backbones of one paper live with it in
//! its plugin (PCL's FaceCycle in plugins/pcl, LAFS's fViT and MobileNetV3
//! in plugins/lafs).

pub mod contrastive;
pub mod mlp;
pub mod pickle;
pub mod resnet;
pub mod vit;
pub mod weights;

pub use resnet::{ResNet, ResNetParams};
pub use vit::{VisionTransformer, VitParams, VitSize};
