//! Are the labels learnable from the pixels, and not from a shortcut?
//!
//! Three predictors are scored on held-out pictures of the same identities:
//! - a small CNN trained on all labels at once (supervised);
//! - linear heads on the frozen features of the same CNN at random init
//!   (a linear probe on random features);
//! - the best constant (majority class, mean pose, mean shape).
//!
//! If the labels are honest, the supervised CNN wins clearly on every label
//! and the two baselines stay far behind. `tests.rs` runs a small version;
//! `cargo run --release -p visage-plugin-synthface --example learnability`
//! runs the full one that the README reports.

use tch::nn::{self, Module, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use visage_core::dataset::Split;
use visage_core::labels::{AU_NAMES, EXPRESSIONS, IBUG68};
use visage_core::Result;

use crate::params::SynthFaceParams;
use crate::render::render;

/// The size of a learnability run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Rendered identities (all in the train split of the generator).
    pub identities: usize,
    /// Pictures per identity; the last fifth of each identity's is held out.
    pub samples_per_identity: usize,
    /// Image side.
    pub resolution: usize,
    /// Channels of the CNN's first stage.
    pub width: i64,
    /// Training epochs (for the CNN and for the probe).
    pub epochs: usize,
    /// Seed of data and initialisation.
    pub seed: u64,
    /// Easy data: no nuisance, poses within +-30 (yaw) and +-20 (pitch,
    /// roll) degrees; tells the generator's faces from its nuisance.
    pub easy: bool,
}

/// Scores of one predictor on the held-out pictures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores {
    /// Expression accuracy, percent.
    pub expression: f64,
    /// Mean over AUs of per-AU F1, percent.
    pub au_f1: f64,
    /// Mean absolute pose error over yaw, pitch and roll, degrees.
    pub pose_mae: f64,
    /// Landmark NME over visible points, normalised by the landmark box
    /// size `sqrt(w h)`, percent.
    pub nme: f64,
    /// Closed-set identity accuracy, percent.
    pub identity: f64,
}

/// Scores of the three predictors.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// The CNN trained on the labels.
    pub supervised: Scores,
    /// Linear heads on the random-init CNN's features.
    pub random_probe: Scores,
    /// The best constant predictor.
    pub constant: Scores,
}

/// Images and labels of a set of pictures.
struct Data {
    images: Tensor,
    expression: Tensor,
    au: Tensor,
    pose: Tensor,
    landmarks: Tensor,
    visible: Tensor,
    identity: Tensor,
}

impl Data {
    fn subset(&self, index: &Tensor) -> Data {
        let pick = |t: &Tensor| t.index_select(0, index);
        Data {
            images: pick(&self.images),
            expression: pick(&self.expression),
            au: pick(&self.au),
            pose: pick(&self.pose),
            landmarks: pick(&self.landmarks),
            visible: pick(&self.visible),
            identity: pick(&self.identity),
        }
    }

    fn len(&self) -> i64 {
        self.images.size()[0]
    }
}

/// Renders every picture and splits each identity's into train and test.
fn data(config: &Config) -> Result<(Data, Data)> {
    let mut params = SynthFaceParams {
        // One identity is held out for the generator's test split, unused here.
        identities: config.identities + 1,
        test_identities: 1,
        samples_per_identity: config.samples_per_identity,
        resolution: config.resolution,
        ..SynthFaceParams::default()
    };
    if config.easy {
        params.nuisance = crate::params::NuisanceParams::none();
        params.pose.max_yaw = 30.0;
        params.pose.max_pitch = 20.0;
        params.pose.max_roll = 20.0;
    }
    let n = config.identities * config.samples_per_identity;
    let faces = (0..n)
        .map(|i| render(&params, config.seed, Split::Train, i))
        .collect::<Result<Vec<_>>>()?;
    let side = config.resolution as i64;
    let images: Vec<f32> = faces.iter().flat_map(|f| f.image.iter().copied()).collect();
    let floats = |f: &dyn Fn(&crate::render::Face) -> Vec<f32>| -> Vec<f32> { faces.iter().flat_map(f).collect() };
    let all = Data {
        images: Tensor::from_slice(&images).view([n as i64, 3, side, side]),
        expression: Tensor::from_slice(&faces.iter().map(|f| f.expression as i64).collect::<Vec<_>>()),
        au: Tensor::from_slice(&floats(&|f| f.au().to_vec())).view([n as i64, AU_NAMES.len() as i64]),
        pose: Tensor::from_slice(&floats(&|f| {
            vec![f.pose.yaw as f32, f.pose.pitch as f32, f.pose.roll as f32]
        }))
        .view([n as i64, 3]),
        landmarks: Tensor::from_slice(&floats(&|f| f.landmarks.iter().flatten().copied().collect())).view([
            n as i64,
            IBUG68 as i64,
            2,
        ]),
        visible: Tensor::from_slice(&floats(&|f| f.visible.iter().map(|&v| v as u8 as f32).collect()))
            .view([n as i64, IBUG68 as i64]),
        identity: Tensor::from_slice(&faces.iter().map(|f| f.identity as i64).collect::<Vec<_>>()),
    };
    let held_out = |i: usize| i % config.samples_per_identity >= config.samples_per_identity * 4 / 5;
    let train: Vec<i64> = (0..n).filter(|&i| !held_out(i)).map(|i| i as i64).collect();
    let test: Vec<i64> = (0..n).filter(|&i| held_out(i)).map(|i| i as i64).collect();
    Ok((
        all.subset(&Tensor::from_slice(&train)),
        all.subset(&Tensor::from_slice(&test)),
    ))
}

/// Four strided conv-BN-ReLU stages and a flatten.
fn trunk(vs: &nn::Path, width: i64) -> nn::SequentialT {
    let mut seq = nn::seq_t();
    let mut c_in = 3;
    for stage in 0..4 {
        let c_out = width << stage;
        let conv = nn::ConvConfig {
            stride: 2,
            padding: 1,
            bias: false,
            ..Default::default()
        };
        seq = seq
            .add(nn::conv2d(vs / format!("conv{stage}"), c_in, c_out, 3, conv))
            .add(nn::batch_norm2d(vs / format!("bn{stage}"), c_out, Default::default()))
            .add_fn(|x| x.relu());
        c_in = c_out;
    }
    seq.add_fn(|x| x.adaptive_avg_pool2d([2, 2]).flatten(1, -1))
}

/// One linear head per label on `dim` features.
struct Heads {
    expression: nn::Linear,
    au: nn::Linear,
    pose: nn::Linear,
    landmarks: nn::Linear,
    identity: nn::Linear,
}

impl Heads {
    fn new(vs: &nn::Path, dim: i64, identities: i64) -> Self {
        let l = |name: &str, out: i64| nn::linear(vs / name, dim, out, Default::default());
        Heads {
            expression: l("expression", EXPRESSIONS.len() as i64),
            au: l("au", AU_NAMES.len() as i64),
            pose: l("pose", 3),
            landmarks: l("landmarks", 2 * IBUG68 as i64),
            identity: l("identity", identities),
        }
    }

    /// The summed loss on one batch; poses are scaled by 45 degrees and
    /// landmarks by the image side so that the terms are comparable.
    fn loss(&self, features: &Tensor, d: &Data, side: f64) -> Tensor {
        let n = d.len();
        let expression = self
            .expression
            .forward(features)
            .cross_entropy_for_logits(&d.expression);
        let au = self.au.forward(features).binary_cross_entropy_with_logits::<Tensor>(
            &d.au,
            None,
            None,
            tch::Reduction::Mean,
        );
        let pose = (self.pose.forward(features) - &d.pose / 45.0).abs().mean(Kind::Float);
        let landmarks = (self.landmarks.forward(features).view([n, IBUG68 as i64, 2]) - &d.landmarks / side)
            .abs()
            .mean(Kind::Float);
        let identity = self.identity.forward(features).cross_entropy_for_logits(&d.identity);
        expression + au + pose + 10.0 * landmarks + identity
    }

    fn scores(&self, features: &Tensor, d: &Data, side: f64) -> Scores {
        let n = d.len();
        let landmarks = self.landmarks.forward(features).view([n, IBUG68 as i64, 2]) * side;
        Scores {
            expression: accuracy(&self.expression.forward(features).argmax(1, false), &d.expression),
            au_f1: mean_f1(&self.au.forward(features).gt(0.0), &d.au),
            pose_mae: (self.pose.forward(features) * 45.0 - &d.pose)
                .abs()
                .mean(Kind::Float)
                .double_value(&[]),
            nme: nme(&landmarks, d),
            identity: accuracy(&self.identity.forward(features).argmax(1, false), &d.identity),
        }
    }
}

fn accuracy(predicted: &Tensor, target: &Tensor) -> f64 {
    100.0
        * predicted
            .eq_tensor(target)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
}

/// Mean over AUs of the per-AU F1 of boolean predictions.
fn mean_f1(predicted: &Tensor, target: &Tensor) -> f64 {
    let p = predicted.to_kind(Kind::Double);
    let t = target.to_kind(Kind::Double);
    let tp = (&p * &t).sum_dim_intlist(0, false, Kind::Double);
    let (not_p, not_t): (Tensor, Tensor) = (1.0 - &p, 1.0 - &t);
    let fp = (&p * &not_t).sum_dim_intlist(0, false, Kind::Double);
    let fn_ = (&not_p * &t).sum_dim_intlist(0, false, Kind::Double);
    let f1 = (&tp * 2.0) / (&tp * 2.0 + fp + fn_).clamp_min(1e-9);
    100.0 * f1.mean(Kind::Double).double_value(&[])
}

/// NME over visible points, normalised by the size `sqrt(w h)` of the
/// ground-truth landmark box (AFLW2000's "box" NME: unlike the inter-ocular
/// distance it does not vanish at large yaw).
fn nme(predicted: &Tensor, d: &Data) -> f64 {
    let extent = d.landmarks.amax(&[1i64][..], false) - d.landmarks.amin(&[1i64][..], false);
    let ocular = (extent.select(1, 0) * extent.select(1, 1)).sqrt().clamp_min(1.0);
    let error = (predicted - &d.landmarks)
        .square()
        .sum_dim_intlist(2, false, Kind::Float)
        .sqrt();
    let per_sample = (error * &d.visible).sum_dim_intlist(1, false, Kind::Float)
        / d.visible.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
    100.0 * (per_sample / ocular).mean(Kind::Float).double_value(&[])
}

/// The best constant predictor, fitted on `train`.
fn constant(train: &Data, test: &Data) -> Scores {
    let majority = |t: &Tensor| t.bincount::<Tensor>(None, 0).argmax(0, false);
    let n = test.len();
    // Per AU, the better of "always" and "never": "always" scores 2p / (1 + p).
    let always = mean_f1(&Tensor::ones_like(&test.au).gt(0.5), &test.au);
    let never = mean_f1(&Tensor::zeros_like(&test.au).gt(0.5), &test.au);
    let mean_shape = train
        .landmarks
        .mean_dim(0, true, Kind::Float)
        .expand([n, IBUG68 as i64, 2], true);
    let median_pose = train.pose.median_dim(0, true).0;
    Scores {
        expression: accuracy(&majority(&train.expression).expand([n], true), &test.expression),
        au_f1: always.max(never),
        pose_mae: (median_pose - &test.pose).abs().mean(Kind::Float).double_value(&[]),
        nme: nme(&mean_shape, test),
        identity: accuracy(&majority(&train.identity).expand([n], true), &test.identity),
    }
}

/// Trains `heads` (and the trunk when `train_trunk`) with Adam, then scores.
fn fit(config: &Config, train: &Data, test: &Data, train_trunk: bool) -> Scores {
    tch::manual_seed(config.seed as i64);
    let trunk_vs = nn::VarStore::new(Device::Cpu);
    let heads_vs = nn::VarStore::new(Device::Cpu);
    let net = trunk(&trunk_vs.root(), config.width);
    let dim = (config.width << 3) * 4;
    let heads = Heads::new(&heads_vs.root(), dim, config.identities as i64);
    let side = config.resolution as f64;
    let mut opt = nn::Adam::default().build(&heads_vs, 1e-3).expect("adam");
    let mut trunk_opt = nn::Adam::default().build(&trunk_vs, 1e-3).expect("adam");
    let frozen = (!train_trunk).then(|| tch::no_grad(|| net.forward_t(&train.images, false)));
    let batch = 64;
    for epoch in 0..config.epochs {
        let order = Tensor::randperm(train.len(), (Kind::Int64, Device::Cpu));
        let lr = 1e-3 * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / config.epochs as f64).cos());
        opt.set_lr(lr);
        trunk_opt.set_lr(lr);
        for start in (0..train.len()).step_by(batch) {
            let index = order.narrow(0, start, batch.min((train.len() - start) as usize) as i64);
            let d = train.subset(&index);
            let features = match &frozen {
                Some(f) => f.index_select(0, &index),
                None => net.forward_t(&d.images, true),
            };
            let loss = heads.loss(&features, &d, side);
            opt.zero_grad();
            trunk_opt.zero_grad();
            loss.backward();
            opt.step();
            if train_trunk {
                trunk_opt.step();
            }
        }
    }
    let features = tch::no_grad(|| net.forward_t(&test.images, false));
    tch::no_grad(|| heads.scores(&features, test, side))
}

/// Renders the data and scores the three predictors.
pub fn measure(config: &Config) -> Result<Report> {
    let (train, test) = data(config)?;
    tracing::info!(train = train.len(), test = test.len(), "learnability data rendered");
    Ok(Report {
        supervised: fit(config, &train, &test, true),
        random_probe: fit(config, &train, &test, false),
        constant: constant(&train, &test),
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "| predictor | expression acc % | AU F1 % | pose MAE deg | NME % | identity acc % |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        for (name, s) in [
            ("supervised CNN", self.supervised),
            ("linear probe, random-init CNN", self.random_probe),
            ("best constant", self.constant),
        ] {
            writeln!(
                f,
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                s.expression, s.au_f1, s.pose_mae, s.nme, s.identity
            )?;
        }
        Ok(())
    }
}
