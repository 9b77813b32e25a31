//! Every format written from synthetic faces and read back: the labels
//! are the generator's exactly, images within JPEG tolerance (exact for
//! FER-2013's grey text).

mod common;

use common::*;
use visage_core::dataset::{Dataset, Split};
use visage_core::labels::{self, AU, EXPRESSION, FOLD, IDENTITY, SAME};
use visage_formats::fer::{affectnet, fer2013, rafdb};
use visage_formats::fr::{benchmark, build_pairs, identity_folder, lfw, mxrec, verification_bin};
use visage_formats::{au, FolderLabel, Options};

const BOTH: [Split; 2] = [Split::Train, Split::Test];

/// Asserts that the reader's samples are the generator's: `label` equal,
/// images within JPEG tolerance.
fn same_expressions(read: &dyn Dataset, split: Split) {
    let truth = samples(split);
    assert_eq!(read.len(), truth.len());
    for (i, t) in truth.iter().enumerate() {
        let r = read.get(i).unwrap();
        assert_eq!(int(&r, EXPRESSION), int(t, EXPRESSION), "{split:?} sample {i}");
        let d = mean_abs_diff(&r.image, &t.image);
        assert!(d < JPEG_TOLERANCE, "{split:?} sample {i}: {d}");
    }
}

#[test]
fn rafdb_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write("rafdb", dir.path(), &BOTH, Options::default());
    for split in BOTH {
        let p = rafdb::RafDbParams {
            root: dir.path().into(),
        };
        let d = rafdb::dataset(p, &ctx(split)).unwrap();
        same_expressions(&d, split);
        assert_eq!(d.info().classes.unwrap(), labels::EXPRESSIONS);
    }
    let truth = samples(Split::Train);
    let other = mean_abs_diff(&truth[0].image, &truth[3].image);
    assert!(other > 3.0 * JPEG_TOLERANCE, "two faces differ by {other} only");
    // RAF-DB's order: surprise, fear, disgust, happiness, sadness, anger, neutral.
    let ours: Vec<usize> = (1..=7).map(|r| rafdb::from_raf(r).unwrap()).collect();
    assert_eq!(ours, [3, 4, 5, 1, 2, 6, 0]);
}

#[test]
fn fer2013_round_trip_is_exact_in_grey() {
    let dir = tempfile::tempdir().unwrap();
    write("fer2013", dir.path(), &BOTH, Options::default());
    for split in BOTH {
        let p = fer2013::Fer2013Params {
            root: dir.path().into(),
            test_usage: "PrivateTest".into(),
        };
        let d = fer2013::dataset(p, &ctx(split)).unwrap();
        let truth = samples(split);
        assert_eq!(d.len(), truth.len());
        for (i, t) in truth.iter().enumerate() {
            let r = d.get(i).unwrap();
            assert_eq!(int(&r, EXPRESSION), int(t, EXPRESSION));
            let rgb = Vec::<f32>::try_from(quantised(&t.image).flatten(0, -1)).unwrap();
            let plane = rgb.len() / 3;
            let grey: Vec<f32> = (0..plane)
                .map(|k| fer2013::luma(rgb[k] as u8, rgb[plane + k] as u8, rgb[2 * plane + k] as u8) as f32)
                .collect();
            let back = Vec::<f32>::try_from(quantised(&r.image).flatten(0, -1)).unwrap();
            assert_eq!(back.len(), 3 * plane);
            for c in 0..3 {
                assert_eq!(back[c * plane..(c + 1) * plane], grey[..], "channel {c} of sample {i}");
            }
        }
    }
    assert_eq!(fer2013::luma(255, 0, 0), 76);
    assert_eq!(fer2013::luma(10, 200, 30), 124);
}

#[test]
fn affectnet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write("affectnet", dir.path(), &BOTH, Options::default());
    for split in BOTH {
        let p = affectnet::AffectNetParams {
            root: dir.path().into(),
            contempt: false,
        };
        let d = affectnet::dataset(p, &ctx(split)).unwrap();
        same_expressions(&d, split);
        assert_eq!(floats(&d.get(0).unwrap(), labels::BOX), [0.0, 0.0, 32.0, 32.0]);
        assert_eq!(d.info().labels, [EXPRESSION, labels::BOX]);
    }
}

/// The pairs the verification writers draw for the test split.
fn expected_pairs(folds: usize, per_fold: usize) -> Vec<visage_formats::fr::Pair> {
    let ids: Vec<i64> = samples(Split::Test).iter().map(|s| int(s, IDENTITY)).collect();
    build_pairs(&ids, folds, per_fold, 0).unwrap()
}

/// Asserts that `read` holds `pairs` of the test split's samples.
fn same_pairs(read: &dyn Dataset, pairs: &[visage_formats::fr::Pair], folds: usize) {
    let truth = samples(Split::Test);
    assert_eq!(read.len(), 2 * pairs.len());
    assert_eq!(read.info().pairs.unwrap().folds, folds);
    let per_fold = pairs.len() / folds;
    for (i, p) in pairs.iter().enumerate() {
        for (k, index) in [p.a, p.b].into_iter().enumerate() {
            let r = read.get(2 * i + k).unwrap();
            assert_eq!(int(&r, SAME), p.same as i64, "pair {i}");
            assert_eq!(int(&r, FOLD), (i / per_fold) as i64, "pair {i}");
            assert!(
                mean_abs_diff(&r.image, &truth[index].image) < JPEG_TOLERANCE,
                "pair {i}"
            );
        }
    }
}

fn pair_options() -> Options {
    Options {
        folds: 2,
        pairs: Some(2),
        name: "tiny".into(),
        ..Options::default()
    }
}

#[test]
fn verification_bin_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write("verification-bin", dir.path(), &[Split::Test], pair_options());
    let p = verification_bin::VerificationBinParams {
        root: dir.path().into(),
        name: "tiny".into(),
        folds: 2,
    };
    let d = verification_bin::dataset(p, &ctx(Split::Test)).unwrap();
    same_pairs(&d, &expected_pairs(2, 2), 2);
}

#[test]
fn lfw_pairs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write("lfw-pairs", dir.path(), &[Split::Test], pair_options());
    let p = lfw::LfwPairsParams {
        root: dir.path().into(),
        images: None,
        pairs: "pairs.txt".into(),
    };
    let d = lfw::dataset(p, &ctx(Split::Test)).unwrap();
    same_pairs(&d, &expected_pairs(2, 2), 2);
}

#[test]
fn identity_folder_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        label: FolderLabel::Identity,
        ..Options::default()
    };
    write("imagefolder", dir.path(), &BOTH, options);
    for split in BOTH {
        let p = identity_folder::IdentityFolderParams {
            root: dir.path().into(),
            split_folders: true,
        };
        let d = identity_folder::dataset(p, &ctx(split)).unwrap();
        let info = d.info();
        let names = info.classes.unwrap();
        let truth = samples(split);
        assert_eq!(d.len(), truth.len());
        assert_eq!(info.identities, Some(if split == Split::Train { 3 } else { 2 }));
        for (i, t) in truth.iter().enumerate() {
            let r = d.get(i).unwrap();
            let name = &names[int(&r, IDENTITY) as usize];
            assert_eq!(*name, format!("{:05}", int(t, IDENTITY)), "sample {i}");
            // PNG: exact.
            assert_eq!(mean_abs_diff(&r.image, &t.image), 0.0, "sample {i}");
        }
    }
}

#[test]
fn mxnet_rec_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write("mxnet-rec", dir.path(), &[Split::Test], Options::default());
    let p = mxrec::MxRecParams {
        root: dir.path().into(),
        name: "train".into(),
    };
    let d = mxrec::dataset(p, &ctx(Split::Test)).unwrap();
    let truth = samples(Split::Test);
    // Test identities are 3 and 4: records for 0..=4, three of them empty.
    assert_eq!(d.info().identities, Some(5));
    assert_eq!(d.len(), truth.len());
    for (i, t) in truth.iter().enumerate() {
        // The split is already in identity order, which the writer keeps.
        let r = d.get(i).unwrap();
        assert_eq!(int(&r, IDENTITY), int(t, IDENTITY), "sample {i}");
        assert!(mean_abs_diff(&r.image, &t.image) < JPEG_TOLERANCE, "sample {i}");
    }
    // Identity record 3 (key 7 + 3 = 10) spans image keys [1, 4).
    let idx = mxrec::read_idx(&dir.path().join("train.idx")).unwrap();
    let (head, _) = mxrec::read_image_record(&dir.path().join("train.rec"), idx[&10], 10).unwrap();
    assert_eq!((head.flag, head.labels), (2, vec![1.0, 4.0]));
    let (head, _) = mxrec::read_image_record(&dir.path().join("train.rec"), idx[&0], 0).unwrap();
    assert_eq!(head.labels, [7.0, 12.0]);
}

#[test]
fn fr_benchmark_trains_on_the_record_file_and_tests_on_the_bin() {
    let dir = tempfile::tempdir().unwrap();
    write("mxnet-rec", dir.path(), &[Split::Test], Options::default());
    write("verification-bin", dir.path(), &[Split::Test], pair_options());
    let params = || benchmark::FrBenchmarkParams {
        train: mxrec::MxRecParams {
            root: dir.path().into(),
            name: "train".into(),
        },
        test: verification_bin::VerificationBinParams {
            root: dir.path().into(),
            name: "tiny".into(),
            folds: 2,
        },
    };
    let train = benchmark::dataset(params(), &ctx(Split::Train)).unwrap();
    assert_eq!(train.len(), samples(Split::Test).len());
    assert_eq!(train.info().identities, Some(5));
    let test = benchmark::dataset(params(), &ctx(Split::Test)).unwrap();
    same_pairs(&test, &expected_pairs(2, 2), 2);
}

/// Asserts that an AU reader gives the generator's units.
fn same_au(read: &dyn Dataset, split: Split) {
    let truth = samples(split);
    assert_eq!(read.len(), truth.len());
    assert_eq!(read.info().action_units.unwrap(), labels::AU_NAMES);
    for (i, t) in truth.iter().enumerate() {
        let r = read.get(i).unwrap();
        let want: Vec<f32> = floats(t, AU).iter().map(|&v| if v > 0.5 { 1.0 } else { 0.0 }).collect();
        assert_eq!(floats(&r, AU), want, "{split:?} sample {i}");
        assert!(mean_abs_diff(&r.image, &t.image) < JPEG_TOLERANCE);
    }
}

#[test]
fn disfa_and_bp4d_round_trip() {
    for (format, read) in [
        ("disfa", au::disfa::dataset as fn(_, &_) -> _),
        ("bp4d", au::bp4d::dataset),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(format, dir.path(), &BOTH, Options::default());
        for split in BOTH {
            let p = au::list::AuListParams {
                root: dir.path().into(),
                train: None,
                test: None,
            };
            same_au(&read(p, &ctx(split)).unwrap(), split);
        }
    }
}

#[test]
fn every_reader_is_registered() {
    let kind = visage_core::Kind::Dataset;
    let mut registry = visage_core::Registry::new();
    let before: Vec<String> = registry.names(kind).iter().map(|n| n.to_string()).collect();
    visage_formats::register(&mut registry).unwrap();
    let mut names = registry.names(kind);
    names.retain(|n| !before.iter().any(|b| b == n));
    names.sort();
    assert_eq!(
        names,
        [
            "affectnet",
            "aflw19",
            "aflw2000",
            "biwi",
            "bp4d",
            "celebamask",
            "disfa",
            "fer2013",
            "fr_benchmark",
            "fsanet_npz",
            "hrnet_csv",
            "identity_folder",
            "ijb",
            "ijb_benchmark",
            "lapa",
            "lfw_pairs",
            "mxnet_rec",
            "pts300w",
            "rafdb",
            "verification_bin",
            "wflw",
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    write("rafdb", dir.path(), &[Split::Test], Options::default());
    let params = format!(r#"{{"root": "{}"}}"#, dir.path().display());
    let d = registry.build_dataset("rafdb", &params, &ctx(Split::Test)).unwrap();
    assert_eq!(d.len(), 6);
    let err = match registry.build_dataset("rafdb", r#"{"root": "x", "rooot": 1}"#, &ctx(Split::Test)) {
        Ok(_) => panic!("an unknown field is accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("unknown field `rooot`"), "{err}");
}

#[test]
fn verification_bin_reads_python2_pickles() {
    // pickle.dumps((["ab", "cd"], [True]), protocol=2) under Python 2 (str
    // is SHORT_BINSTRING `U`), as the MXNet-era packs were written.
    let py2 = b"\x80\x02]q\x00(U\x02abq\x01U\x02cdq\x02e]q\x03\x88a\x86q\x04.";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.bin"), py2).unwrap();
    let bin = verification_bin::read_bin(&dir.path().join("old.bin")).unwrap();
    assert_eq!(bin.images.len(), 2);
    assert_eq!((&bin.images[0][..], &bin.images[1][..]), (&b"ab"[..], &b"cd"[..]));
    assert_eq!(bin.same, [true]);
}
