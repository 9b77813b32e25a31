//! The small CNN and its label heads.

use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};
use visage_core::labels::{AU_NAMES, EXPRESSIONS, IBUG68, LAPA_CLASSES};

use super::Data;

/// Four stages (widths `w, 2w, 4w, 8w`), each a stride-2 and a stride-1
/// 3x3 conv-BN-ReLU.
pub struct Trunk {
    stages: Vec<nn::SequentialT>,
}

/// What the trunk gives the heads.
pub struct Features {
    /// The last stage pooled to 2x2 and flattened: `[N, 32 w]`.
    pub vector: Tensor,
    /// The first stage's map (stride 2): `[N, w, H/2, W/2]`.
    pub fine: Tensor,
    /// The second stage's map (stride 4): `[N, 2w, H/4, W/4]`.
    pub middle: Tensor,
    /// The last stage's map (stride 16): `[N, 8w, H/16, W/16]`.
    pub coarse: Tensor,
}

impl Trunk {
    /// The trunk under `vs` with first-stage width `width`.
    pub fn new(vs: &nn::Path, width: i64) -> Self {
        let mut c_in = 3;
        let stages = (0..4)
            .map(|stage| {
                let c_out = width << stage;
                let s = nn::seq_t()
                    .add(conv_bn(&(vs / format!("stage{stage}a")), c_in, c_out, 2))
                    .add(conv_bn(&(vs / format!("stage{stage}b")), c_out, c_out, 1));
                c_in = c_out;
                s
            })
            .collect();
        Trunk { stages }
    }

    /// Runs the images `[N, 3, H, W]`.
    pub fn forward(&self, images: &Tensor, train: bool) -> Features {
        let mut x = images.shallow_clone();
        let mut maps = Vec::new();
        for stage in &self.stages {
            x = stage.forward_t(&x, train);
            maps.push(x.shallow_clone());
        }
        Features {
            vector: x.adaptive_avg_pool2d([2, 2]).flatten(1, -1),
            middle: maps.swap_remove(1),
            fine: maps.swap_remove(0),
            coarse: x,
        }
    }
}

/// A 3x3 convolution with stride `stride`, batch norm and ReLU.
fn conv_bn(vs: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> nn::SequentialT {
    let conv = nn::ConvConfig {
        stride,
        padding: 1,
        bias: false,
        ..Default::default()
    };
    nn::seq_t()
        .add(nn::conv2d(vs / "conv", c_in, c_out, 3, conv))
        .add(nn::batch_norm2d(vs / "bn", c_out, Default::default()))
        .add_fn(|x| x.relu())
}

/// Statistics of the training split that centre and balance the losses.
pub struct Balance {
    /// Mean landmarks `[1, 68, 2]`: the landmark head predicts the offset
    /// from them.
    pub mean_shape: Tensor,
    /// Weight of each parsing class `[11]` in the cross-entropy.
    pub parsing_class_weights: Tensor,
    /// Weight of each AU's positives `[12]`, negatives / positives, so that
    /// a logit of 0 is the balanced decision threshold.
    pub au_pos_weight: Tensor,
}

/// One linear head per label; linear in the trunk's features, so that on a
/// frozen random trunk they are a linear probe.
pub struct Heads {
    expression: nn::Linear,
    au: nn::Linear,
    pose: nn::Linear,
    landmarks: nn::Linear,
    identity: nn::Linear,
    parsing_fine: nn::Conv2D,
    parsing_middle: nn::Conv2D,
    parsing_coarse: nn::Conv2D,
    /// The train split's mean landmarks `[1, 68, 2]`: the landmark head
    /// predicts the offset from it, in units of a tenth of the image side.
    mean_shape: Tensor,
    side: f64,
    /// Weight of each parsing class in the cross-entropy.
    class_weights: Tensor,
    /// Weight of each AU's positives in the binary cross-entropy.
    au_pos_weight: Tensor,
}

/// The heads' raw outputs.
pub struct Outputs {
    /// Expression logits.
    pub expression: Tensor,
    /// AU logits.
    pub au: Tensor,
    /// Yaw, pitch, roll in degrees.
    pub pose: Tensor,
    /// Landmarks in pixels `[N, 68, 2]`.
    pub landmarks: Tensor,
    /// Identity logits.
    pub identity: Tensor,
    /// Parsing logits at full resolution `[N, 11, H, W]`.
    pub parsing: Tensor,
}

/// Pose is regressed in units of 45 degrees.
const POSE_UNIT: f64 = 45.0;

impl Heads {
    /// Heads for a trunk of width `width`, `identities` classes, images of
    /// side `side`, landmark offsets about `mean_shape`, parsing classes
    /// weighted by `class_weights`, AU positives by `au_pos_weight`.
    pub fn new(vs: &nn::Path, width: i64, identities: i64, side: f64, balance: Balance) -> Self {
        let dim = (width << 3) * 4;
        let l = |name: &str, out: i64| nn::linear(vs / name, dim, out, Default::default());
        let classes = LAPA_CLASSES.len() as i64;
        let c = |name: &str, c_in: i64| nn::conv2d(vs / name, c_in, classes, 1, Default::default());
        Heads {
            expression: l("expression", EXPRESSIONS.len() as i64),
            au: l("au", AU_NAMES.len() as i64),
            pose: l("pose", 3),
            landmarks: l("landmarks", 2 * IBUG68 as i64),
            identity: l("identity", identities),
            parsing_fine: c("parsing_fine", width),
            parsing_middle: c("parsing_middle", width * 2),
            parsing_coarse: c("parsing_coarse", width * 8),
            mean_shape: balance.mean_shape,
            side,
            class_weights: balance.parsing_class_weights,
            au_pos_weight: balance.au_pos_weight,
        }
    }

    /// The heads on `features`.
    pub fn forward(&self, f: &Features) -> Outputs {
        let n = f.vector.size()[0];
        let offsets = self.landmarks.forward(&f.vector).view([n, IBUG68 as i64, 2]);
        // A linear map of the three scales, summed at the finest (stride 2).
        let fine = f.fine.size();
        let up = |x: Tensor| x.upsample_bilinear2d([fine[2], fine[3]], false, None, None);
        let parsing = f.fine.apply(&self.parsing_fine)
            + up(f.middle.apply(&self.parsing_middle))
            + up(f.coarse.apply(&self.parsing_coarse));
        let side = self.side as i64;
        Outputs {
            expression: self.expression.forward(&f.vector),
            au: self.au.forward(&f.vector),
            pose: self.pose.forward(&f.vector) * POSE_UNIT,
            landmarks: &self.mean_shape + offsets * (0.1 * self.side),
            identity: self.identity.forward(&f.vector),
            parsing: parsing.upsample_bilinear2d([side, side], false, None, None),
        }
    }

    /// The summed loss on one batch. Every term is of order one at the
    /// start: pose in units of 45 degrees, landmarks in tenths of the side.
    pub fn loss(&self, o: &Outputs, d: &Data) -> Tensor {
        let expression = o.expression.cross_entropy_for_logits(&d.expression);
        let au = o.au.binary_cross_entropy_with_logits::<Tensor>(
            &d.au,
            None,
            Some(self.au_pos_weight.shallow_clone()),
            tch::Reduction::Mean,
        );
        let pose = ((&o.pose - &d.pose) / POSE_UNIT).abs().mean(Kind::Float);
        let landmarks = ((&o.landmarks - &d.landmarks) / (0.1 * self.side))
            .abs()
            .mean(Kind::Float);
        let identity = o.identity.cross_entropy_for_logits(&d.identity);
        let parsing =
            o.parsing
                .cross_entropy_loss(&d.parsing, Some(&self.class_weights), tch::Reduction::Mean, -100, 0.0);
        expression + au + pose + landmarks + identity + parsing
    }
}
