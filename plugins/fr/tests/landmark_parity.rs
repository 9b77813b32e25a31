//! LAFS's landmark-position regulariser (value and gradient) and the
//! CosFace loss of a mixup batch against PyTorch references written from
//! the paper (tests/reference/landmark_regularisation.py, run with the
//! venv's torch; ./scripts/test sets VIRTUAL_ENV), with linear "landmark
//! networks" standing in for the frozen and the fine-tuned ones.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use fr::head::{ClassifierSlot, HeadSpec};
use fr::landmark_regularisation::LandmarkRegularisationParams;
use fr::margin::MarginKind;
use tch::{Kind, Tensor};
use visage_core::backbone::{Backbone, FeatureSpec, Features, LandmarkPredictor};
use visage_core::Result;

/// The reference tensors, computed in a directory of the test `tag`
/// (tests run in parallel).
fn reference(tag: &str) -> HashMap<String, Tensor> {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    let dir = std::env::temp_dir().join(format!("visage-fr-landmarks-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/landmark_regularisation.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "landmark_regularisation.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tensors = Tensor::read_safetensors(dir.join("landmarks.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    tensors.into_iter().collect()
}

/// Points `[N, L, 2]` = the flattened image times `w` `[2L, C H W]`.
struct LinearPoints {
    w: Tensor,
}

impl Backbone for LinearPoints {
    fn outputs(&self) -> Vec<FeatureSpec> {
        vec![]
    }
    fn forward(&self, _images: &Tensor, _train: bool) -> Result<Features> {
        Ok(Features::new())
    }
    fn landmark_predictor(&self) -> Option<&dyn LandmarkPredictor> {
        Some(self)
    }
}

impl LandmarkPredictor for LinearPoints {
    fn num_landmarks(&self) -> i64 {
        self.w.size()[0] / 2
    }
    fn landmarks(&self, images: &Tensor, _train: bool) -> Result<Tensor> {
        let n = images.size()[0];
        Ok(images.flatten(1, -1).matmul(&self.w.tr()).view([n, -1, 2]))
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn the_landmark_term_and_its_gradient_match_pytorch() {
    let r = reference("term");
    let frozen = LinearPoints {
        w: r["reference_w"].shallow_clone(),
    };
    let tuned = LinearPoints {
        w: r["tuned_w"].copy().set_requires_grad(true),
    };
    // Epoch 9 is in LAFS's second stage: weight 100, as the reference.
    let params = LandmarkRegularisationParams::default();
    let term = params.term(&frozen, &tuned, &r["images"], 9).unwrap().unwrap();
    let diff = max_diff(&term.to_kind(Kind::Double).view([1]), &r["value"]);
    assert!(diff < 1e-5, "value differs by {diff}");
    term.backward();
    let diff = max_diff(&tuned.w.grad(), &r["grad"]);
    assert!(diff < 1e-5, "gradient differs by {diff}");
    assert!(!frozen.w.grad().defined(), "the reference is frozen");
    // From epoch 28 the weight is 0 and nothing is computed.
    assert!(params.term(&frozen, &tuned, &r["images"], 28).unwrap().is_none());
    // A frozen tuned network is refused.
    let err = params.term(&frozen, &frozen, &r["images"], 0).unwrap_err().to_string();
    assert!(err.contains("train_landmarks"), "{err}");
}

#[test]
fn the_cosface_loss_of_a_mixup_batch_matches_pytorch() {
    let r = reference("mixup");
    let slot = ClassifierSlot::default();
    let spec = HeadSpec {
        dim: 8,
        classes: 5,
        kind: MarginKind::Cosface,
        scale: 64.0,
        margin: 0.4,
    };
    let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _head = slot.build(vs.root(), &[vec![4]], &spec).unwrap();
    vs.double();
    tch::no_grad(|| {
        let weight = &vs.variables()["classifier.weight"];
        weight.shallow_clone().copy_(&r["classes"]);
    });
    let y = &r["y"];
    let lam = Tensor::full([6], 0.3, (Kind::Double, tch::Device::Cpu));
    let loss = slot.mixed_loss(&r["x"], y, &y.flip([0]), &lam).unwrap();
    let diff = max_diff(&loss.to_kind(Kind::Double).view([1]), &r["mixed_loss"]);
    assert!(diff < 1e-5, "mixed loss differs by {diff}");
    // lam = 1 is the plain CosFace loss.
    let ones = lam.ones_like();
    let plain = slot.loss(&r["x"], y).unwrap().double_value(&[]);
    let unmixed = slot
        .mixed_loss(&r["x"], y, &y.flip([0]), &ones)
        .unwrap()
        .double_value(&[]);
    assert!((plain - unmixed).abs() < 1e-9, "{plain} vs {unmixed}");
}
