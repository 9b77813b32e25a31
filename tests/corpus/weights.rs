//! Weight files: cut short in each format, random bytes, empty, a
//! directory, weights of another architecture; given as an experiment's
//! `backbone.weights` and as `runner embed --checkpoint`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::root;
use crate::harness::{refused, refused_changing, Scratch};

/// A safetensors file of float zeros with these names and shapes.
fn safetensors(tensors: &[(&str, &[i64])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, shape) in tensors {
        let len = 4 * shape.iter().product::<i64>();
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(vec![0u8; offset as usize]);
    out
}

/// A `torch.save` zip archive holding `{}`, laid out as torch writes it.
fn torch_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(vec![]));
    let stored = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [
        ("archive/data.pkl", &b"\x80\x02}q\x00."[..]),
        ("archive/version", b"3\n"),
        ("archive/data/0", &[0u8; 64]),
    ] {
        zip.start_file(name, stored).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The start of a legacy `torch.save` file: its magic number, protocol
/// version and the beginning of its system information.
const LEGACY_START: &[u8] =
    b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.\x80\x02}q\x00(X\x10\x00\x00\x00protocol_ver";

/// The cases: a file name, its bytes, and what the message must say.
fn bad_files(scratch: &Scratch) -> Vec<(PathBuf, &'static str)> {
    let good = safetensors(&[("block0.conv.weight", &[4, 3, 3, 3]), ("block0.bn.weight", &[4])]);
    let zip = torch_zip();
    let mut random = vec![0x13u8];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..255 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push(x as u8);
    }
    vec![
        (
            scratch.file("cut.safetensors", &good[..good.len() / 2]),
            "cannot read the safetensors file",
        ),
        (
            scratch.file("cut.pth", &zip[..zip.len() / 2]),
            "not a readable torch.save zip archive",
        ),
        (scratch.file("cut_legacy.pth", LEGACY_START), "legacy torch.save file"),
        (
            scratch.file("random.pth", &random),
            "not a weights file: expected safetensors",
        ),
        (scratch.file("empty.pth", b""), "an empty file"),
    ]
}

/// Weights of a wider `example_convnet` and of a ResNet stem.
fn other_architecture(scratch: &Scratch) -> PathBuf {
    scratch.file(
        "other.safetensors",
        safetensors(&[("block0.conv.weight", &[8, 3, 3, 3]), ("conv1.weight", &[64, 3, 7, 7])]),
    )
}

/// An experiment in the scratch folder: the fixture base with
/// `backbone.weights` set to `weights`.
fn experiment(scratch: &Scratch, weights: &Path) -> PathBuf {
    let quote = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap();
    let text = format!(
        "extends: {}\noutput_dir: {}\ndevice: cpu\n\
         backbone: {{name: example_convnet, params: {{width: 4}}, weights: {{path: {}}}}}\n",
        quote(&root().join("tests/fixtures/config/base.yaml")),
        quote(&scratch.path("runs")),
        quote(weights),
    );
    scratch.file("experiment.yaml", text)
}

/// `runner embed` of `weights` into a width-4 `example_convnet`.
fn embed_args<'a>(weights: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "embed",
        "--checkpoint",
        weights,
        "--backbone",
        "example_convnet",
        "--params",
        "{width: 4}",
        "--dataset",
        "example_shapes",
        "--dataset-params",
        "{count: 4, resolution: 16}",
        "--device",
        "cpu",
        "--out",
        out,
    ]
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// The `error` of the run's results.json: one line, no C++ trace.
fn results_error(scratch: &Scratch) -> String {
    let runs = scratch.path("runs/fixture");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    let error = results["error"].as_str().unwrap().to_string();
    assert!(!error.contains('\n') && !error.contains("frame #"), "{error}");
    std::fs::remove_dir_all(&runs).unwrap();
    error
}

#[test]
fn bad_weight_files_are_refused_naming_the_file() {
    let scratch = Scratch::new();
    let out = scratch.path("feats.npy");
    let out = out.to_str().unwrap();
    for (file, says) in bad_files(&scratch) {
        let name = file_name(&file);
        let exp = experiment(&scratch, &file);
        refused(&scratch, &[exp.to_str().unwrap()], &[], &[name, says]);
        assert!(results_error(&scratch).contains(says));
        refused(&scratch, &embed_args(file.to_str().unwrap(), out), &[], &[name, says]);
    }
    assert!(!scratch.path("feats.npy").exists());
}

#[test]
fn a_directory_is_not_a_weights_file() {
    let scratch = Scratch::new();
    let dir = scratch.path("weights_dir");
    std::fs::create_dir_all(&dir).unwrap();
    let exp = experiment(&scratch, &dir);
    refused(
        &scratch,
        &[exp.to_str().unwrap()],
        &[],
        &["weights_dir", "a directory, not a weights file"],
    );
    results_error(&scratch);
    // To embed, a directory is a run directory; this one is not.
    let out = scratch.path("feats.npy");
    refused(
        &scratch,
        &embed_args(dir.to_str().unwrap(), out.to_str().unwrap()),
        &[],
        &["weights_dir/backbone.safetensors", "not a finished run directory"],
    );
}

#[test]
fn weights_of_another_architecture_name_the_parameter_and_both_shapes() {
    let scratch = Scratch::new();
    let weights = other_architecture(&scratch);
    let says = [
        "other.safetensors",
        "the weights do not fit the backbone",
        "block0.conv.weight (model [4, 3, 3, 3], file [8, 3, 3, 3])",
    ];
    let exp = experiment(&scratch, &weights);
    let stderr = refused(&scratch, &[exp.to_str().unwrap()], &[], &says);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{stderr}"
    );
    assert!(results_error(&scratch).contains(says[2]));
    let out = scratch.path("feats.npy");
    refused(
        &scratch,
        &embed_args(weights.to_str().unwrap(), out.to_str().unwrap()),
        &[],
        &says,
    );
}

#[test]
fn a_checkpoint_of_another_architecture_is_one_line_without_a_trace() {
    let scratch = Scratch::new();
    let run = scratch.finished_run("width4", &["backbone.params.width=4"]);
    let wider = scratch.finished_run("width8", &["backbone.params.width=8"]);
    let model = "checkpoints/step-00000002/model.safetensors";
    std::fs::copy(wider.join(model), run.join(model)).unwrap();
    std::fs::remove_file(run.join("results.json")).unwrap();
    let base = root().join("tests/fixtures/config/base.yaml");
    let output_dir = scratch.output_dir();
    let args = [
        base.to_str().unwrap(),
        "--set",
        "device=cpu",
        "--set",
        &output_dir,
        "--resume",
        run.to_str().unwrap(),
    ];
    let changing = [run.join("log.jsonl"), run.join("results.json")];
    let stderr = refused_changing(&scratch, &args, &[], &[model, "cannot restore the model"], &changing);
    // The first variable that differs, with both shapes, checked before
    // libtorch is asked to copy anything.
    assert!(
        stderr.contains("`backbone.block0.bn.bias` has shape [8] in the checkpoint and [4] in the model"),
        "{stderr}"
    );
}
