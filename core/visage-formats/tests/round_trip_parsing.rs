//! Parsing layouts: synthface written by each writer and read back by its
//! reader, masks equal to the generator's exactly.

mod synth;

use synth::{export, face, values};
use visage_core::dataset::{Dataset, Split};
use visage_core::labels;
use visage_formats::parsing::{CelebAMask, CelebAMaskParams, Lapa, LapaParams, CELEBAMASK_CLASSES};

const BOTH: [Split; 2] = [Split::Train, Split::Test];

#[test]
fn lapa_round_trip() {
    let (_dir, out) = export("lapa", &BOTH, 3);
    for split in BOTH {
        let p = LapaParams {
            root: out.clone(),
            test_folder: "test".into(),
        };
        let data = Lapa::new(&p, split).unwrap();
        assert_eq!(data.len(), 3);
        for i in 0..3 {
            let f = face(split, i);
            let s = data.get(i).unwrap();
            let mask: Vec<u8> = values(&s.labels[labels::PARSING]).iter().map(|&v| v as u8).collect();
            assert_eq!(mask, f.parsing, "{split:?} {i}");
            let lm = values(&s.labels[labels::LANDMARKS]);
            for p in 0..68 {
                assert!((lm[2 * p] - f.landmarks[p][0] as f64).abs() < 1e-5);
                assert!((lm[2 * p + 1] - f.landmarks[p][1] as f64).abs() < 1e-5);
            }
        }
        let info = data.info();
        assert_eq!(info.parsing_classes.unwrap().len(), 11);
        assert_eq!(info.landmarks.unwrap().name, "ibug68");
    }
}

#[test]
fn celebamask_round_trip() {
    let (_dir, out) = export("celebamask", &BOTH, 2);
    // CelebAMask-HQ's id of each LaPa class.
    let id = |name: &str| CELEBAMASK_CLASSES.iter().position(|c| *c == name).unwrap() as u8;
    let of_lapa = [
        0,
        id("skin"),
        id("l_brow"),
        id("r_brow"),
        id("l_eye"),
        id("r_eye"),
        id("nose"),
        id("u_lip"),
        id("mouth"),
        id("l_lip"),
        id("hair"),
    ];
    assert_eq!(of_lapa[1..4], [2, 6, 7]);
    for split in BOTH {
        let p = CelebAMaskParams {
            root: out.clone(),
            train_with_val: false,
        };
        let data = CelebAMask::new(&p, split).unwrap();
        assert_eq!(data.len(), 2);
        for i in 0..2 {
            let want: Vec<u8> = face(split, i).parsing.iter().map(|&c| of_lapa[c as usize]).collect();
            let s = data.get(i).unwrap();
            let got: Vec<u8> = values(&s.labels[labels::PARSING]).iter().map(|&v| v as u8).collect();
            assert_eq!(got, want, "{split:?} {i}");
            assert_eq!(s.image.size(), [3, 48, 48]);
        }
        assert_eq!(data.info().parsing_classes.unwrap().len(), 19);
    }
}
