//! NumPy's `.npz` archives: a zip of `<name>.npy` arrays, as `numpy.savez`
//! writes them (stored, not compressed); `numpy.savez_compressed`'s
//! deflated entries are read too.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use visage_core::{Error, Result};

use crate::codec::npy::Npy;
use crate::error::{bail, io_error, Context};

/// The `.npz` bytes of `arrays` (`numpy.load` gives them back by name).
pub fn write(arrays: &[(&str, &Npy)]) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::FileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(arrays.iter().any(|(_, a)| a.data.len() > u32::MAX as usize / 2));
    for (name, array) in arrays {
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| Error::msg(format!("npz entry `{name}`: {e}")))?;
        zip.write_all(&array.encode()?)
            .map_err(|e| Error::msg(format!("npz entry `{name}`: {e}")))?;
    }
    let bytes = zip
        .finish()
        .map_err(|e| Error::msg(format!("finishing the npz archive: {e}")))?;
    Ok(bytes.into_inner())
}

/// Every array of the `.npz` file at `path`, by name (without `.npy`), in
/// archive order. Errors name the file and the entry.
pub fn read(path: &Path) -> Result<Vec<(String, Npy)>> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, "cannot open", e))?;
    let mut zip = match zip::ZipArchive::new(file) {
        Ok(zip) => zip,
        Err(e) => bail!(
            "{}: not a readable .npz (zip) archive, truncated or damaged: {e}",
            path.display()
        ),
    };
    let mut arrays = vec![];
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(entry) => entry,
            Err(e) => bail!("{}: entry {}: {e}", path.display(), i + 1),
        };
        let name = entry.name().to_string();
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 24) as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| Error::msg(format!("{}: entry `{name}`: {e}", path.display())))?;
        let array = Npy::decode(&bytes).with_context(|| format!("{}: entry `{name}`", path.display()))?;
        arrays.push((name.trim_end_matches(".npy").to_string(), array));
    }
    Ok(arrays)
}
