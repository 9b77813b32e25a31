//! The `lafs` method on a tiny fViT: its loss is DINO's loss of the head on
//! the fViT's class token at each view's landmarks, the teacher starting as
//! the student; the last layer gets no gradient while frozen; the centre
//! moves after the step and survives a checkpoint; missing landmarks are a
//! named error.

use std::collections::BTreeMap;

use lafs::method::{DinoHead, DinoHeadParams, DinoLoss, LafsParams, PointSource};
use lafs::{Fvit, FvitParams, Lafs, MobileNetV3, MobileNetV3Params};
use tch::{nn, Device, Kind, Tensor};
use visage_core::backbone::{Backbone, BackboneContext};
use visage_core::labels::LANDMARKS;
use visage_core::method::{Method, MethodContext, StepContext, ViewGroup};
use visage_core::nn::weights::{load_state_dict, variables_under};
use visage_core::scalars::Scalars;
use visage_core::teacher::{BackboneSpec, TeacherSource, Teachers};
use visage_core::{Batch, Registry};

const N: i64 = 3;

fn fvit_params() -> FvitParams {
    FvitParams {
        image_size: 32,
        patch: 4,
        landmarks: 9,
        dim: 16,
        depth: 1,
        heads: 2,
        head_dim: 8,
        mlp: 24,
        landmark_width: 0.25,
        ..Default::default()
    }
}

fn head_params() -> DinoHeadParams {
    DinoHeadParams {
        hidden: 12,
        bottleneck: 6,
        out_dim: 10,
        layers: 3,
        norm_last_layer: true,
    }
}

/// A view of `side` pixels with 9 landmarks inside it.
fn view(side: i64, landmarks: bool) -> Batch {
    let images = Tensor::rand([N, 3, side, side], (Kind::Float, Device::Cpu));
    let mut labels = BTreeMap::new();
    if landmarks {
        labels.insert(
            LANDMARKS.to_string(),
            Tensor::rand([N, 9, 2], (Kind::Float, Device::Cpu)) * (side - 1) as f64,
        );
    }
    Batch {
        images,
        labels,
        views: vec![],
    }
}

fn batch(landmarks: bool) -> Batch {
    Batch {
        images: Tensor::rand([N, 3, 32, 32], (Kind::Float, Device::Cpu)),
        labels: BTreeMap::new(),
        views: vec![
            view(32, landmarks),
            view(32, landmarks),
            view(16, landmarks),
            view(16, landmarks),
        ],
    }
}

/// The store, the student fViT, and the method built with `params`.
fn build(registry: &Registry, vs: &nn::VarStore, params: LafsParams) -> (Fvit, Lafs) {
    let backbone = Fvit::new(&(vs.root() / "backbone"), 3, &fvit_params()).unwrap();
    let spec = BackboneSpec {
        name: "fvit".into(),
        params: serde_json::to_value(fvit_params()).unwrap(),
    };
    let teachers = Teachers::new(registry, vs, spec, "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
        views: vec![2, 2],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let method = Lafs::new(params, &ctx).unwrap();
    (backbone, method)
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .backbone("fvit", |p: FvitParams, ctx| Fvit::new(&ctx.vs, ctx.in_channels, &p))
        .unwrap();
    registry
}

fn params() -> LafsParams {
    LafsParams {
        head: head_params(),
        teacher_temperature: 0.05.into(),
        jitter: 0.0,
        local_subset: false,
        freeze_last_layer_steps: 1,
        ..Default::default()
    }
}

/// DINO's loss by hand at step 0 from the class token of each view: a copy
/// of the method's head on every view, the teacher equal to the student on
/// the two global views; returns the loss and the head's outputs.
fn dino_by_hand(vs: &nn::VarStore, cls: Vec<Tensor>) -> (f64, Vec<Tensor>) {
    let copy_vs = nn::VarStore::new(Device::Cpu);
    let head = DinoHead::new(&(copy_vs.root() / "head"), 16, &head_params()).unwrap();
    let state = variables_under(vs, "method.head").into_iter().collect();
    load_state_dict(&copy_vs, "head", state, Some("")).unwrap();
    let student: Vec<Tensor> = cls.iter().map(|c| head.forward(c, false)).collect();
    let mut dino = DinoLoss::new(10, 0.1, 0.9, Device::Cpu).unwrap();
    let loss = dino.loss(&student, &student[..2], 0.05).unwrap().double_value(&[]);
    (loss, student)
}

#[test]
fn the_loss_is_dinos_on_the_class_tokens_at_the_views_landmarks() {
    tch::manual_seed(1);
    let registry = registry();
    let vs = nn::VarStore::new(Device::Cpu);
    let (backbone, mut method) = build(&registry, &vs, params());
    assert_eq!(
        method.views(),
        [
            ViewGroup::exactly("global crops", 2),
            ViewGroup::at_least("local crops", 1)
        ]
    );
    let batch = batch(true);
    method.begin_step(0, 10).unwrap();
    let ctx = StepContext {
        backbone: &backbone,
        step: 0,
        total: 10,
        phase: 0,
    };
    let losses = method.training_step(&ctx, &batch).unwrap();
    let loss = losses.total().unwrap();

    // By hand: a copy of the head, the fViT at the ground-truth landmarks of
    // each view, the teacher equal to the student at the start.
    let cls = |v: &Batch| {
        tch::no_grad(|| backbone.forward_at(&v.images, &v.labels[LANDMARKS], false).unwrap()["cls"].shallow_clone())
    };
    let (expected, student) = dino_by_hand(&vs, batch.views.iter().map(cls).collect());
    let got = loss.double_value(&[]);
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");

    // The last layer is frozen during step 0, not after.
    loss.backward();
    let vars = vs.variables();
    assert!(!vars["method.head.last_layer.weight_v"].grad().defined());
    assert!(vars["method.head.mlp.0.weight"].grad().defined());
    assert!(vars["backbone.patch_to_embedding.weight"].grad().defined());
    assert!(!vars["teachers.teacher.patch_to_embedding.weight"].requires_grad());
    assert!(!vars["method.teacher_head.mlp.0.weight"].requires_grad());
    method.begin_step(1, 10).unwrap();
    let ctx = StepContext { step: 1, ..ctx };
    method.training_step(&ctx, &batch).unwrap().total().unwrap().backward();
    assert!(vars["method.head.last_layer.weight_v"].grad().defined());

    // The centre: 0.1 times the mean teacher output of both micro-batches
    // (the same batch twice), after the step; saved and restored.
    assert_eq!(method.center().abs().sum(Kind::Float).double_value(&[]), 0.0);
    method.end_step(1, 10).unwrap();
    let mean = Tensor::cat(&student[..2], 0).mean_dim([0i64].as_slice(), true, Kind::Float) * 0.1;
    let diff = (method.center() - mean).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "centre off by {diff}");
    let saved = method.state().unwrap();
    let (_, mut other) = build(&registry, &nn::VarStore::new(Device::Cpu), params());
    other.load_state(saved).unwrap();
    assert!(other.center().equal(method.center()));
    let err = other.load_state(serde_json::Value::Null).unwrap_err().to_string();
    assert!(err.contains("no DINO centre"), "{err}");
}

#[test]
fn local_subsets_grid_and_network_points_run_and_missing_landmarks_are_named() {
    tch::manual_seed(2);
    let registry = registry();
    for points in [PointSource::GroundTruth, PointSource::Grid, PointSource::Network] {
        let is_grid = points == PointSource::Grid;
        let vs = nn::VarStore::new(Device::Cpu);
        let p = LafsParams {
            local_subset: true,
            local_tokens: 4,
            jitter: 2.0,
            points: points.clone(),
            grid_patch: 8,
            ..params()
        };
        let (backbone, mut method) = build(&registry, &vs, p);
        let batch = batch(true);
        let local = method
            .view_points(&backbone, &batch.views[2], 2, true)
            .unwrap()
            .unwrap();
        assert_eq!(local.size(), [N, 4, 2], "{points:?}");
        let global = method
            .view_points(&backbone, &batch.views[0], 0, false)
            .unwrap()
            .unwrap();
        // 9 landmarks, or the 4 x 4 grid of 8-pixel patches of a 32-pixel view.
        let k = if is_grid { 16 } else { 9 };
        assert_eq!(global.size(), [N, k, 2], "{points:?}");
        if is_grid {
            // fViT has 9 position embeddings: 16 tokens are refused by name.
            let ctx = StepContext {
                backbone: &backbone,
                step: 0,
                total: 1,
                phase: 0,
            };
            let err = method.training_step(&ctx, &batch).unwrap_err().to_string();
            assert!(err.contains("K <= 9"), "{err}");
            continue;
        }
        let ctx = StepContext {
            backbone: &backbone,
            step: 0,
            total: 1,
            phase: 0,
        };
        let loss = method.training_step(&ctx, &batch).unwrap().total().unwrap();
        assert!(loss.double_value(&[]).is_finite());
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let (backbone, mut method) = build(&registry, &vs, params());
    let ctx = StepContext {
        backbone: &backbone,
        step: 0,
        total: 1,
        phase: 0,
    };
    let err = method.training_step(&ctx, &batch(false)).unwrap_err().to_string();
    assert!(
        err.contains("needs the dataset's `landmarks` label in every view; view 0"),
        "{err}"
    );
}

/// A finished "run" in `dir`: a tiny `mobilenet_v3` with `landmarks`
/// landmarks, written as a run writes its backbone; returns the network.
fn write_run(dir: &std::path::Path, landmarks: i64) -> MobileNetV3 {
    use visage_core::teacher::{BACKBONE_JSON, BACKBONE_WEIGHTS};
    let params = MobileNetV3Params {
        width: 0.25,
        landmarks,
        image_size: 32,
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let network = MobileNetV3::new(&(vs.root() / "backbone"), 3, &params).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    visage_core::nn::weights::export_safetensors(&vs, "backbone", &dir.join(BACKBONE_WEIGHTS)).unwrap();
    let spec = BackboneSpec {
        name: "mobilenet_v3".into(),
        params: serde_json::to_value(&params).unwrap(),
    };
    std::fs::write(dir.join(BACKBONE_JSON), serde_json::to_string(&spec).unwrap()).unwrap();
    network
}

#[test]
fn an_external_landmark_network_gives_the_points_and_never_trains() {
    tch::manual_seed(5);
    let mut registry = registry();
    registry
        .backbone("mobilenet_v3", |p: MobileNetV3Params, ctx| {
            MobileNetV3::new(&ctx.vs, ctx.in_channels, &p)
        })
        .unwrap();
    let dir = std::env::temp_dir().join(format!("visage-lafs-external-{}", std::process::id()));
    let run = dir.join("landmarks");
    let other = write_run(&run, 9);
    let external = |run: &std::path::Path| LafsParams {
        points: PointSource::External(TeacherSource {
            from_run: Some(run.to_path_buf()),
            weights: None,
            backbone: None,
        }),
        ..params()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let (backbone, mut method) = build(&registry, &vs, external(&run));
    let frozen: Vec<(String, Tensor)> = variables_under(&vs, "teachers.landmarks")
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect();
    assert!(!frozen.is_empty());
    assert!(frozen
        .iter()
        .all(|(k, _)| !vs.variables()[&format!("teachers.landmarks.{k}")].requires_grad()));

    // The points (no jitter) are the run's network's, not the dataset's.
    let batch = batch(false);
    let points = method
        .view_points(&backbone, &batch.views[0], 0, false)
        .unwrap()
        .unwrap();
    let expected = tch::no_grad(|| {
        other
            .landmark_predictor()
            .unwrap()
            .landmarks(&batch.views[0].images, false)
            .unwrap()
    });
    assert_eq!(points.size(), [N, 9, 2]);
    assert!((points - expected).abs().max().double_value(&[]) < 1e-6);

    // A step trains the student, never the landmark network.
    let mut sgd = nn::OptimizerConfig::build(nn::Sgd::default(), &vs, 0.5).unwrap();
    method.begin_step(0, 2).unwrap();
    let ctx = StepContext {
        backbone: &backbone,
        step: 0,
        total: 2,
        phase: 0,
    };
    let student_before = vs.variables()["backbone.patch_to_embedding.weight"].detach().copy();
    sgd.backward_step(&method.training_step(&ctx, &batch).unwrap().total().unwrap());
    method.end_step(0, 2).unwrap();
    let vars = vs.variables();
    assert!(!vars["backbone.patch_to_embedding.weight"].equal(&student_before));
    for (name, before) in &frozen {
        assert!(
            vars[&format!("teachers.landmarks.{name}")].equal(before),
            "{name} moved"
        );
    }

    // A backbone without a landmark predictor is refused by name.
    let plain = dir.join("plain");
    write_run(&plain, 0);
    let vs = nn::VarStore::new(Device::Cpu);
    let student = Fvit::new(&(vs.root() / "backbone"), 3, &fvit_params()).unwrap();
    let spec = BackboneSpec {
        name: "fvit".into(),
        params: serde_json::to_value(fvit_params()).unwrap(),
    };
    let teachers = Teachers::new(&registry, &vs, spec, "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: student.outputs(),
        views: vec![2, 2],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let err = Lafs::new(external(&plain), &ctx).err().unwrap().to_string();
    assert!(
        err.contains("lafs.points.external: the backbone has no landmark predictor"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `points: backbone` is DINO on any backbone: on a plain ViT (no point
/// tokens) the loss is DINO's on its class token of each whole view, the
/// teacher starting as the student; LAFS's landmark augmentations are
/// refused by name there.
#[test]
fn points_backbone_is_dino_on_a_plain_vits_class_token() {
    tch::manual_seed(3);
    let mut registry = Registry::new();
    visage_core::builtin::register(&mut registry).unwrap();
    let vit = r#"{"width": 16, "depth": 1, "heads": 2, "image_size": 32, "patch": 8}"#;
    let vs = nn::VarStore::new(Device::Cpu);
    let backbone = registry
        .build_backbone(
            "vit",
            vit,
            &BackboneContext {
                vs: vs.root() / "backbone",
                in_channels: 3,
            },
        )
        .unwrap();
    assert!(backbone.point_tokens().is_none());
    let spec = BackboneSpec {
        name: "vit".into(),
        params: serde_json::from_str(vit).unwrap(),
    };
    let teachers = Teachers::new(&registry, &vs, spec, "backbone", 3);
    let ctx = MethodContext {
        vs: vs.root() / "method",
        backbone_outputs: backbone.outputs(),
        views: vec![2, 2],
        teachers: &teachers,
        log: Scalars::default(),
    };
    let refused = Lafs::new(
        LafsParams {
            points: PointSource::Backbone,
            jitter: 1.0,
            ..params()
        },
        &ctx,
    );
    let err = refused.err().expect("jitter with points: backbone").to_string();
    assert!(
        err.contains("lafs.points: `backbone`") && err.contains("jitter: 0"),
        "{err}"
    );
    let p = LafsParams {
        points: PointSource::Backbone,
        ..params()
    };
    let mut method = Lafs::new(p, &ctx).unwrap();
    // Whole views of one size, so that the ViT reads the local ones too.
    let batch = Batch {
        images: Tensor::rand([N, 3, 32, 32], (Kind::Float, Device::Cpu)),
        labels: BTreeMap::new(),
        views: (0..4).map(|_| view(32, false)).collect(),
    };
    method.begin_step(0, 10).unwrap();
    let step = StepContext {
        backbone: backbone.as_ref(),
        step: 0,
        total: 10,
        phase: 0,
    };
    let got = method
        .training_step(&step, &batch)
        .unwrap()
        .total()
        .unwrap()
        .double_value(&[]);

    let cls = |v: &Batch| tch::no_grad(|| backbone.forward(&v.images, false).unwrap()["cls"].shallow_clone());
    let (expected, _) = dino_by_hand(&vs, batch.views.iter().map(cls).collect());
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
}
