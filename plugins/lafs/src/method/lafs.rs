//! The `lafs` method: DINO (Caron et al., 2021) on the fViT with landmark
//! tokens (Sun et al., CVPR 2024). The student (backbone and
//! [`DinoHead`]) sees 2 global views with every point and N local views with
//! a random subset of them; the teacher, an EMA copy of both kept by the
//! context's teachers at the `momentum` schedule, sees the global views;
//! [`DinoLoss`] compares them with centring and temperatures.
//!
//! Tokens are sampled through the backbone's
//! [`PointTokens`](visage_core::backbone::PointTokens) capability at
//! each view's points ([`PointSource`]), jittered, and subsampled for local
//! views; teacher and student read the same points of a view, as in LAFS,
//! where the same patch embeddings go to both.

use tch::Tensor;
use visage_core::backbone::{feature, Backbone};
use visage_core::labels::LANDMARKS;
use visage_core::method::{Losses, Method, MethodContext, StepContext, ViewGroup};
use visage_core::scalars::Scalars;
use visage_core::teacher::{Teacher, TeacherSource};
use visage_core::{Batch, Error, Result};

use super::head::DinoHead;
use super::loss::DinoLoss;
use super::params::LafsParams;
use super::points::{grid_points, jitter, subset, PointSource};

/// Global views LAFS (and DINO) uses.
pub const GLOBAL_VIEWS: usize = 2;

/// The method.
pub struct Lafs {
    params: LafsParams,
    head: DinoHead,
    teacher: Teacher,
    /// The external landmark network of `points: {external: ...}`.
    landmarks: Option<Teacher>,
    teacher_head: DinoHead,
    loss: DinoLoss,
    local_views: usize,
    teacher_temperature: f64,
    freeze_last_layer: bool,
    log: Scalars,
}

impl Lafs {
    /// Builds the heads and asks the teachers for the momentum copies of
    /// the backbone (`teacher`) and of the head (`head`).
    pub fn new(params: LafsParams, ctx: &MethodContext<'_>) -> Result<Self> {
        params.check()?;
        let dim = ctx.output_dim(&params.feature)?;
        let head = DinoHead::new(&(&ctx.vs / "head"), dim, &params.head)?;
        let teacher_head = DinoHead::new(&(&ctx.vs / "teacher_head"), dim, &params.head)?;
        ctx.teachers.follow(
            "head",
            &(&ctx.vs / "head"),
            &(&ctx.vs / "teacher_head"),
            params.momentum.clone(),
        )?;
        let teacher = ctx.teachers.momentum_backbone("teacher", params.momentum.clone())?;
        if params.points != PointSource::Backbone {
            teacher.backbone().tokens_at_points()?;
        }
        let landmarks = match &params.points {
            PointSource::External(source) => Some(external_landmarks(ctx, source)?),
            _ => None,
        };
        let loss = DinoLoss::new(
            params.head.out_dim,
            params.student_temperature,
            params.center_momentum,
            ctx.vs.device(),
        )?;
        Ok(Lafs {
            head,
            teacher,
            landmarks,
            teacher_head,
            loss,
            local_views: ctx.views.get(1).copied().unwrap_or(0),
            teacher_temperature: params.teacher_temperature.value(0, 1),
            freeze_last_layer: params.freeze_last_layer_steps > 0,
            log: ctx.log.clone(),
            params,
        })
    }

    /// The points `[N, K, 2]` of view `v` of `batch`, jittered, and
    /// subsampled when `local`; `None` for `points: backbone`.
    pub fn view_points(&self, backbone: &dyn Backbone, view: &Batch, v: usize, local: bool) -> Result<Option<Tensor>> {
        let points = match &self.params.points {
            PointSource::Backbone => return Ok(None),
            PointSource::GroundTruth => view.labels.get(LANDMARKS).map(|p| p.shallow_clone()).ok_or_else(|| {
                let labels: Vec<&str> = view.labels.keys().map(String::as_str).collect();
                Error::msg(format!(
                    "lafs: points `ground_truth` needs the dataset's `{LANDMARKS}` label in every view; view {v} \
                     has [{}] (use a dataset with landmarks, or `points: network`)",
                    labels.join(", ")
                ))
            })?,
            PointSource::Network => backbone.landmark_network()?.landmarks(&view.images, false)?.detach(),
            PointSource::External(_) => {
                let network = self
                    .landmarks
                    .as_ref()
                    .ok_or_else(|| Error::msg("lafs: the external landmark network was not built"))?;
                network
                    .backbone()
                    .landmark_network()?
                    .landmarks(&view.images, false)?
                    .detach()
            }
            PointSource::Grid => {
                let s = view.images.size();
                grid_points(s[0], s[2], s[3], self.params.grid_patch, view.images.device())?
            }
        };
        let points = jitter(&points.to_kind(tch::Kind::Float), self.params.jitter);
        if local && self.params.local_subset {
            subset(&points, self.params.local_tokens, self.params.subset_with_replacement).map(Some)
        } else {
            Ok(Some(points))
        }
    }

    /// Images and points of `views` stacked along the batch, when they
    /// share their shapes; one entry per view otherwise.
    fn stacks(
        &self,
        backbone: &dyn Backbone,
        views: &[Batch],
        first: usize,
        local: bool,
    ) -> Result<Vec<(Tensor, Option<Tensor>)>> {
        let mut each = vec![];
        for (i, view) in views.iter().enumerate() {
            each.push((
                view.images.shallow_clone(),
                self.view_points(backbone, view, first + i, local)?,
            ));
        }
        let size = |points: &Option<Tensor>| points.as_ref().map(Tensor::size);
        let same = each
            .windows(2)
            .all(|w| w[0].0.size() == w[1].0.size() && size(&w[0].1) == size(&w[1].1));
        if !same || each.len() < 2 {
            return Ok(each);
        }
        let images: Vec<Tensor> = each.iter().map(|e| e.0.shallow_clone()).collect();
        let points: Option<Vec<Tensor>> = each.iter().map(|e| e.1.as_ref().map(Tensor::shallow_clone)).collect();
        Ok(vec![(Tensor::cat(&images, 0), points.map(|p| Tensor::cat(&p, 0)))])
    }

    /// The backbone's `feature` of the stacked views, concatenated: its
    /// tokens at the views' points, or its own forward without points.
    fn features(&self, backbone: &dyn Backbone, stacks: &[(Tensor, Option<Tensor>)], train: bool) -> Result<Tensor> {
        let mut out = vec![];
        for (images, points) in stacks {
            let features = match points {
                Some(points) => backbone.tokens_at_points()?.forward_at(images, points, train)?,
                None => backbone.forward(images, train)?,
            };
            out.push(feature(&features, &self.params.feature)?.shallow_clone());
        }
        Ok(Tensor::cat(&out, 0))
    }

    /// The current teacher temperature.
    pub fn teacher_temperature(&self) -> f64 {
        self.teacher_temperature
    }

    /// The DINO loss's centre `[1, K]`.
    pub fn center(&self) -> &Tensor {
        self.loss.center()
    }
}

/// The frozen external landmark network of `points: {external: source}`
/// (the teacher `landmarks`), refused unless it predicts landmarks.
fn external_landmarks(ctx: &MethodContext<'_>, source: &TeacherSource) -> Result<Teacher> {
    let network = ctx.teachers.frozen_backbone("landmarks", source)?;
    let Some(predictor) = network.backbone().landmark_predictor() else {
        return Err(Error::msg(
            "lafs.points.external: the backbone has no landmark predictor (use fvit, or mobilenet_v3 \
             with `landmarks`)",
        ));
    };
    tracing::info!(
        landmarks = predictor.num_landmarks(),
        "lafs: points from an external, frozen landmark network"
    );
    Ok(network)
}

impl Method for Lafs {
    fn views(&self) -> Vec<ViewGroup> {
        let mut groups = vec![ViewGroup::exactly("global crops", GLOBAL_VIEWS)];
        if self.local_views > 0 {
            groups.push(ViewGroup::at_least("local crops", 1));
        }
        groups
    }

    fn begin_step(&mut self, step: u64, total: u64) -> Result<()> {
        self.teacher_temperature = self.params.teacher_temperature.value(step, total);
        self.freeze_last_layer = step < self.params.freeze_last_layer_steps;
        self.log.record("temperature/teacher", self.teacher_temperature);
        Ok(())
    }

    fn training_step(&mut self, ctx: &StepContext<'_>, batch: &Batch) -> Result<Losses> {
        if batch.views.len() != GLOBAL_VIEWS + self.local_views {
            return Err(Error::msg(format!(
                "lafs: expected {GLOBAL_VIEWS} global and {} local views, the batch has {} views",
                self.local_views,
                batch.views.len()
            )));
        }
        let n = batch.views[0].images.size()[0];
        let (globals, locals) = batch.views.split_at(GLOBAL_VIEWS);
        let global = self.stacks(ctx.backbone, globals, 0, false)?;
        let mut student = vec![self.features(ctx.backbone, &global, true)?];
        if !locals.is_empty() {
            let local = self.stacks(ctx.backbone, locals, GLOBAL_VIEWS, true)?;
            student.push(self.features(ctx.backbone, &local, true)?);
        }
        let student = self.head.forward(&Tensor::cat(&student, 0), self.freeze_last_layer);
        let teacher = tch::no_grad(|| -> Result<Tensor> {
            let z = self.features(self.teacher.backbone(), &global, false)?;
            Ok(self.teacher_head.forward(&z, false))
        })?;
        let student = student.split(n, 0);
        let teacher = teacher.split(n, 0);
        let mut losses = Losses::default();
        losses.push("dino", self.loss.loss(&student, &teacher, self.teacher_temperature)?);
        Ok(losses)
    }

    fn end_step(&mut self, _step: u64, _total: u64) -> Result<()> {
        self.loss.update_center();
        let norm = self.loss.center().norm().double_value(&[]);
        self.log.record("dino/center_norm", norm);
        if let Some(d) = self.loss.last_diagnostics() {
            self.log.record("dino/teacher_entropy", d.entropy);
            self.log.record("dino/teacher_spread", d.spread);
        }
        Ok(())
    }

    fn state(&self) -> Result<serde_json::Value> {
        let center: Vec<f32> = self.loss.center().view([-1]).try_into()?;
        Ok(serde_json::json!({ "center": center }))
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        let center: Vec<f32> = serde_json::from_value(state["center"].clone()).map_err(|e| {
            Error::msg(format!(
                "lafs: the checkpoint's method state has no DINO centre (`center`): {e}"
            ))
        })?;
        let len = center.len() as i64;
        self.loss.set_center(Tensor::from_slice(&center).view([1, len]))
    }
}
