//! MobileNetV3 (Howard et al., 2019) as LAFS uses it for its landmark
//! network: the large configuration's feature trunk, with the layout and
//! parameter names of the MobileNetV3 in LAFS's `face_pre_pro/mobilenet.py`
//! (`features.0.0` stem conv, `features.K.conv.0..8` bottlenecks, squeeze-
//! excitation `conv.5.fc.0/2` without biases, applied before the depthwise
//! stage's non-linearity), so that LAFS checkpoints load by name.
//!
//! With `landmarks: L` it carries LAFS's landmark head: global average
//! pooling, dropout 0.5, `Linear(C, 2L)`, then each image's 2L outputs are
//! min-max scaled together to `[0, side - 1]` pixels and read as `(x, y)`
//! pairs. LAFS trains it without landmark labels (Part fViT) and freezes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use visage_core::backbone::{Backbone, FeatureSpec, Features, LandmarkPredictor, POOLED};
use visage_core::{Error, Result};

/// Parameters of the `mobilenet_v3` backbone.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MobileNetV3Params {
    /// Channel multiplier of the bottlenecks (LAFS: 1.0, giving 160 output
    /// channels); channels are rounded up to multiples of 8.
    #[serde(default = "default_width")]
    pub width: f64,
    /// Landmarks predicted by the landmark head (LAFS: 196); 0 for none.
    #[serde(default)]
    pub landmarks: i64,
    /// Image side, for scaling landmarks to `[0, side - 1]` (LAFS: 112).
    #[serde(default = "default_image_size")]
    pub image_size: i64,
}

fn default_width() -> f64 {
    1.0
}

fn default_image_size() -> i64 {
    112
}

impl Default for MobileNetV3Params {
    fn default() -> Self {
        MobileNetV3Params {
            width: default_width(),
            landmarks: 0,
            image_size: default_image_size(),
        }
    }
}

/// The large configuration: kernel, expansion, output channels, squeeze-
/// excitation, hard-swish (else ReLU), stride.
const LARGE: [(i64, i64, i64, bool, bool, i64); 15] = [
    (3, 16, 16, false, false, 1),
    (3, 64, 24, false, false, 2),
    (3, 72, 24, false, false, 1),
    (5, 72, 40, true, false, 2),
    (5, 120, 40, true, false, 1),
    (5, 120, 40, true, false, 1),
    (3, 240, 80, false, true, 2),
    (3, 200, 80, false, true, 1),
    (3, 184, 80, false, true, 1),
    (3, 184, 80, false, true, 1),
    (3, 480, 112, true, true, 1),
    (3, 672, 112, true, true, 1),
    (5, 672, 160, true, true, 2),
    (5, 960, 160, true, true, 1),
    (5, 960, 160, true, true, 1),
];

/// `x * relu6(x + 3) / 6`.
fn hard_swish(x: &Tensor) -> Tensor {
    x * hard_sigmoid(x)
}

/// `relu6(x + 3) / 6`.
fn hard_sigmoid(x: &Tensor) -> Tensor {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// Rounds up to a multiple of 8.
fn divisible(x: f64) -> i64 {
    ((x / 8.0).ceil() * 8.0) as i64
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, groups: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: (k - 1) / 2,
        groups,
        bias: false,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, config)
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

/// Squeeze-excitation: channel gates from the pooled map.
#[derive(Debug)]
struct SqueezeExcite {
    reduce: nn::Linear,
    expand: nn::Linear,
}

impl SqueezeExcite {
    fn new(p: nn::Path, c: i64) -> Self {
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        SqueezeExcite {
            reduce: nn::linear(&p / "0", c, c / 4, no_bias),
            expand: nn::linear(&p / "2", c / 4, c, no_bias),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let gate = x
            .mean_dim(&[2i64, 3][..], false, None)
            .apply(&self.reduce)
            .relu()
            .apply(&self.expand);
        x * hard_sigmoid(&gate).unsqueeze(-1).unsqueeze(-1)
    }
}

/// An inverted-residual bottleneck: 1x1 expansion, depthwise k x k,
/// optional squeeze-excitation, 1x1 projection; residual when shapes allow.
#[derive(Debug)]
struct Bottleneck {
    expand: (nn::Conv2D, nn::BatchNorm),
    depthwise: (nn::Conv2D, nn::BatchNorm),
    excite: Option<SqueezeExcite>,
    project: (nn::Conv2D, nn::BatchNorm),
    hard_swish: bool,
    residual: bool,
}

impl Bottleneck {
    fn new(p: nn::Path, c_in: i64, (k, exp, c_out, se, hs, stride): (i64, i64, i64, bool, bool, i64)) -> Self {
        let c = &p / "conv";
        Bottleneck {
            expand: (conv(&c / "0", c_in, exp, 1, 1, 1), bn(&c / "1", exp)),
            depthwise: (conv(&c / "3", exp, exp, k, stride, exp), bn(&c / "4", exp)),
            excite: se.then(|| SqueezeExcite::new(&c / "5" / "fc", exp)),
            project: (conv(&c / "7", exp, c_out, 1, 1, 1), bn(&c / "8", c_out)),
            hard_swish: hs,
            residual: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let act = |y: Tensor| if self.hard_swish { hard_swish(&y) } else { y.relu() };
        let y = act(x.apply(&self.expand.0).apply_t(&self.expand.1, train));
        let mut y = y.apply(&self.depthwise.0).apply_t(&self.depthwise.1, train);
        if let Some(se) = &self.excite {
            y = se.forward(&y);
        }
        let y = act(y).apply(&self.project.0).apply_t(&self.project.1, train);
        if self.residual {
            x + y
        } else {
            y
        }
    }
}

/// The MobileNetV3-large trunk, under `stn.features` (LAFS's name for its
/// landmark network), and the optional landmark head under `output_layer.1`.
#[derive(Debug)]
pub struct MobileNetV3 {
    stem: (nn::Conv2D, nn::BatchNorm),
    blocks: Vec<Bottleneck>,
    channels: i64,
    head: Option<nn::Linear>,
    landmarks: i64,
    side: i64,
}

impl MobileNetV3 {
    /// Builds the network under `vs`.
    pub fn new(vs: &nn::Path, in_channels: i64, p: &MobileNetV3Params) -> Result<Self> {
        if !(p.width > 0.0 && p.width.is_finite()) || p.landmarks < 0 || p.image_size < 2 {
            return Err(Error::msg(format!(
                "mobilenet_v3: width must be positive, landmarks >= 0 and image_size >= 2; got {}, {}, {}",
                p.width, p.landmarks, p.image_size
            )));
        }
        let f = vs / "stn" / "features";
        let stem = (conv(&f / "0" / "0", in_channels, 16, 3, 2, 1), bn(&f / "0" / "1", 16));
        let mut c_in = 16;
        let mut blocks = Vec::new();
        for (i, &(k, exp, c, se, hs, s)) in LARGE.iter().enumerate() {
            let (exp, c) = (divisible(exp as f64 * p.width), divisible(c as f64 * p.width));
            blocks.push(Bottleneck::new(&f / (i + 1).to_string(), c_in, (k, exp, c, se, hs, s)));
            c_in = c;
        }
        let head =
            (p.landmarks > 0).then(|| nn::linear(vs / "output_layer" / "1", c_in, 2 * p.landmarks, Default::default()));
        Ok(MobileNetV3 {
            stem,
            blocks,
            channels: c_in,
            head,
            landmarks: p.landmarks,
            side: p.image_size,
        })
    }

    /// The trunk's feature map `[N, C, H/32, W/32]`.
    pub fn feature_map(&self, images: &Tensor, train: bool) -> Tensor {
        let mut x = hard_swish(&images.apply(&self.stem.0).apply_t(&self.stem.1, train));
        for block in &self.blocks {
            x = block.forward(&x, train);
        }
        x
    }

    /// LAFS's landmarks `[N, L, 2]`, `(x, y)` in pixels of the
    /// `image_size` frame: each image's outputs min-max scaled to
    /// `[0, image_size - 1]`.
    pub fn predict_landmarks(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        let head = self
            .head
            .as_ref()
            .ok_or_else(|| Error::msg("mobilenet_v3 has no landmark head (set `landmarks` to the number of points)"))?;
        let pooled = self.feature_map(images, train).mean_dim(&[2i64, 3][..], false, None);
        let raw = pooled.dropout(0.5, train).apply(head);
        let (lo, hi) = (raw.amin(&[1i64][..], true), raw.amax(&[1i64][..], true));
        let scaled = (raw - &lo) / (hi - lo).clamp_min(1e-12) * (self.side - 1) as f64;
        Ok(scaled.view([-1, self.landmarks, 2]))
    }
}

impl Backbone for MobileNetV3 {
    fn outputs(&self) -> Vec<FeatureSpec> {
        vec![FeatureSpec {
            name: POOLED.to_string(),
            dim: self.channels,
        }]
    }

    fn forward(&self, images: &Tensor, train: bool) -> Result<Features> {
        let pooled = self.feature_map(images, train).mean_dim(&[2i64, 3][..], false, None);
        Ok(Features::from([(POOLED.to_string(), pooled)]))
    }

    fn landmark_predictor(&self) -> Option<&dyn LandmarkPredictor> {
        self.head.as_ref().map(|_| self as &dyn LandmarkPredictor)
    }
}

impl LandmarkPredictor for MobileNetV3 {
    fn num_landmarks(&self) -> i64 {
        self.landmarks
    }
    fn landmarks(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        self.predict_landmarks(images, train)
    }
}
