//! Images of an `image_folder` dataset: a truncated PNG, a JPEG with a bad
//! header, a zero-byte file, a text file named `.jpg` (each skipped with
//! `on_bad_sample: skip`, refused naming the file without it), and a 1x1
//! image, which decodes but cannot be batched with the others (refused
//! naming the file either way).

use std::path::{Path, PathBuf};

use crate::common::{command, root};
use crate::harness::{refused, Scratch};

fn encoded(side: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(side, side, |x, y| image::Rgb([(x * 15) as u8, (y * 15) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A folder of seven good 16x16 images and `bad`, so that a batch of 8
/// reads them all.
fn folder(scratch: &Scratch, bad: &str, bytes: &[u8]) -> PathBuf {
    let dir = scratch.path("images");
    let _ = std::fs::remove_dir_all(&dir);
    for i in 0..7 {
        let format = if i % 2 == 0 {
            image::ImageFormat::Png
        } else {
            image::ImageFormat::Jpeg
        };
        let ext = if i % 2 == 0 { "png" } else { "jpg" };
        scratch.file(&format!("images/good_{i}.{ext}"), encoded(16, format));
    }
    scratch.file(&format!("images/{bad}"), bytes);
    dir
}

/// The fixture base pre-training on the folder.
fn experiment(scratch: &Scratch, dir: &Path, skip: bool) -> PathBuf {
    let quote = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap();
    let on_bad = if skip { "skip" } else { "error" };
    let text = format!(
        "extends: {}\noutput_dir: {}\ndevice: cpu\n\
         pretrain: {{dataset: {{name: image_folder, params: {{root: {}, on_bad_sample: {on_bad}}}}}}}\n",
        quote(&root().join("tests/fixtures/config/base.yaml")),
        quote(&scratch.path("runs")),
        quote(dir),
    );
    scratch.file("experiment.yaml", text)
}

/// The files that cannot be decoded, each with what the message says.
fn undecodable() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let png = encoded(16, image::ImageFormat::Png);
    let mut jpeg = encoded(16, image::ImageFormat::Jpeg);
    // The frame header (SOF0) says the image is 0 x 0.
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].fill(0);
    vec![
        ("truncated.png", png[..png.len() / 2].to_vec(), "cannot decode Png"),
        ("bad_header.jpg", jpeg, "cannot decode Jpeg"),
        ("empty.png", vec![], "not a JPEG or PNG image"),
        (
            "text.jpg",
            b"this is not an image\n".to_vec(),
            "not a JPEG or PNG image",
        ),
    ]
}

fn runs(scratch: &Scratch) -> PathBuf {
    scratch.path("runs/fixture")
}

#[test]
fn undecodable_images_are_refused_or_skipped_as_configured() {
    let scratch = Scratch::new();
    for (name, bytes, says) in undecodable() {
        let dir = folder(&scratch, name, &bytes);
        // Refused by default, naming the file.
        let exp = experiment(&scratch, &dir, false);
        refused(&scratch, &[exp.to_str().unwrap()], &[], &[name, says]);
        // Skipped with `on_bad_sample: skip`, the file named in the log.
        std::fs::remove_dir_all(runs(&scratch)).unwrap();
        let exp = experiment(&scratch, &dir, true);
        let out = command(&[exp.to_str().unwrap()]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name} with skip:\n{stderr}");
        let run = std::fs::read_dir(runs(&scratch))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("results.json").is_file())
            .unwrap();
        let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
        assert!(
            log.contains("bad sample skipped") && log.contains(name),
            "{name}: {log}"
        );
        std::fs::remove_dir_all(runs(&scratch)).unwrap();
    }
    // `runner embed --images` reads the folder as image_folder does (errors).
    let run = scratch.finished_run("done", &[]);
    for (name, bytes, says) in undecodable() {
        let dir = folder(&scratch, name, &bytes);
        let args = embed(&run, &dir, &scratch.path("feats.npy"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&scratch, &args, &[], &[name, says]);
    }
}

fn embed(run: &Path, images: &Path, out: &Path) -> Vec<String> {
    [
        "embed",
        "--checkpoint",
        run.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
    ]
    .into_iter()
    .chain(["--device", "cpu", "--out", out.to_str().unwrap()])
    .map(String::from)
    .collect()
}

#[test]
fn an_image_too_small_to_batch_is_refused_naming_the_file() {
    let scratch = Scratch::new();
    let dir = folder(&scratch, "tiny.png", &encoded(1, image::ImageFormat::Png));
    for skip in [false, true] {
        let exp = experiment(&scratch, &dir, skip);
        refused(
            &scratch,
            &[exp.to_str().unwrap()],
            &[],
            &["images/tiny.png", "has image shape [3, 1, 1]", "images/good_"],
        );
    }
    let run = scratch.finished_run("done", &[]);
    let args = embed(&run, &dir, &scratch.path("feats.npy"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(&scratch, &args, &[], &["images/tiny.png", "has image shape [3, 1, 1]"]);
}
