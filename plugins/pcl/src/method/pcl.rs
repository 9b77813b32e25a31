//! The `pcl` method: PCL's three optimiser steps per iteration (or one
//! combined step) on the FaceCycle encoder's face-aware and pose heads.
//!
//! 1. Reconstruction: the image and its horizontal flip, with Gaussian
//!    noise on the encoder's inputs, give face-aware codes `e_o`, `e_f` and
//!    pose codes `p_o`, `p_f`; the pose-disentangled decoder rebuilds the
//!    clean images from the four normalised sums (`e_o + p_f` is the flip,
//!    `e_f + p_o` the image, and both self pairs), L1 each; plus the
//!    orthogonal loss of `(e_o, p_o)` and `(e_f, p_f)`.
//! 2. Face-aware contrastive: InfoNCE of the projected face-aware codes of
//!    two distance crops, in-batch negatives mixed with Beta draws.
//! 3. Pose contrastive: InfoNCE of the projected pose codes of two views of
//!    the image, against augmented views of its flip, mixed likewise.
//!
//! Steps 2 and 3 are weighted by Dynamic Weight Averaging.

use std::cell::Cell;

use visage_core::backbone::{feature, Backbone, Features};
use visage_core::method::{Losses, Method, MethodContext, StepContext, ViewGroup};
use visage_core::nn::contrastive::spread;
use visage_core::scalars::Scalars;
use visage_core::tch::{Reduction, Tensor};
use visage_core::{Batch, Error, Result};

use super::contrastive::{face_loss, group_negatives, l2_normalize, pose_loss};
use super::decoder::Decoder;
use super::dwa::Dwa;
use super::mixing::Mixing;
use super::orthogonal::orthogonal_loss;
use super::params::{DecoderOutput, PclParams};
use super::projector::Projector;

/// The image channels the decoder makes.
const IMAGE_CHANNELS: i64 = 3;

/// One of PCL's optimiser steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Cross reconstructions and the orthogonal loss.
    Reconstruction,
    /// Face-aware contrastive learning on distance crops.
    Face,
    /// Pose contrastive learning with flipped negatives.
    Pose,
}

/// The method.
pub struct Pcl {
    params: PclParams,
    exp_fc: Projector,
    pose_fc: Option<Projector>,
    decoder: Option<Decoder>,
    phases: Vec<Phase>,
    dwa: Option<Dwa>,
    log: Scalars,
    /// Whether the face-aware collapse was reported (once per run).
    collapse_reported: Cell<bool>,
}

/// Below this `face/spread` the face-aware projections have collapsed:
/// every image embeds alike and the face loss sits at `ln(2B - 1)`.
const COLLAPSED_SPREAD: f64 = 0.1;

impl Pcl {
    /// Builds the projectors `exp_fc`, `pose_fc` and the `decoder` under
    /// `ctx.vs` (the official names).
    pub fn new(params: PclParams, ctx: &MethodContext<'_>) -> Result<Self> {
        params.check()?;
        let face = ctx.output_dim(&params.face_feature)?;
        let pose = ctx.output_dim(&params.pose_feature)?;
        if params.decoder && face != pose {
            return Err(Error::msg(format!(
                "pcl: the decoder reads the sum of `{}` ({face}-d) and `{}` ({pose}-d); they must have one width",
                params.face_feature, params.pose_feature
            )));
        }
        let projector = |name: &str, input: i64| {
            let hidden = params.projector_hidden.unwrap_or(input);
            Projector::new(&ctx.vs / name, input, hidden, params.projector_dim)
        };
        let exp_fc = projector("exp_fc", face);
        let pose_fc = params.pose.then(|| projector("pose_fc", pose));
        let decoder = params.decoder.then(|| {
            Decoder::new(
                &ctx.vs / "decoder",
                face,
                params.decoder_width,
                params.decoder_depth,
                IMAGE_CHANNELS,
            )
        });
        let mut phases = vec![];
        if params.decoder || params.orthogonal {
            phases.push(Phase::Reconstruction);
        }
        phases.push(Phase::Face);
        if params.pose {
            phases.push(Phase::Pose);
        }
        let tasks = if params.pose { 2 } else { 1 };
        let dwa = params.dwa.as_ref().map(|d| Dwa::new(tasks, d));
        Ok(Pcl {
            exp_fc,
            pose_fc,
            decoder,
            phases,
            dwa,
            log: ctx.log.clone(),
            collapse_reported: Cell::new(false),
            params,
        })
    }

    /// The optimiser steps of an iteration, in order (one step takes them
    /// all with `combined`).
    pub fn schedule(&self) -> &[Phase] {
        &self.phases
    }

    /// The face-aware and pose codes of `images`.
    fn codes(&self, backbone: &dyn Backbone, images: &Tensor) -> Result<(Tensor, Tensor, Features)> {
        let out = backbone.forward(images, true)?;
        let face = feature(&out, &self.params.face_feature)?.shallow_clone();
        let pose = feature(&out, &self.params.pose_feature)?.shallow_clone();
        Ok((face, pose, out))
    }

    /// Gaussian noise for the reconstruction step's two encoder inputs.
    pub fn draw_noise(&self, images: &Tensor) -> [Tensor; 2] {
        let sigma = self.params.input_noise;
        [images.randn_like() * sigma, images.randn_like() * sigma]
    }

    /// The decoder's image for `code`, on the targets' [0, 1] scale or
    /// (official) the raw tanh.
    fn decode(&self, decoder: &Decoder, code: &Tensor) -> Tensor {
        let out = decoder.forward(&l2_normalize(code, 1));
        match self.params.decoder_output {
            DecoderOutput::Unit => (out + 1.0) / 2.0,
            DecoderOutput::Tanh => out,
        }
    }

    /// Step 1 on `images` `[N, 3, H, W]` in [0, 1] with encoder-input
    /// `noise` (for the image, then for its flip): `reconstruction` (the
    /// four L1 terms) and `orthogonal`, as switched on. In the warm-up
    /// (`warm_up`), the official warm-up branch's loss: the first three L1
    /// terms only.
    pub fn reconstruction_losses(
        &self,
        backbone: &dyn Backbone,
        images: &Tensor,
        noise: &[Tensor; 2],
        warm_up: bool,
    ) -> Result<Losses> {
        let n = images.size()[0];
        let flipped = images.flip([3]);
        let noisy = Tensor::cat(&[images + &noise[0], &flipped + &noise[1]], 0);
        let (face, pose, _) = self.codes(backbone, &noisy)?;
        let (e_o, e_f) = (face.narrow(0, 0, n), face.narrow(0, n, n));
        let (p_o, p_f) = (pose.narrow(0, 0, n), pose.narrow(0, n, n));
        let mut losses = Losses::default();
        if let Some(decoder) = &self.decoder {
            let size = images.size();
            decoder.check_side(size[2], size[1])?;
            if size[2] != size[3] {
                return Err(Error::msg(format!(
                    "pcl: the decoder makes square images, the batch has {size:?}"
                )));
            }
            let l1 = |code: Tensor, target: &Tensor| self.decode(decoder, &code).l1_loss(target, Reduction::Mean);
            // The official order (it matters to the batch norms' running
            // statistics): e_o + p_f, e_f + p_o, e_o + p_o, e_f + p_f.
            let rec = l1(&e_o + &p_f, &flipped) + l1(&e_f + &p_o, images) + l1(&e_o + &p_o, images);
            // The official warm-up decodes e_f + p_f too and leaves it out
            // of the loss: it moves only the decoder's running statistics,
            // which nothing reads (the decoder is dropped after pre-training).
            let rec = match warm_up {
                true => rec,
                false => rec + l1(&e_f + &p_f, &flipped),
            };
            losses.push("reconstruction", rec);
        }
        if self.params.orthogonal && !warm_up {
            losses.push("orthogonal", orthogonal_loss(&e_o, &p_o) + orthogonal_loss(&e_f, &p_f));
        }
        Ok(losses)
    }

    /// Step 2 (unweighted) on the two distance crops `[N, 3, H, W]` each.
    /// Logs the projections' `face/spread` (collapse: 0).
    pub fn face_loss(&self, backbone: &dyn Backbone, crops: [&Tensor; 2], mixing: &Mixing) -> Result<Tensor> {
        let (face, _, _) = self.codes(backbone, &Tensor::cat(&crops, 0))?;
        let projected = self.exp_fc.forward(&face);
        let face_spread = spread(&projected);
        self.log.record("face/spread", face_spread);
        if face_spread < COLLAPSED_SPREAD && !self.collapse_reported.replace(true) {
            tracing::warn!(
                spread = face_spread,
                "pcl: the face-aware projections have collapsed (every image embeds alike; the face loss \
                 sits at ln(2B - 1) and its gradient vanishes); see plugins/pcl/README.md"
            );
        }
        Ok(face_loss(&projected, mixing, self.params.temperature))
    }

    /// Step 3 (unweighted) on two views of each image and its `K` flipped
    /// views, each `[B, 3, H, W]`. Logs the anchors' `pose/spread`.
    pub fn pose_loss(
        &self,
        backbone: &dyn Backbone,
        views: [&Tensor; 2],
        negatives: &[&Tensor],
        mixing: &Mixing,
    ) -> Result<Tensor> {
        let pose_fc = self
            .pose_fc
            .as_ref()
            .ok_or_else(|| Error::msg("pcl: the pose step runs with `pose: false`"))?;
        let b = views[0].size()[0];
        let mut all: Vec<&Tensor> = views.to_vec();
        all.extend_from_slice(negatives);
        let (_, pose, _) = self.codes(backbone, &Tensor::cat(&all, 0))?;
        // Projected apart, as the official code does (batch statistics).
        let anchors = pose_fc.forward(&pose.narrow(0, 0, 2 * b));
        self.log.record("pose/spread", spread(&anchors));
        let negs = pose_fc.forward(&pose.narrow(0, 2 * b, b * negatives.len() as i64));
        let grouped = group_negatives(&negs, b, self.params.official_negative_grouping);
        Ok(pose_loss(&anchors, &grouped, mixing, self.params.temperature))
    }

    /// The DWA weight of contrastive task `k` (0 face, 1 pose).
    fn weight(&self, k: usize) -> f64 {
        self.dwa.as_ref().map_or(1.0, |d| d.weights()[k])
    }

    /// Records the unweighted loss of task `k` and returns it weighted.
    fn weighted(&mut self, k: usize, name: &str, loss: Tensor) -> Tensor {
        let w = self.weight(k);
        if let Some(d) = self.dwa.as_mut() {
            d.observe(k, loss.double_value(&[]));
        }
        self.log.record(format!("dwa/{name}"), w);
        loss * w
    }

    /// The extra views, checked against what the method reads.
    fn extra_views<'b>(&self, batch: &'b Batch, first: usize, count: usize) -> Result<Vec<&'b Tensor>> {
        let views = batch.views.get(first..first + count).ok_or_else(|| {
            Error::msg(format!(
                "pcl: the batch has {} extra views, the method reads {} (pretrain.views)",
                batch.views.len(),
                first + count
            ))
        })?;
        Ok(views.iter().map(|v| &v.images).collect())
    }

    /// Whether training step `step` is in the reconstruction-only warm-up.
    pub fn warming_up(&self, step: u64) -> bool {
        step < self.params.warmup_steps
    }

    fn run_phase(&mut self, phase: Phase, ctx: &StepContext<'_>, batch: &Batch, losses: &mut Losses) -> Result<()> {
        let (backbone, warm_up) = (ctx.backbone, self.warming_up(ctx.step));
        let device = batch.images.device();
        match phase {
            // The contrastive steps rest in the warm-up: no terms, no update.
            Phase::Face | Phase::Pose if warm_up => {}
            Phase::Reconstruction => {
                let noise = self.draw_noise(&batch.images);
                for (name, term) in self.reconstruction_losses(backbone, &batch.images, &noise, warm_up)?.0 {
                    losses.push(name, term);
                }
            }
            Phase::Face => {
                let crops = self.extra_views(batch, 0, 2)?;
                let n = 2 * crops[0].size()[0];
                let mixing = Mixing::draw(self.params.mix_negatives, n, n - 2, self.params.mix_alpha, device);
                let loss = self.face_loss(backbone, [crops[0], crops[1]], &mixing)?;
                losses.push("face", self.weighted(0, "face", loss));
            }
            Phase::Pose => {
                let k = self.params.pose_negatives;
                let all = self.extra_views(batch, 2, 2 + k)?;
                let b = all[0].size()[0];
                let b = self.params.pose_batch.map_or(b, |p| p.min(b));
                let views: Vec<Tensor> = all.iter().map(|v| v.narrow(0, 0, b)).collect();
                let refs: Vec<&Tensor> = views.iter().collect();
                let mixing = Mixing::draw(self.params.mix_negatives, b, k as i64, self.params.mix_alpha, device);
                let loss = self.pose_loss(backbone, [refs[0], refs[1]], &refs[2..], &mixing)?;
                losses.push("pose", self.weighted(1, "pose", loss));
            }
        }
        Ok(())
    }
}

impl Method for Pcl {
    fn views(&self) -> Vec<ViewGroup> {
        let mut groups = vec![
            ViewGroup::exactly("distance crop 0 (face-aware positives)", 1),
            ViewGroup::exactly("distance crop 1 (face-aware positives)", 1),
        ];
        if self.params.pose {
            groups.push(ViewGroup::exactly("two views of the image (pose positives)", 2));
            groups.push(ViewGroup::exactly(
                "views of the flipped image (pose negatives: hflip p 1 first)",
                self.params.pose_negatives,
            ));
        }
        groups
    }

    fn phases(&self) -> usize {
        if self.params.combined {
            1
        } else {
            self.phases.len()
        }
    }

    fn begin_step(&mut self, step: u64, _total: u64) -> Result<()> {
        if let Some(d) = self.dwa.as_mut() {
            d.begin_step(step);
        }
        Ok(())
    }

    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses> {
        let phases = if self.params.combined {
            self.phases.clone()
        } else {
            let phase =
                self.phases.get(ctx.phase).copied().ok_or_else(|| {
                    Error::msg(format!("pcl: phase {} of {} asked for", ctx.phase, self.phases.len()))
                })?;
            vec![phase]
        };
        let mut losses = Losses::default();
        for phase in phases {
            self.run_phase(phase, ctx, batch, &mut losses)?;
        }
        Ok(losses)
    }

    fn state(&self) -> Result<serde_json::Value> {
        serde_json::to_value(&self.dwa).map_err(|e| Error::msg(format!("pcl: cannot save the DWA state: {e}")))
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        if state.is_null() && self.dwa.is_none() {
            return Ok(());
        }
        self.dwa = serde_json::from_value(state).map_err(|e| {
            Error::msg(format!(
                "pcl: the checkpoint's method state is not PCL's DWA state: {e}"
            ))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facecycle::{FaceCycle, FaceCycleParams};
    use visage_core::method::ViewCount;
    use visage_core::tch::{nn, Device, Kind};
    use visage_core::teacher::{BackboneSpec, Teachers};
    use visage_core::Registry;

    /// A width-4 FaceCycle at 32x32 and a small `pcl` (decoder depth 5),
    /// its parameters then changed by `edit`.
    fn build(edit: impl FnOnce(&mut PclParams)) -> (nn::VarStore, FaceCycle, Pcl) {
        let vs = nn::VarStore::new(Device::Cpu);
        let fc = FaceCycleParams {
            width: 4,
            image_size: 32,
        };
        let backbone = FaceCycle::new(&(vs.root() / "backbone"), 3, &fc).unwrap();
        let registry = Registry::new();
        let spec = BackboneSpec {
            name: "facecycle".into(),
            params: serde_json::Value::Null,
        };
        let teachers = Teachers::new(&registry, &vs, spec, "backbone", 3);
        let ctx = MethodContext {
            vs: vs.root() / "method",
            backbone_outputs: backbone.outputs(),
            views: vec![],
            teachers: &teachers,
            log: Scalars::default(),
        };
        let mut params = PclParams {
            projector_dim: 8,
            decoder_width: 16,
            decoder_depth: 5,
            pose_negatives: 2,
            ..PclParams::default()
        };
        edit(&mut params);
        let pcl = Pcl::new(params, &ctx).unwrap();
        drop(ctx);
        drop(teachers);
        (vs, backbone, pcl)
    }

    fn batch(n: i64, views: usize) -> Batch {
        let images = || Tensor::rand([n, 3, 32, 32], (Kind::Float, Device::Cpu));
        let view = || Batch {
            images: images(),
            labels: Default::default(),
            views: vec![],
        };
        Batch {
            images: images(),
            labels: Default::default(),
            views: (0..views).map(|_| view()).collect(),
        }
    }

    #[test]
    fn phases_and_views_follow_the_switches() {
        let (_, _, pcl) = build(|_| {});
        assert_eq!(pcl.schedule(), &[Phase::Reconstruction, Phase::Face, Phase::Pose]);
        assert_eq!(pcl.phases(), 3);
        let counts: Vec<ViewCount> = pcl.views().iter().map(|g| g.count).collect();
        let exactly = ViewCount::Exactly;
        assert_eq!(counts, vec![exactly(1), exactly(1), exactly(2), exactly(2)]);

        let (vs, _, pcl) = build(|p| {
            p.decoder = false;
            p.orthogonal = false;
            p.pose = false;
        });
        assert_eq!(pcl.schedule(), &[Phase::Face]);
        assert_eq!(pcl.views().len(), 2);
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(
            names.iter().all(|n| !n.contains("decoder") && !n.contains("pose_fc")),
            "{names:?}"
        );

        let (_, _, pcl) = build(|p| p.combined = true);
        assert_eq!(pcl.phases(), 1);
    }

    #[test]
    fn a_combined_step_returns_every_term_and_dwa_state_round_trips() {
        let (_, backbone, mut pcl) = build(|p| {
            p.combined = true;
            p.pose_batch = Some(3);
            p.dwa = Some(super::super::params::DwaParams {
                temperature: 2.0,
                period: 1,
            });
        });
        let b = batch(4, 6);
        for step in 0..3 {
            pcl.begin_step(step, 3).unwrap();
            let ctx = StepContext {
                backbone: &backbone,
                step,
                total: 3,
                phase: 0,
            };
            let losses = pcl.training_step(&ctx, &b).unwrap();
            let names: Vec<&str> = losses.0.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, vec!["reconstruction", "orthogonal", "face", "pose"]);
            assert!(losses.total().unwrap().double_value(&[]).is_finite());
            // The collapse monitors of both projections, logged with DWA's weights.
            let logged = pcl.log.take();
            for name in ["face/spread", "pose/spread"] {
                let v = logged.get(name).copied().unwrap_or(f64::NAN);
                assert!(v > 0.0 && v < 2.0, "{name}: {v} in {logged:?}");
            }
        }
        // Period 2 weighs with periods 0 and 1: weights sum to 2.
        let w: f64 = (0..2).map(|k| pcl.weight(k)).sum();
        assert!((w - 2.0).abs() < 1e-9 && pcl.weight(0) != 1.0, "{w}");
        let state = pcl.state().unwrap();
        let (_, _, mut other) = build(|_| {});
        other.load_state(state.clone()).unwrap();
        assert_eq!(other.state().unwrap(), state);

        let err = pcl.training_step(
            &StepContext {
                backbone: &backbone,
                step: 3,
                total: 3,
                phase: 0,
            },
            &batch(4, 2),
        );
        assert!(err.unwrap_err().to_string().contains("the batch has 2 extra views"));
    }

    #[test]
    fn identical_faces_read_as_a_collapse_and_are_reported_once() {
        let (_, backbone, pcl) = build(|_| {});
        let one = Tensor::rand([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let crops = one.expand([4, 3, 32, 32], false).contiguous();
        let mixing = Mixing::none(8, 6, Device::Cpu);
        let fresh = Tensor::rand([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let healthy = pcl.face_loss(&backbone, [&fresh, &fresh.flip([3])], &mixing).unwrap();
        assert!(healthy.double_value(&[]).is_finite());
        assert!(!pcl.collapse_reported.get(), "{:?}", pcl.log.take());
        // Every logit alike: the loss of 8 anchors with 6 negatives is ln 7.
        let collapsed = pcl.face_loss(&backbone, [&crops, &crops], &mixing).unwrap();
        assert!((collapsed.double_value(&[]) - 7f64.ln()).abs() < 1e-4, "{collapsed}");
        let logged = pcl.log.take();
        assert!(logged["face/spread"] < COLLAPSED_SPREAD, "{logged:?}");
        assert!(pcl.collapse_reported.get());
    }

    #[test]
    fn the_warm_up_reconstructs_three_ways_and_rests_the_contrastive_steps() {
        let (_, backbone, mut pcl) = build(|p| p.warmup_steps = 2);
        let b = batch(4, 6);
        let step = |pcl: &mut Pcl, step: u64, phase: usize| {
            pcl.begin_step(step, 4).unwrap();
            let ctx = StepContext {
                backbone: &backbone,
                step,
                total: 4,
                phase,
            };
            let losses = pcl.training_step(&ctx, &b).unwrap();
            losses.0.into_iter().map(|(n, _)| n).collect::<Vec<_>>()
        };
        assert_eq!(step(&mut pcl, 1, 0), vec!["reconstruction"]);
        assert!(step(&mut pcl, 1, 1).is_empty() && step(&mut pcl, 1, 2).is_empty());
        assert_eq!(step(&mut pcl, 2, 0), vec!["reconstruction", "orthogonal"]);
        assert_eq!(step(&mut pcl, 2, 1), vec!["face"]);
        assert_eq!(step(&mut pcl, 2, 2), vec!["pose"]);
        // The warm-up's loss is the full one less the L1 of D(n(e_f + p_f)).
        let x = &b.images;
        let noise = pcl.draw_noise(x);
        let term = |warm_up| {
            let losses = pcl.reconstruction_losses(&backbone, x, &noise, warm_up).unwrap();
            losses.0[0].1.double_value(&[])
        };
        let flipped = x.flip([3]);
        let noisy = Tensor::cat(&[x + &noise[0], &flipped + &noise[1]], 0);
        let (face, pose, _) = pcl.codes(&backbone, &noisy).unwrap();
        let fourth = pcl
            .decode(
                pcl.decoder.as_ref().unwrap(),
                &(face.narrow(0, 4, 4) + pose.narrow(0, 4, 4)),
            )
            .l1_loss(&flipped, Reduction::Mean)
            .double_value(&[]);
        assert!(
            (term(false) - term(true) - fourth).abs() < 1e-5,
            "{} {} {fourth}",
            term(false),
            term(true)
        );

        let no_decoder = PclParams {
            decoder: false,
            warmup_steps: 1,
            ..PclParams::default()
        };
        assert!(no_decoder.check().unwrap_err().to_string().contains("warmup_steps"));
    }

    #[test]
    fn a_decoder_of_the_wrong_size_is_refused() {
        let (_, backbone, pcl) = build(|p| p.decoder_depth = 6);
        let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let err = pcl
            .reconstruction_losses(&backbone, &x, &pcl.draw_noise(&x), false)
            .unwrap_err();
        assert!(err.to_string().contains("decoder_depth"), "{err}");
    }
}
