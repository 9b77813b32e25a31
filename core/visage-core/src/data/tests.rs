use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use super::sources::{FileList, ImageFolder};
use super::*;
use crate::augmentation::Augmentation;
use crate::dataset::{Dataset, Split};
use crate::rng::Rng;
use crate::{Batch, Error, Registry, Result, Sample};

/// Pseudo-random images, counting `get` calls.
struct Noise {
    len: usize,
    gets: AtomicUsize,
}

impl Noise {
    fn new(len: usize) -> Arc<Noise> {
        Arc::new(Noise {
            len,
            gets: AtomicUsize::new(0),
        })
    }
}

impl Dataset for Noise {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, index: usize) -> Result<Sample> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let mut rng = Rng::new(&[index as u64]);
        let pixels: Vec<f32> = (0..3 * 24 * 20).map(|_| rng.uniform() as f32).collect();
        Ok(Sample::new(Tensor::from_slice(&pixels).view([3, 24, 20])).with_label("class", Tensor::from(index as i64)))
    }
}

fn augmentations() -> Arc<[Box<dyn Augmentation>]> {
    let mut registry = Registry::new();
    crate::builtin::register(&mut registry).unwrap();
    let build = |name: &str, params: &str| registry.build_augmentation(name, params).unwrap();
    Arc::from(vec![
        build("random_resized_crop", r#"{"size": 16}"#),
        build("hflip", "{}"),
        build(
            "color_jitter",
            r#"{"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}"#,
        ),
        build("grayscale", r#"{"p": 0.2}"#),
    ])
}

fn config(workers: usize, prefetch: usize, sampling: Sampling) -> LoaderConfig {
    LoaderConfig {
        batch_size: 5,
        workers,
        prefetch,
        seed: 11,
        sampling,
        per_identity: None,
        device: Device::Cpu,
    }
}

fn same(a: &Batch, b: &Batch) -> bool {
    a.images.size() == b.images.size()
        && a.images.equal(&b.images)
        && a.labels.len() == b.labels.len()
        && a.labels.iter().all(|(k, v)| b.labels[k].equal(v))
}

#[test]
fn any_number_of_workers_gives_the_same_batches() {
    let epoch = Sampling::Epoch {
        epoch: 3,
        shuffle: true,
        drop_last: false,
    };
    for sampling in [Sampling::Stream { consumed: 7 }, epoch] {
        let run = |workers| -> Vec<Batch> {
            let loader = Loader::new(Noise::new(23), augmentations(), config(workers, 3, sampling)).unwrap();
            loader.take(9).collect::<Result<_>>().unwrap()
        };
        let reference = run(0);
        assert_eq!(reference.len(), if sampling == epoch { 5 } else { 9 });
        for workers in [1, 4] {
            let other = run(workers);
            assert_eq!(other.len(), reference.len());
            assert!(
                reference.iter().zip(&other).all(|(a, b)| same(a, b)),
                "{workers} workers"
            );
        }
    }
}

#[test]
fn stream_batches_match_the_data_order_and_seeds() {
    let augs = augmentations();
    let dataset = Noise::new(13);
    let mut loader = Loader::new(
        dataset.clone(),
        augs.clone(),
        config(2, 2, Sampling::Stream { consumed: 4 }),
    )
    .unwrap();
    let mut order = DataOrder::at(11, 13, 4);
    for _ in 0..4 {
        let samples = (0..5)
            .map(|_| {
                let (epoch, index) = order.next();
                let mut s = dataset.get(index).unwrap();
                for (k, a) in augs.iter().enumerate() {
                    s = a
                        .apply(s, Rng::new(&[11, epoch, index as u64, k as u64]).next_u64())
                        .unwrap();
                }
                s
            })
            .collect();
        assert!(same(
            &loader.next().unwrap().unwrap(),
            &Batch::collate(samples).unwrap()
        ));
    }
}

#[test]
fn prefetch_bounds_the_batches_made_ahead_of_a_slow_consumer() {
    let dataset = Noise::new(1000);
    let (prefetch, bs) = (3, 5);
    let mut loader = Loader::new(
        dataset.clone(),
        Arc::new([]),
        config(4, prefetch, Sampling::Stream { consumed: 0 }),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        dataset.gets.load(Ordering::SeqCst),
        prefetch * bs,
        "workers filled the prefetch"
    );
    for taken in 1..=6 {
        loader.next().unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let gets = dataset.gets.load(Ordering::SeqCst);
        assert!(
            gets <= (taken + prefetch) * bs,
            "{gets} samples read after {taken} batches"
        );
    }
    drop(loader);
}

#[test]
fn workers_keep_the_callers_libtorch_threads() {
    let before = tch::get_num_threads();
    let loader = Loader::new(
        Noise::new(20),
        augmentations(),
        config(2, 2, Sampling::Stream { consumed: 0 }),
    )
    .unwrap();
    assert_eq!(loader.take(3).count(), 3);
    assert_eq!(tch::get_num_threads(), before);
    let mut inline = Loader::new(
        Noise::new(20),
        augmentations(),
        config(0, 2, Sampling::Stream { consumed: 0 }),
    )
    .unwrap();
    inline.next().unwrap().unwrap();
    assert_eq!(tch::get_num_threads(), before);
}

struct Panics;
impl Augmentation for Panics {
    fn apply(&self, _: Sample, _: u64) -> Result<Sample> {
        panic!("boom")
    }
}

#[test]
fn a_panic_or_error_is_returned_in_place_of_the_batch() {
    for workers in [0, 2] {
        let augs: Arc<[Box<dyn Augmentation>]> = Arc::from(vec![Box::new(Panics) as Box<dyn Augmentation>]);
        let mut loader = Loader::new(
            Noise::new(10),
            augs,
            config(workers, 2, Sampling::Stream { consumed: 0 }),
        )
        .unwrap();
        let err = loader.next().unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::Panic { message, .. } if message == "boom"),
            "{err}"
        );
    }
    let bad = config(1, 0, Sampling::Stream { consumed: 0 });
    assert!(Loader::new(Noise::new(10), Arc::new([]), bad).is_err());
}

// ---- image sources ----

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_image(path: &Path, shade: u8, format: image::ImageFormat) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(12, 10, |x, y| image::Rgb([shade, (x * 20) as u8, (y * 20) as u8]));
    let mut out = Cursor::new(vec![]);
    img.write_to(&mut out, format).unwrap();
    std::fs::write(path, out.into_inner()).unwrap();
}

fn folder_params(root: &Path, extra: serde_json::Value) -> super::sources::ImageFolderParams {
    let mut v = serde_json::json!({ "root": root });
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

#[test]
fn image_folder_reads_any_depth_with_folder_labels() {
    let root = scratch("folder");
    write_image(&root.join("b/x/deep/1.JPG"), 10, image::ImageFormat::Jpeg);
    write_image(&root.join("a/2.png"), 20, image::ImageFormat::Png);
    write_image(&root.join("b/3.jpeg"), 30, image::ImageFormat::Jpeg);
    std::fs::write(root.join("a/notes.txt"), "not an image").unwrap();
    let folder = ImageFolder::new(
        folder_params(&root, serde_json::json!({"label": "folder"})),
        Split::Train,
    )
    .unwrap();
    assert_eq!(folder.classes(), ["a", "b"]);
    assert_eq!(folder.len(), 3);
    let classes: Vec<i64> = (0..3)
        .map(|i| folder.get(i).unwrap().labels["class"].int64_value(&[]))
        .collect();
    assert_eq!(classes, [0, 1, 1]);
    let png = folder.get(0).unwrap().image;
    assert_eq!(png.size(), vec![3, 10, 12]);
    assert!((png.double_value(&[0, 0, 0]) - 20.0 / 255.0).abs() < 1e-7);
    let resized = ImageFolder::new(
        folder_params(&root, serde_json::json!({"resize": [5, 6]})),
        Split::Train,
    )
    .unwrap();
    assert_eq!(resized.get(2).unwrap().image.size(), vec![3, 5, 6]);
    assert!(resized.get(0).unwrap().labels.is_empty());
    let err = ImageFolder::new(folder_params(&root, serde_json::json!({})), Split::Test).unwrap_err();
    assert!(err.to_string().contains("test_root"), "{err}");
    // Through the registry, as an experiment names it.
    let mut registry = Registry::new();
    crate::builtin::register(&mut registry).unwrap();
    let ctx = crate::dataset::DatasetContext {
        split: Split::Train,
        seed: 0,
    };
    let params = serde_json::json!({"root": root, "extensions": ["png"]}).to_string();
    assert_eq!(registry.build_dataset("image_folder", &params, &ctx).unwrap().len(), 1);
    let err = registry
        .build_dataset("image_folder", r#"{"root": "x", "on_bad_sample": "ignore"}"#, &ctx)
        .err()
        .unwrap();
    assert!(err.to_string().contains("on_bad_sample"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn file_lists_read_paths_and_labels_relative_to_the_list() {
    let root = scratch("list");
    write_image(&root.join("img/a b.png"), 1, image::ImageFormat::Png);
    write_image(&root.join("img/c.jpg"), 2, image::ImageFormat::Jpeg);
    std::fs::write(root.join("list.txt"), "# path label\nimg/a b.png 4\n\nimg/c.jpg 7\n").unwrap();
    std::fs::write(root.join("mixed.txt"), "img/c.jpg 1\nimg/c.jpg\n").unwrap();
    let params = |file: &str| serde_json::from_value(serde_json::json!({ "file": root.join(file) })).unwrap();
    let list = FileList::new(params("list.txt"), Split::Train).unwrap();
    assert_eq!(list.paths(), [root.join("img/a b.png"), root.join("img/c.jpg")]);
    assert_eq!(list.get(1).unwrap().labels["class"].int64_value(&[]), 7);
    let err = FileList::new(params("mixed.txt"), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mixed.txt:2: either every line has a label"), "{err}");
    // A FIFO as the list used to block for ever.
    mkfifo(&root.join("fifo.txt"));
    let err = FileList::new(params("fifo.txt"), Split::Train).unwrap_err().to_string();
    assert!(err.contains("fifo.txt: the list is not a regular file"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_named_like_an_image_is_a_bad_sample_not_a_hang() {
    let root = scratch("fifo");
    write_image(&root.join("a.png"), 1, image::ImageFormat::Png);
    let fifo = root.join("b.png");
    mkfifo(&fifo);
    for (on_bad_sample, skips) in [("error", false), ("skip", true)] {
        let params = folder_params(&root, serde_json::json!({ "on_bad_sample": on_bad_sample }));
        let folder = ImageFolder::new(params, Split::Train).unwrap();
        assert_eq!(folder.paths(), [root.join("a.png"), fifo.clone()]);
        let err = folder.get(1).unwrap_err();
        assert!(matches!(err, Error::BadSample { skip, .. } if skip == skips));
        let text = err.to_string();
        assert!(text.contains("b.png: a FIFO, not a regular image file"), "{text}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// A folder of 8 good images with a truncated JPEG, a text file named .png
/// and a missing file (a broken link) among them.
fn folder_with_bad_files(name: &str) -> (PathBuf, Vec<PathBuf>) {
    let root = scratch(name);
    for i in 0..8 {
        write_image(&root.join(format!("img{i}.jpg")), i * 10, image::ImageFormat::Jpeg);
    }
    let good = std::fs::read(root.join("img0.jpg")).unwrap();
    let truncated = root.join("img3a.jpg");
    std::fs::write(&truncated, &good[..good.len() * 2 / 3]).unwrap();
    let text = root.join("img5a.png");
    std::fs::write(&text, "this is not a PNG\n").unwrap();
    let missing = root.join("img6a.jpg");
    std::os::unix::fs::symlink(root.join("nowhere.jpg"), &missing).unwrap();
    (root, vec![truncated, text, missing])
}

#[test]
fn bad_files_are_errors_naming_the_file_by_default() {
    let (root, bad) = folder_with_bad_files("bad-error");
    let folder = ImageFolder::new(folder_params(&root, serde_json::json!({})), Split::Train).unwrap();
    assert_eq!(folder.len(), 11);
    for (path, what) in bad.iter().zip(["truncated JPEG", "not a JPEG or PNG", "cannot read"]) {
        let index = folder.paths().iter().position(|p| p == path).unwrap();
        let err = folder.get(index).unwrap_err();
        assert!(matches!(err, Error::BadSample { skip: false, .. }));
        let text = err.to_string();
        assert!(
            text.starts_with(&path.display().to_string()) && text.contains(what),
            "{text}"
        );
    }
    let sampling = Sampling::Epoch {
        epoch: 0,
        shuffle: false,
        drop_last: false,
    };
    let mut loader = Loader::new(Arc::new(folder), Arc::new([]), config(2, 2, sampling)).unwrap();
    // The first batch holds indices 0..5, the truncated JPEG among them.
    let err = loader.next().unwrap().unwrap_err().to_string();
    assert!(err.contains("img3a.jpg: truncated JPEG"), "{err}");
    drop(loader);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn skipped_bad_files_are_replaced_so_batches_stay_full() {
    let (root, _) = folder_with_bad_files("bad-skip");
    let params = folder_params(&root, serde_json::json!({"on_bad_sample": "skip", "resize": 8}));
    let folder: Arc<dyn Dataset> = Arc::new(ImageFolder::new(params, Split::Train).unwrap());
    for workers in [0, 3] {
        let run = |sampling, batch_size| {
            let mut cfg = config(workers, 2, sampling);
            cfg.batch_size = batch_size;
            let mut loader = Loader::new(folder.clone(), augmentations(), cfg).unwrap();
            let batches: Vec<Batch> = loader.by_ref().take(6).collect::<Result<_>>().unwrap();
            (batches, loader.skipped())
        };
        let (batches, skipped) = run(
            Sampling::Epoch {
                epoch: 0,
                shuffle: false,
                drop_last: false,
            },
            5,
        );
        // 11 files: batches of 5, 5, 1, every one full, 3 bad ones replaced.
        let sizes: Vec<i64> = batches.iter().map(Batch::len).collect();
        assert_eq!((sizes, skipped), (vec![5, 5, 1], 3));
        // An endless stream, two batches of one epoch each: 3 per epoch.
        let (batches, skipped) = run(Sampling::Stream { consumed: 0 }, 11);
        assert!(batches.iter().all(|b| b.len() == 11));
        assert_eq!((batches.len(), skipped), (6, 6 * 3));
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_dataset_of_only_bad_files_is_an_error() {
    let root = scratch("all-bad");
    std::fs::write(root.join("a.png"), "text").unwrap();
    std::fs::write(root.join("b.jpg"), [0xFF, 0xD8, 0xFF]).unwrap();
    let params = folder_params(&root, serde_json::json!({"on_bad_sample": "skip"}));
    let folder = ImageFolder::new(params, Split::Train).unwrap();
    let mut loader = Loader::new(
        Arc::new(folder),
        Arc::new([]),
        config(1, 1, Sampling::Stream { consumed: 0 }),
    )
    .unwrap();
    let err = loader.next().unwrap().unwrap_err().to_string();
    assert!(err.contains("every one of the 2 samples"), "{err}");
    drop(loader);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn pinned_batches_are_only_requested_on_cuda() {
    // Pinning needs a CUDA device; without one the loader must not try.
    let mut loader = Loader::new(
        Noise::new(10),
        Arc::new([]),
        config(1, 1, Sampling::Stream { consumed: 0 }),
    )
    .unwrap();
    let batch = loader.next().unwrap().unwrap();
    assert_eq!(batch.images.kind(), Kind::Float);
    if tch::Cuda::is_available() {
        let mut cfg = config(1, 1, Sampling::Stream { consumed: 0 });
        cfg.device = Device::Cuda(0);
        let mut loader = Loader::new(Noise::new(10), Arc::new([]), cfg).unwrap();
        assert!(loader.next().unwrap().unwrap().images.is_pinned(Device::Cuda(0)));
    }
}

#[test]
fn views_are_reproducible_independent_and_leave_the_image_alone() {
    let mut registry = Registry::new();
    crate::builtin::register(&mut registry).unwrap();
    let build = |name: &str, params: &str| registry.build_augmentation(name, params).unwrap();
    let groups = || -> Arc<[ViewGroup]> {
        Arc::from(vec![
            ViewGroup {
                count: 2,
                augmentations: vec![build("random_resized_crop", r#"{"size": 16}"#), build("hflip", "{}")],
                shared_steps: vec![],
            },
            ViewGroup {
                count: 3,
                augmentations: vec![build("random_resized_crop", r#"{"size": 8, "scale": [0.05, 0.4]}"#)],
                shared_steps: vec![],
            },
        ])
    };
    let sampling = Sampling::Stream { consumed: 0 };
    let batches = |workers: usize| -> Vec<Batch> {
        let mut loader =
            Loader::with_views(Noise::new(23), augmentations(), groups(), config(workers, 3, sampling)).unwrap();
        (0..3).map(|_| loader.next_batch().unwrap().unwrap()).collect()
    };
    let (inline, threaded) = (batches(0), batches(3));
    let mut plain = Loader::new(Noise::new(23), augmentations(), config(2, 3, sampling)).unwrap();
    for (a, b) in inline.iter().zip(&threaded) {
        assert_eq!(a.views.len(), 5);
        assert_eq!(a.views[0].images.size(), vec![5, 3, 16, 16]);
        assert_eq!(a.views[4].images.size(), vec![5, 3, 8, 8]);
        for (x, y) in a.views.iter().zip(&b.views) {
            assert!(same(x, y), "views differ between 0 and 3 workers");
            // Labels travel with every view.
            assert!(x.label("class").unwrap().equal(a.label("class").unwrap()));
        }
        assert!(
            !a.views[0].images.equal(&a.views[1].images),
            "two views of a group are the same"
        );
        // The loader's own output is what it is without views.
        assert!(a.images.equal(&plain.next_batch().unwrap().unwrap().images));
    }
}

/// Every landmark at the image's corner `(0, 0)`: after a crop at
/// `(top, left)` it sits at `(-left, -top)`, which tells the crop's box.
struct Cornered;

impl Dataset for Cornered {
    fn len(&self) -> usize {
        40
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let image = Tensor::full([3, 24, 20], index as f64 / 40.0, (Kind::Float, Device::Cpu));
        Ok(Sample::new(image).with_label(
            crate::labels::LANDMARKS,
            Tensor::zeros([crate::labels::IBUG68 as i64, 2], (Kind::Float, Device::Cpu)),
        ))
    }
}

/// The quadrant (0 top-left .. 3 bottom-right of a 24 x 20 image) of each
/// sample's crop in a view of [`Cornered`], read from its landmarks.
fn quadrants(view: &Batch) -> Vec<i64> {
    let corner = view.label(crate::labels::LANDMARKS).unwrap().select(1, 0);
    let (x, y) = (-corner.select(1, 0), -corner.select(1, 1));
    let q = y.ge(12.0).to_kind(Kind::Int64) * 2 + x.ge(10.0).to_kind(Kind::Int64);
    Vec::<i64>::try_from(q).unwrap()
}

#[test]
fn views_carry_moved_labels_and_shared_steps_share_one_draw() {
    let mut registry = Registry::new();
    crate::builtin::register(&mut registry).unwrap();
    let crop = |view: usize| {
        registry
            .build_augmentation("distance_crop", &format!(r#"{{"ratio": 0.4, "view": {view}}}"#))
            .unwrap()
    };
    let pair = |shared: Vec<usize>| -> Arc<[ViewGroup]> {
        Arc::from(
            (0..2)
                .map(|view| ViewGroup {
                    count: 1,
                    augmentations: vec![crop(view)],
                    shared_steps: shared.clone(),
                })
                .collect::<Vec<_>>(),
        )
    };
    let views = |shared: Vec<usize>| -> Vec<Batch> {
        let mut cfg = config(0, 1, Sampling::Stream { consumed: 0 });
        cfg.batch_size = 40;
        let mut loader = Loader::with_views(Arc::new(Cornered), Arc::from(vec![]), pair(shared), cfg).unwrap();
        loader.next_batch().unwrap().unwrap().views
    };
    // Shared: PCL's two crops take two different quadrants of one draw.
    let shared = views(vec![0]);
    assert_eq!(shared[0].images.size(), vec![40, 3, 8, 8]);
    let (a, b) = (quadrants(&shared[0]), quadrants(&shared[1]));
    assert!(a.iter().zip(&b).all(|(p, q)| p != q), "{a:?} {b:?}");
    assert!((0..4).all(|q| a.contains(&q)), "{a:?}");
    // Independent draws land on the same quadrant about one time in four.
    let apart = views(vec![]);
    let (a, b) = (quadrants(&apart[0]), quadrants(&apart[1]));
    let together = a.iter().zip(&b).filter(|(p, q)| p == q).count();
    assert!((3..=20).contains(&together), "{together} of 40: {a:?} {b:?}");
    // A shared step must exist.
    let cfg = config(0, 1, Sampling::Stream { consumed: 0 });
    let err = Loader::with_views(Arc::new(Cornered), Arc::from(vec![]), pair(vec![1]), cfg)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("view group 0 shares step 1"), "{err}");
}

/// `Noise` whose sample `i` belongs to person `i % people`.
struct People {
    noise: Arc<Noise>,
    people: usize,
}

impl Dataset for People {
    fn len(&self) -> usize {
        self.noise.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        self.noise.get(index)
    }
    fn identity(&self, index: usize) -> Option<usize> {
        Some(index % self.people)
    }
}

#[test]
fn per_identity_batches_hold_runs_of_one_person_and_need_identities() {
    let people = Arc::new(People {
        noise: Noise::new(40),
        people: 4,
    });
    let mut grouped = config(1, 2, Sampling::Stream { consumed: 0 });
    grouped.per_identity = Some(5);
    let loader = Loader::new(people, Arc::new([]), grouped.clone()).unwrap();
    for batch in loader.take(16) {
        let classes = Vec::<i64>::try_from(&batch.unwrap().labels["class"]).unwrap();
        let persons: Vec<i64> = classes.iter().map(|c| c % 4).collect();
        assert!(
            persons.iter().all(|&p| p == persons[0]),
            "batch of 5, one run: {classes:?}"
        );
    }
    let err = Loader::new(Noise::new(40), Arc::new([]), grouped).err().unwrap();
    assert!(
        err.to_string().contains("needs the identity of every sample") && err.to_string().contains("sample 0"),
        "{err}"
    );
}
