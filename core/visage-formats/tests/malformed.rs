//! Hand-made broken files for every reader: each is an error naming the
//! file, the line or record and what was expected; none panics.

mod common;

use std::fs;
use std::path::Path;

use common::{ctx, says, write};
use visage_core::dataset::{Dataset, Split};
use visage_formats::au::list::AuListParams;
use visage_formats::codec::pickle::list_of_bytes_and_bools;
use visage_formats::fer::{affectnet, fer2013, rafdb};
use visage_formats::fr::{identity_folder, lfw, mxrec, verification_bin};
use visage_formats::{au, Options};

/// Writes `text` to `root/relative`, creating folders.
fn put(root: &Path, relative: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A tiny valid JPEG-named file (never decoded by the list readers).
fn image(root: &Path, relative: &str) {
    put(root, relative, b"not decoded");
}

fn raf(root: &Path) -> visage_core::Error {
    rafdb::dataset(rafdb::RafDbParams { root: root.into() }, &ctx(Split::Train)).unwrap_err()
}

#[test]
fn rafdb_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    says(
        raf(root),
        &["EmoLabel/list_patition_label.txt", "cannot read RAF-DB's label list"],
    );
    image(root, "Image/aligned/train_00001_aligned.jpg");
    put(root, rafdb::LIST, "train_00001.jpg 5\ntrain_00002.jpg\n");
    says(
        raf(root),
        &[
            "list_patition_label.txt, line 2",
            "expected 2 fields (image name, label 1-7), found 1",
        ],
    );
    put(root, rafdb::LIST, "train_00001.jpg 8\n");
    says(raf(root), &["line 1: expected a label 1-7, found 8"]);
    put(root, rafdb::LIST, "train_00001.jpg five\n");
    says(raf(root), &["line 1: expected the label as a number, found `five`"]);
    put(root, rafdb::LIST, "train_00001.jpg 5\n\nval_00002.jpg 1\n");
    says(
        raf(root),
        &["line 3: expected an image name starting with `train_` or `test_`"],
    );
    put(root, rafdb::LIST, "train_00001.jpg 5\ntrain_00002.jpg 1\n");
    says(
        raf(root),
        &[
            "line 2: expected an image at",
            "train_00002_aligned.jpg, which is missing",
        ],
    );
}

fn fer(root: &Path) -> visage_core::Error {
    let p = fer2013::Fer2013Params {
        root: root.into(),
        test_usage: "PrivateTest".into(),
    };
    fer2013::dataset(p, &ctx(Split::Train)).unwrap_err()
}

#[test]
fn fer2013_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    says(fer(root), &["fer2013.csv: cannot read FER-2013's CSV"]);
    put(root, "fer2013.csv", "emotion,pixels\n");
    says(
        fer(root),
        &["fer2013.csv, line 1: expected the header `emotion,pixels,Usage`"],
    );
    let head = "emotion,pixels,Usage\n";
    put(root, "fer2013.csv", format!("{head}0,1 2 3 4,Training\n0,1 2 3 4\n"));
    says(
        fer(root),
        &["line 3: expected 3 fields (emotion,pixels,Usage), found 2"],
    );
    put(root, "fer2013.csv", format!("{head}7,1 2 3 4,Training\n"));
    says(fer(root), &["line 2: expected an emotion 0-6, found 7"]);
    put(root, "fer2013.csv", format!("{head}0,1 2 3,Training\n"));
    says(
        fer(root),
        &["line 2: expected a square image's pixels (48 x 48 = 2304), found 3"],
    );
    put(root, "fer2013.csv", format!("{head}0,1 2 3 256,Training\n"));
    says(fer(root), &["line 2: expected a pixel 0-255 as a number, found `256`"]);
    put(root, "fer2013.csv", format!("{head}0,1 2 3 4,Train\n"));
    says(
        fer(root),
        &["line 2: expected the usage `Training`, `PublicTest` or `PrivateTest`"],
    );
}

fn affect(root: &Path) -> visage_core::Error {
    let p = affectnet::AffectNetParams {
        root: root.into(),
        contempt: false,
    };
    affectnet::dataset(p, &ctx(Split::Train)).unwrap_err()
}

#[test]
fn affectnet_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    says(affect(root), &["training.csv: cannot read an AffectNet CSV"]);
    let head = format!("{}\n", affectnet::HEADER);
    image(root, "Manually_Annotated_Images/1/a.jpg");
    put(root, "training.csv", format!("{head}1/a.jpg,0,0,10,10,,1,0.5\n"));
    says(affect(root), &["training.csv, line 2: expected 9 fields", "found 8"]);
    put(root, "training.csv", format!("{head}1/a.jpg,0,0,10,10,,11,0,0\n"));
    says(affect(root), &["line 2: expected an expression 0-10, found 11"]);
    put(root, "training.csv", format!("{head}1/a.jpg,0,zero,10,10,,1,0,0\n"));
    says(affect(root), &["line 2: expected face_y as a number, found `zero`"]);
    put(root, "training.csv", format!("{head}../a.jpg,0,0,10,10,,1,0,0\n"));
    says(affect(root), &["line 2: expected a relative path inside"]);
    put(root, "training.csv", format!("{head}1/b.jpg,0,0,10,10,,1,0,0\n"));
    says(
        affect(root),
        &["line 2: expected an image at", "1/b.jpg, which is missing"],
    );
    // No face (10) is dropped without its image being looked for.
    put(root, "training.csv", format!("{head}1/b.jpg,0,0,10,10,,10,0,0\n"));
    let p = affectnet::AffectNetParams {
        root: root.into(),
        contempt: false,
    };
    assert_eq!(affectnet::dataset(p, &ctx(Split::Train)).unwrap().len(), 0);
}

fn bin(root: &Path) -> visage_core::Result<visage_formats::table::Table> {
    let p = verification_bin::VerificationBinParams {
        root: root.into(),
        name: "tiny".into(),
        folds: 1,
    };
    verification_bin::dataset(p, &ctx(Split::Test))
}

#[test]
fn verification_bin_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    says(bin(root).unwrap_err(), &["tiny.bin: cannot read a verification .bin"]);
    let good = list_of_bytes_and_bools(&[b"ab".to_vec(), b"cd".to_vec()], &[true]).unwrap();
    put(root, "tiny.bin", &good[..good.len() - 3]);
    says(
        bin(root).unwrap_err(),
        &["tiny.bin: not a readable pickle: truncated at byte"],
    );
    let three = list_of_bytes_and_bools(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()], &[true]).unwrap();
    put(root, "tiny.bin", three);
    says(
        bin(root).unwrap_err(),
        &["tiny.bin: expected two images per pair: 3 images for 1 pairs"],
    );
    // pickle.dumps([True], protocol=2): not a pair of lists.
    put(root, "tiny.bin", b"\x80\x02]q\x00\x88a.");
    says(
        bin(root).unwrap_err(),
        &["tiny.bin: expected a pickled pair of two lists", "found 1 items"],
    );
    // pickle.dumps(([1], [True]), protocol=2): an int where an image belongs.
    put(root, "tiny.bin", b"\x80\x02]K\x01a]\x88a\x86.");
    says(
        bin(root).unwrap_err(),
        &["tiny.bin: image 0: expected a byte string (JPEG or PNG)"],
    );
    put(root, "tiny.bin", good);
    let d = bin(root).unwrap();
    says(d.get(1).unwrap_err(), &["tiny.bin: image 1: not a JPEG or PNG image"]);
}

fn pairs(root: &Path) -> visage_core::Error {
    let p = lfw::LfwPairsParams {
        root: root.into(),
        images: None,
        pairs: "pairs.txt".into(),
    };
    lfw::dataset(p, &ctx(Split::Test)).unwrap_err()
}

#[test]
fn lfw_pairs_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    says(pairs(root), &["pairs.txt: cannot read LFW's pairs.txt"]);
    for n in 1..=2 {
        image(root, &format!("Ann/Ann_{n:04}.jpg"));
        image(root, &format!("Bob/Bob_{n:04}.jpg"));
    }
    put(root, "pairs.txt", "1\t1\nAnn\t1\t2\nAnn\t1\tBob\n");
    says(
        pairs(root),
        &["pairs.txt, line 3: expected an image number as a number, found `Bob`"],
    );
    put(root, "pairs.txt", "1\t1\nAnn\t1\t2\nAnn\t1\tBob\t2\t3\n");
    says(
        pairs(root),
        &["line 3: expected 3 fields `name n1 n2` or 4 fields `name1 n1 name2 n2`, found 5"],
    );
    put(root, "pairs.txt", "1\t2\nAnn\t1\t2\nAnn\t1\tBob\t2\n");
    says(
        pairs(root),
        &["pairs.txt: the header promises 1 folds of 2 same and 2 different pairs (4), the file has 2"],
    );
    put(root, "pairs.txt", "1\t1\nAnn\t1\t3\nAnn\t1\tBob\t2\n");
    says(
        pairs(root),
        &["line 2: expected an image at", "Ann_0003.jpg, which is missing"],
    );
    put(root, "pairs.txt", "ten\t1\n");
    says(
        pairs(root),
        &["line 1: expected the fold count as a number, found `ten`"],
    );
}

fn folder(root: &Path) -> visage_core::Error {
    let p = identity_folder::IdentityFolderParams {
        root: root.into(),
        split_folders: false,
    };
    identity_folder::dataset(p, &ctx(Split::Train)).unwrap_err()
}

#[test]
fn identity_folder_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    says(folder(&root.join("none")), &["none: cannot list the identity folders"]);
    says(folder(root), &["expected one folder per identity, found none"]);
    image(root, "00001/1.jpg");
    put(root, "00002/notes.txt", "x");
    says(
        folder(root),
        &["00002: expected images (jpg, jpeg, png) of one identity, found none"],
    );
}

fn rec(root: &Path) -> visage_core::Result<visage_formats::table::Table> {
    let p = mxrec::MxRecParams {
        root: root.into(),
        name: "train".into(),
    };
    mxrec::dataset(p, &ctx(Split::Train))
}

/// A `.rec` of `records` and its `.idx`.
fn put_rec(root: &Path, records: &[Vec<u8>]) -> Vec<u8> {
    let (mut bytes, mut idx) = (vec![], String::new());
    for (key, r) in records.iter().enumerate() {
        idx += &format!("{key}\t{}\n", bytes.len());
        bytes.extend_from_slice(r);
    }
    put(root, "train.rec", &bytes);
    put(root, "train.idx", idx);
    bytes
}

#[test]
fn mxnet_rec_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    says(rec(root).unwrap_err(), &["train.idx: cannot read a RecordIO index"]);
    let header = mxrec::encode_record(&[3.0, 5.0], 0.0, 0, &[]).unwrap();
    let image = |label: f32| mxrec::encode_record(&[], label, 1, b"jpeg bytes").unwrap();
    // Identities 0..2 (records 3 and 4); an image labelled 2 is out of range.
    put_rec(root, &[header.clone(), image(0.0), image(2.0)]);
    says(
        rec(root).unwrap_err(),
        &["train.rec: record 2: expected an identity label 0..2 (id_end - id_start of record 0), found 2"],
    );
    let bytes = put_rec(root, &[header.clone(), image(0.0), image(1.0)]);
    assert_eq!(rec(root).unwrap().len(), 2);
    put(root, "train.rec", &bytes[..bytes.len() - 5]);
    says(
        rec(root).unwrap_err(),
        &["train.rec: record 2 at byte", "truncated: expected 34 bytes of payload"],
    );
    let mut bad = bytes.clone();
    bad[header.len()] = 0;
    put(root, "train.rec", &bad);
    says(
        rec(root).unwrap_err(),
        &["record 1 at byte 40: expected the RecordIO magic 0xced7230a, found 0xced72300"],
    );
    put(root, "train.rec", &bytes);
    put(root, "train.idx", "0\t0\n1\n");
    says(
        rec(root).unwrap_err(),
        &["train.idx, line 2: expected 2 fields (key, byte offset), found 1"],
    );
    put(root, "train.idx", "0\t0\n1\t40\n");
    says(
        rec(root).unwrap_err(),
        &["train.idx: expected record 2, which it does not list"],
    );
    put_rec(root, &[image(0.0)]);
    says(
        rec(root).unwrap_err(),
        &["record 0: expected the header record (flag 2, labels [id_start, id_end]), found flag 0"],
    );
    // A record's image is decoded only when asked for.
    put_rec(root, &[header, image(0.0), image(1.0)]);
    says(
        rec(root).unwrap().get(0).unwrap_err(),
        &["train.rec: record 1: not a JPEG or PNG image"],
    );
}

fn au_list(
    root: &Path,
    read: fn(AuListParams, &visage_core::dataset::DatasetContext) -> visage_core::Result<visage_formats::table::Table>,
) -> visage_core::Error {
    let p = AuListParams {
        root: root.into(),
        train: None,
        test: None,
    };
    read(p, &ctx(Split::Train)).unwrap_err()
}

#[test]
fn disfa_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let disfa = |root: &Path| au_list(root, au::disfa::dataset);
    says(disfa(root), &["train.csv: cannot read a DISFA-style AU CSV"]);
    image(root, "a.jpg");
    put(root, "train.csv", "path,au_1,au_2\n");
    says(
        disfa(root),
        &["train.csv, line 1: expected the header `img_path,au_1,...`"],
    );
    put(root, "train.csv", "img_path,au_1,AU2\n");
    says(
        disfa(root),
        &["line 1: expected unit columns `au_<number>`, found `AU2`"],
    );
    put(root, "train.csv", "img_path,au_1,au_2\na.jpg,1,0\na.jpg,1\n");
    says(
        disfa(root),
        &["line 3: expected 3 fields (img_path au_1 au_2), found 2"],
    );
    put(root, "train.csv", "img_path,au_1,au_2\na.jpg,1,2\n");
    says(disfa(root), &["line 2: expected AU2 as 0 or 1, found `2`"]);
    put(root, "train.csv", "img_path,au_1,au_2\nb.jpg,1,0\n");
    says(
        disfa(root),
        &["line 2: expected an image at", "b.jpg, which is missing"],
    );
}

#[test]
fn bp4d_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bp4d = |root: &Path| au_list(root, au::bp4d::dataset);
    says(bp4d(root), &["train.txt: cannot read a BP4D-style AU list"]);
    image(root, "a.jpg");
    put(root, "train.txt", "a.jpg AU1:1 AU2:-1\na.jpg\n");
    says(
        bp4d(root),
        &["train.txt, line 2: expected an image path and at least one `AU<n>:<1|-1>` field"],
    );
    put(root, "train.txt", "a.jpg AU1:1 AU2:0\n");
    says(bp4d(root), &["line 1: expected AU2 as 1 or -1, found `0`"]);
    put(root, "train.txt", "a.jpg AU1:1 AU2=-1\n");
    says(bp4d(root), &["line 1: expected `AU<n>:<1|-1>` fields, found `AU2=-1`"]);
    put(root, "train.txt", "a.jpg AU1:1 AU2:-1\na.jpg AU2:1 AU1:-1\n");
    says(
        bp4d(root),
        &["line 2: expected the units of line 1 in the same order (AU1 AU2), found AU2 AU1"],
    );
}

#[test]
fn a_written_file_cut_short_is_named() {
    // The writers' own output, truncated: the reader names file and line.
    let dir = tempfile::tempdir().unwrap();
    write("rafdb", dir.path(), &[Split::Test], Options::default());
    let list = dir.path().join(rafdb::LIST);
    let text = fs::read_to_string(&list).unwrap();
    fs::write(&list, &text[..text.len() - 3]).unwrap();
    says(
        raf_test(dir.path()),
        &["list_patition_label.txt, line 6: expected 2 fields"],
    );
}

fn raf_test(root: &Path) -> visage_core::Error {
    rafdb::dataset(rafdb::RafDbParams { root: root.into() }, &ctx(Split::Test)).unwrap_err()
}
