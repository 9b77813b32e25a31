//! Are the labels learnable from the pixels, and not from a shortcut?
//!
//! Three predictors are scored on held-out pictures of the same identities:
//! - a small CNN trained on all labels at once (supervised);
//! - linear heads on the frozen features of the same CNN at random init
//!   (a linear probe on random features);
//! - the best constant (majority class, median pose, mean shape, "always
//!   on" for every AU, the per-pixel majority class).
//!
//! If the labels are honest, the supervised CNN wins clearly on every label
//! and the two baselines stay far behind. `tests.rs` runs a small version;
//! `cargo run --release -p visage-plugin-synthface --example learnability`
//! runs the full one that the README reports.
//!
//! Three choices matter, and they are the field's usual ones (`balance`):
//! the landmark head predicts offsets from the training split's mean shape
//! (a head that has to move its bias from 0 to the image centre learns
//! nothing else in a few hundred Adam steps); AU positives are weighted
//! negatives / positives in the binary cross-entropy, so that a logit of 0
//! is a balanced decision; parsing classes are weighted by median
//! frequency. The CNN and the probe are trained alike.

mod net;

use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use visage_core::dataset::Split;
use visage_core::labels::{AU_NAMES, IBUG68, LAPA_CLASSES};
use visage_core::Result;
use visage_tasks::metrics::{alignment, au, classification, parsing, pose};

use crate::params::SynthFaceParams;
use crate::render::render;
use net::{Balance, Heads, Outputs, Trunk};

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
    /// Mean ROC AUC over the action units, percent (50 for any constant).
    pub au_auc: f64,
    /// Mean absolute pose error over yaw, pitch and roll, degrees.
    pub pose_mae: f64,
    /// Landmark NME over visible points, normalised by the landmark box
    /// size `sqrt(w h)`, percent.
    pub nme: f64,
    /// Closed-set identity accuracy, percent.
    pub identity: f64,
    /// Face-parsing F1 over the foreground classes, accumulated over the
    /// test set, percent.
    pub parsing_f1: f64,
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
pub(crate) struct Data {
    images: Tensor,
    expression: Tensor,
    au: Tensor,
    pose: Tensor,
    landmarks: Tensor,
    visible: Tensor,
    identity: Tensor,
    parsing: Tensor,
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
            parsing: pick(&self.parsing),
        }
    }

    fn len(&self) -> i64 {
        self.images.size()[0]
    }

    /// Consecutive batches of at most `size`, in order.
    fn batches(&self, size: i64) -> impl Iterator<Item = Data> + '_ {
        (0..self.len()).step_by(size as usize).map(move |start| {
            self.subset(&Tensor::arange_start(
                start,
                (start + size).min(self.len()),
                (Kind::Int64, Device::Cpu),
            ))
        })
    }
}

/// The generator's parameters for a run.
fn generator(config: &Config) -> SynthFaceParams {
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
    params
}

/// Renders every picture and splits each identity's into train and test.
fn data(config: &Config) -> Result<(Data, Data)> {
    let params = generator(config);
    let n = config.identities * config.samples_per_identity;
    let faces = (0..n)
        .map(|i| render(&params, config.seed, Split::Train, i))
        .collect::<Result<Vec<_>>>()?;
    let (count, side) = (n as i64, config.resolution as i64);
    let floats = |f: &dyn Fn(&crate::render::Face) -> Vec<f32>| -> Vec<f32> { faces.iter().flat_map(f).collect() };
    let ints = |f: &dyn Fn(&crate::render::Face) -> i64| -> Tensor {
        Tensor::from_slice(&faces.iter().map(f).collect::<Vec<_>>())
    };
    let all = Data {
        images: Tensor::from_slice(&floats(&|f| f.image.clone())).view([count, 3, side, side]),
        expression: ints(&|f| f.expression as i64),
        au: Tensor::from_slice(&floats(&|f| f.au().to_vec())).view([count, AU_NAMES.len() as i64]),
        pose: Tensor::from_slice(&floats(&|f| {
            vec![f.pose.yaw as f32, f.pose.pitch as f32, f.pose.roll as f32]
        }))
        .view([count, 3]),
        landmarks: Tensor::from_slice(&floats(&|f| f.landmarks.iter().flatten().copied().collect())).view([
            count,
            IBUG68 as i64,
            2,
        ]),
        visible: Tensor::from_slice(&floats(&|f| f.visible.iter().map(|&v| v as u8 as f32).collect()))
            .view([count, IBUG68 as i64]),
        identity: ints(&|f| f.identity as i64),
        parsing: Tensor::from_slice(
            &faces
                .iter()
                .flat_map(|f| f.parsing.iter().map(|&c| c as i64))
                .collect::<Vec<_>>(),
        )
        .view([count, side, side]),
    };
    let held_out = |i: usize| i % config.samples_per_identity >= config.samples_per_identity * 4 / 5;
    let train: Vec<i64> = (0..n).filter(|&i| !held_out(i)).map(|i| i as i64).collect();
    let test: Vec<i64> = (0..n).filter(|&i| held_out(i)).map(|i| i as i64).collect();
    Ok((
        all.subset(&Tensor::from_slice(&train)),
        all.subset(&Tensor::from_slice(&test)),
    ))
}

/// A predictor's outputs on the held-out pictures, as the metrics read
/// them.
struct Predictions {
    /// Class indices `[N]`.
    expression: Tensor,
    /// Probabilities `[N, K]`.
    au: Tensor,
    /// Degrees `[N, 3]`.
    pose: Tensor,
    /// Pixels `[N, 68, 2]`.
    landmarks: Tensor,
    /// Class indices `[N]`.
    identity: Tensor,
    /// Class maps `[N, H, W]`.
    parsing: Tensor,
}

/// The scores of `p` on `test`, with the task metrics of visage-tasks.
fn score(p: &Predictions, test: &Data) -> Result<Scores> {
    let au_names: Vec<String> = AU_NAMES.iter().map(|s| s.to_string()).collect();
    let au_f1 = au::f1_per_au(&p.au, &test.au, 0.5)?;
    let units = alignment::box_size(&alignment::landmark_boxes(&test.landmarks)?)?;
    let nme = alignment::nme_per_image(&p.landmarks, &test.landmarks, &units, Some(&test.visible))?;
    let classes = LAPA_CLASSES.len() as i64;
    let mut confusion = parsing::empty(classes);
    parsing::accumulate(&p.parsing, &test.parsing, classes, &mut confusion)?;
    Ok(Scores {
        expression: classification::accuracy(&p.expression, &test.expression)?,
        au_f1: au_f1.iter().sum::<f64>() / au_f1.len() as f64,
        au_auc: au::mean_auc(&p.au, &test.au, &au_names)?,
        pose_mae: pose::mae(&p.pose, &test.pose)?.mean,
        nme: alignment::nme(&nme),
        identity: classification::accuracy(&p.identity, &test.identity)?,
        parsing_f1: parsing::scores(&confusion)?.fg_mean,
    })
}

/// The best constant predictor, fitted on `train`, scored on `test`.
fn constant(train: &Data, test: &Data) -> Result<Scores> {
    let majority = |t: &Tensor| t.bincount::<Tensor>(None, 0).argmax(0, false);
    let n = test.len();
    // The most frequent class of every pixel over the train split.
    let classes = LAPA_CLASSES.len() as i64;
    let pixel_majority = train
        .parsing
        .one_hot(classes)
        .sum_dim_intlist(0, true, Kind::Int64)
        .argmax(-1, false)
        .expand_as(&test.parsing);
    let predictions = Predictions {
        expression: majority(&train.expression).expand([n], true),
        // "Always on" scores 2p / (1 + p) per AU ("never" scores 0); a
        // constant score ranks nothing, so its ROC AUC is 50.
        au: Tensor::ones_like(&test.au),
        pose: train.pose.median_dim(0, true).0.expand([n, 3], true),
        landmarks: train
            .landmarks
            .mean_dim(0, true, Kind::Float)
            .expand([n, IBUG68 as i64, 2], true),
        identity: majority(&train.identity).expand([n], true),
        parsing: pixel_majority,
    };
    score(&predictions, test)
}

/// The training split's statistics for the heads: mean shape, and weights
/// that keep rare parsing classes and rare AUs from being ignored.
fn balance(train: &Data) -> Balance {
    // Median-frequency balancing (Eigen and Fergus, 2015): class `c` weighs
    // `median(freq) / freq(c)`, so eyes and brows (0.2% of the pixels each)
    // are not drowned by the background.
    let classes = LAPA_CLASSES.len() as i64;
    let freq = train
        .parsing
        .flatten(0, -1)
        .bincount::<Tensor>(None, classes)
        .to_kind(Kind::Float)
        .clamp_min(1.0);
    let positives = train.au.sum_dim_intlist(0, false, Kind::Float).clamp_min(1.0);
    Balance {
        mean_shape: train.landmarks.mean_dim(0, true, Kind::Float),
        parsing_class_weights: freq.median() / freq,
        au_pos_weight: (train.len() as f64 - &positives) / positives,
    }
}

/// The heads' outputs on `d` in evaluation mode, batch by batch, with the
/// parsing logits reduced to class maps.
fn predict(trunk: &Trunk, heads: &Heads, d: &Data) -> Outputs {
    tch::no_grad(|| {
        let outputs: Vec<Outputs> = d
            .batches(128)
            .map(|b| {
                let mut o = heads.forward(&trunk.forward(&b.images, false));
                o.parsing = o.parsing.argmax(1, false);
                o
            })
            .collect();
        let cat = |f: &dyn Fn(&Outputs) -> &Tensor| Tensor::cat(&outputs.iter().map(f).collect::<Vec<_>>(), 0);
        Outputs {
            expression: cat(&|o| &o.expression),
            au: cat(&|o| &o.au),
            pose: cat(&|o| &o.pose),
            landmarks: cat(&|o| &o.landmarks),
            identity: cat(&|o| &o.identity),
            parsing: cat(&|o| &o.parsing),
        }
    })
}

/// Sets the batch-norm statistics of a random trunk from the training
/// pictures (forward passes in training mode, no gradients), so that the
/// probe reads normalised random features rather than the activations of
/// init-time statistics, which shrink or blow up with depth.
fn recalibrate_batch_norm(trunk: &Trunk, train: &Data) {
    tch::no_grad(|| {
        for _ in 0..2 {
            for b in train.batches(64) {
                trunk.forward(&b.images, true);
            }
        }
    });
}

/// Trains the heads (and the trunk when `train_trunk`; otherwise they are a
/// linear probe of the frozen random trunk) with Adam, then scores them on
/// `test`.
fn fit(config: &Config, train: &Data, test: &Data, train_trunk: bool) -> Result<Scores> {
    tch::manual_seed(config.seed as i64);
    let trunk_vs = nn::VarStore::new(Device::Cpu);
    let heads_vs = nn::VarStore::new(Device::Cpu);
    let trunk = Trunk::new(&trunk_vs.root(), config.width);
    let side = config.resolution as f64;
    let heads = Heads::new(
        &heads_vs.root(),
        config.width,
        config.identities as i64,
        side,
        balance(train),
    );
    if !train_trunk {
        recalibrate_batch_norm(&trunk, train);
    }
    let mut opt = nn::Adam::default().build(&heads_vs, 1e-3).expect("adam");
    let mut trunk_opt = nn::Adam::default().build(&trunk_vs, 1e-3).expect("adam");
    let batch = 64;
    for epoch in 0..config.epochs {
        let order = Tensor::randperm(train.len(), (Kind::Int64, Device::Cpu));
        let lr = 1e-3 * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / config.epochs as f64).cos());
        opt.set_lr(lr);
        trunk_opt.set_lr(lr);
        for start in (0..train.len()).step_by(batch) {
            let index = order.narrow(0, start, batch.min((train.len() - start) as usize) as i64);
            let d = train.subset(&index);
            let features = if train_trunk {
                trunk.forward(&d.images, true)
            } else {
                tch::no_grad(|| trunk.forward(&d.images, false))
            };
            let loss = heads.loss(&heads.forward(&features), &d);
            opt.zero_grad();
            trunk_opt.zero_grad();
            loss.backward();
            opt.step();
            if train_trunk {
                trunk_opt.step();
            }
        }
    }
    let o = predict(&trunk, &heads, test);
    let predictions = Predictions {
        expression: o.expression.argmax(1, false),
        au: o.au.sigmoid(),
        pose: o.pose,
        landmarks: o.landmarks,
        identity: o.identity.argmax(1, false),
        parsing: o.parsing,
    };
    score(&predictions, test)
}

/// Renders the data and scores the three predictors.
pub fn measure(config: &Config) -> Result<Report> {
    let (train, test) = data(config)?;
    tracing::info!(train = train.len(), test = test.len(), "learnability data rendered");
    Ok(Report {
        supervised: fit(config, &train, &test, true)?,
        random_probe: fit(config, &train, &test, false)?,
        constant: constant(&train, &test)?,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "| predictor | expression acc % | AU F1 % | AU AUC % | pose MAE deg | NME % | identity acc % | parsing F1 % |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|")?;
        for (name, s) in [
            ("supervised CNN", self.supervised),
            ("linear probe, random-init CNN", self.random_probe),
            ("best constant", self.constant),
        ] {
            writeln!(
                f,
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                s.expression, s.au_f1, s.au_auc, s.pose_mae, s.nme, s.identity, s.parsing_f1
            )?;
        }
        Ok(())
    }
}
