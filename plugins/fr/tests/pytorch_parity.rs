//! CosFace and ArcFace logits and losses against PyTorch references written
//! from the papers (tests/reference/margins.py, run with the venv's torch;
//! ./scripts/test sets VIRTUAL_ENV). Rows 0 and 1 of the reference point
//! away from their class, so ArcFace's fallback past pi is checked too.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use fr::margin::{cosines, margin_logits, MarginClassifier, MarginKind};
use tch::Tensor;

fn reference() -> HashMap<String, Tensor> {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV is unset: run the tests through ./scripts/test");
    let dir = std::env::temp_dir().join(format!("visage-fr-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/margins.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "margins.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tensors = Tensor::read_safetensors(dir.join("margins.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    tensors.into_iter().collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn cosface_and_arcface_logits_and_losses_match_pytorch() {
    let r = reference();
    let (x, w, y) = (&r["x"], &r["w"], &r["y"]);
    let cos = cosines(x, w);
    // The fallback rows really are past pi - m for ArcFace's m = 0.5.
    let own = cos.gather(1, &y.view([-1, 1]), false).view([-1]);
    assert!(own.double_value(&[0]) < (std::f64::consts::PI - 0.5).cos());
    for (kind, m, name) in [
        (MarginKind::Cosface, 0.4, "cosface"),
        (MarginKind::Arcface, 0.5, "arcface"),
    ] {
        let logits = margin_logits(&cos, y, kind, 64.0, m);
        let diff = max_diff(&logits, &r[name]);
        assert!(diff < 1e-9, "{name} logits differ by {diff}");
        let classifier = MarginClassifier {
            weight: w.shallow_clone(),
            kind,
            scale: 64.0,
            margin: m,
        };
        let loss = classifier.loss(x, y).view([1]);
        let diff = max_diff(&loss, &r[&format!("{name}_loss")]);
        assert!(diff < 1e-9, "{name} loss differs by {diff}");
    }
    // CosFace by hand: the true class loses exactly s * m = 25.6.
    let plain = &cos * 64.0;
    let cosface = margin_logits(&cos, y, MarginKind::Cosface, 64.0, 0.4);
    let gap = (plain - cosface).sum(tch::Kind::Double).double_value(&[]);
    assert!((gap - 16.0 * 25.6).abs() < 1e-9, "{gap}");
}
