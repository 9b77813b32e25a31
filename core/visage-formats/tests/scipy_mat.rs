//! The MAT v5 reader against `scipy.io.savemat` (uncompressed and
//! compressed), with the reference venv of `scripts/env.sh`
//! (`visage_ensure_reference` installs scipy).

use std::path::Path;
use std::process::Command;

use visage_formats::codec::mat::{read, Value};

const SCRIPT: &str = r#"
import sys
import numpy as np
import scipy.io
pt2d = np.arange(136, dtype=np.float64).reshape(2, 68) / 4.0 + 0.5
data = {
    "Pose_Para": np.array([[0.1, -0.25, 1.5, 7, 8, 9, 10]]),
    "pt2d": pt2d,
    "small": np.uint8([[3, 250]]),
    "ints": np.int32([[-7], [9]]),
    "single": np.float32([[0.5, 1.25, -2]]),
    "nameList": np.array([["flickr/0/image00002.jpg"], ["flickr/3/image40000.jpg"]], dtype=object),
    "title": "AFLW",
    "st": {"a": 1.0},
}
scipy.io.savemat(sys.argv[1] + "/plain.mat", data)
scipy.io.savemat(sys.argv[1] + "/zipped.mat", data, do_compression=True)
"#;

fn python(dir: &Path) {
    let venv = std::env::var("VIRTUAL_ENV").expect("VIRTUAL_ENV (run under scripts/env.sh visage_env)");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .args(["-c", SCRIPT, dir.to_str().unwrap()])
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reads_scipy_savemat() {
    let dir = tempfile::tempdir().unwrap();
    python(dir.path());
    for name in ["plain.mat", "zipped.mat"] {
        let file = read(&std::fs::read(dir.path().join(name)).unwrap()).unwrap();
        let (r, c, pose) = file.matrix("Pose_Para").unwrap();
        assert_eq!((r, c), (1, 7));
        assert_eq!(pose, [0.1, -0.25, 1.5, 7.0, 8.0, 9.0, 10.0]);
        let (r, c, pt) = file.matrix("pt2d").unwrap();
        assert_eq!((r, c), (2, 68));
        // Row-major: row 0 is x, row 1 is y; value k is k / 4 + 0.5.
        assert_eq!(pt[1], 0.75);
        assert_eq!(pt[68], 68.0 / 4.0 + 0.5);
        assert_eq!(file.matrix("small").unwrap(), (1, 2, vec![3.0, 250.0]));
        assert_eq!(file.matrix("ints").unwrap(), (2, 1, vec![-7.0, 9.0]));
        assert_eq!(file.matrix("single").unwrap(), (1, 3, vec![0.5, 1.25, -2.0]));
        match file.get("nameList") {
            Some(Value::Cell(items)) => {
                let names: Vec<&str> = items
                    .iter()
                    .map(|v| match v {
                        Value::Char(s) => s.as_str(),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                assert_eq!(names, ["flickr/0/image00002.jpg", "flickr/3/image40000.jpg"]);
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(matches!(file.get("title"), Some(Value::Char(t)) if t == "AFLW"));
        assert!(matches!(file.get("st"), Some(Value::Unsupported("struct"))));
    }
    // A compressed file cut short: the zlib stream fails, named by variable.
    let bytes = std::fs::read(dir.path().join("zipped.mat")).unwrap();
    let err = read(&bytes[..bytes.len() - 10]).unwrap_err().to_string();
    assert!(err.contains("(element at byte") && err.contains("truncated"), "{err}");
}
