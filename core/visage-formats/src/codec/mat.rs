//! A minimal MATLAB Level 5 MAT-file writer and reader.
//!
//! The writer writes double matrices, character row vectors and cell
//! arrays of them (no structs, no compression), which is all the
//! AFLW2000-3D and AFLW files hold. The reader ([`read`]) reads what MATLAB
//! (`save -v7`, `-v6`) and `scipy.io.savemat` write in little-endian byte
//! order: numeric arrays of any class stored in any numeric data type
//! (MATLAB stores integer-valued doubles as `miUINT8` and the like),
//! character arrays, cell arrays, `miCOMPRESSED` (zlib) variables and the
//! small data element format; structs, objects, sparse and complex arrays
//! are read as [`Value::Unsupported`]. Layout from MathWorks' "MAT-File
//! Format" (Level 5): a 128-byte header, then one `miMATRIX` element per
//! variable, each sub-element padded to 8 bytes.

use visage_core::Result;

use crate::error::ensure;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;

const MX_CELL: u32 = 1;
const MX_STRUCT: u32 = 2;
const MX_OBJECT: u32 = 3;
const MX_CHAR: u32 = 4;
const MX_SPARSE: u32 = 5;
const MX_DOUBLE: u32 = 6;
const MX_UINT64: u32 = 15;
const COMPLEX_FLAG: u32 = 0x0800;

/// A MATLAB value.
pub enum Value {
    /// A `rows x cols` double matrix, values in row-major order (converted
    /// to MATLAB's column-major order when written).
    Double {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// The `rows * cols` values, row after row.
        row_major: Vec<f64>,
    },
    /// A character row vector.
    Char(String),
    /// A `rows x 1` cell array (read: any cell array, items in MATLAB's
    /// column-major order).
    Cell(Vec<Value>),
    /// (Read only.) A value of a class this reader does not decode: its
    /// class name (`struct`, `sparse`, `complex`, ...).
    Unsupported(&'static str),
}

impl Value {
    /// A `rows x cols` matrix from row-major values.
    pub fn matrix(rows: usize, cols: usize, row_major: Vec<f64>) -> Value {
        Value::Double { rows, cols, row_major }
    }
}

/// One data element: tag (type, byte count) and the data, padded to 8.
fn element(ty: u32, data: &[u8]) -> Result<Vec<u8>> {
    ensure!(data.len() <= u32::MAX as usize, "a MAT-file element over 4 GiB");
    let mut out = Vec::with_capacity(8 + data.len() + 7);
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(8) * 8, 0);
    Ok(out)
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The `miMATRIX` element of one variable (or cell item, with an empty name).
fn matrix(name: &str, value: &Value) -> Result<Vec<u8>> {
    let (class, dims, payload) = match value {
        Value::Double { rows, cols, row_major } => {
            ensure!(
                row_major.len() == rows * cols,
                "MAT variable `{name}`: {} values for {rows}x{cols}",
                row_major.len()
            );
            let mut bytes = Vec::with_capacity(row_major.len() * 8);
            for c in 0..*cols {
                for r in 0..*rows {
                    bytes.extend_from_slice(&row_major[r * cols + c].to_le_bytes());
                }
            }
            (MX_DOUBLE, [*rows, *cols], element(MI_DOUBLE, &bytes)?)
        }
        Value::Char(text) => {
            let units: Vec<u16> = text.encode_utf16().collect();
            let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
            (MX_CHAR, [1, units.len()], element(MI_UINT16, &bytes)?)
        }
        Value::Cell(items) => {
            let mut bytes = vec![];
            for item in items {
                bytes.extend(matrix("", item)?);
            }
            (MX_CELL, [items.len(), 1], bytes)
        }
        Value::Unsupported(class) => {
            crate::error::bail!("MAT variable `{name}`: a {class} value cannot be written")
        }
    };
    ensure!(
        dims.iter().all(|&d| d <= i32::MAX as usize),
        "MAT variable `{name}` is too large"
    );
    let mut body = element(MI_UINT32, &u32s(&[class, 0]))?;
    body.extend(element(MI_INT32, &u32s(&[dims[0] as u32, dims[1] as u32]))?);
    body.extend(element(MI_INT8, name.as_bytes())?);
    body.extend(payload);
    element(MI_MATRIX, &body)
}

/// A whole MAT-file with `vars` in order.
pub fn write(vars: &[(&str, Value)]) -> Result<Vec<u8>> {
    let mut text = format!(
        "MATLAB 5.0 MAT-file, Platform: visage, Created by: runner export {}",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();
    text.resize(116, b' ');
    let mut out = text;
    out.extend_from_slice(&[0; 8]); // no subsystem data
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM"); // 'MI' written little-endian
    for (name, value) in vars {
        ensure!(
            !name.is_empty()
                && name.len() <= 63
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && name.starts_with(|c: char| c.is_ascii_alphabetic()),
            "`{name}` is not a MATLAB variable name"
        );
        out.extend(matrix(name, value)?);
    }
    Ok(out)
}

/// A MAT-file read back: its variables, in file order.
#[derive(Debug)]
pub struct MatFile {
    vars: Vec<(String, Value)>,
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Double { rows, cols, .. } => write!(f, "{rows}x{cols} numeric matrix"),
            Value::Char(text) => write!(f, "char array {text:?}"),
            Value::Cell(items) => write!(f, "cell array of {} items", items.len()),
            Value::Unsupported(class) => write!(f, "{class} array"),
        }
    }
}

impl MatFile {
    /// The variable `name`, if the file has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The variable names, in file order.
    pub fn names(&self) -> Vec<&str> {
        self.vars.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The variable `name`, or an error naming it and the variables the
    /// file has.
    pub fn value(&self, name: &str) -> Result<&Value> {
        match self.get(name) {
            Some(v) => Ok(v),
            None => crate::error::bail!(
                "no variable `{name}` (the file has: {})",
                if self.vars.is_empty() {
                    "none".to_string()
                } else {
                    self.names().join(", ")
                }
            ),
        }
    }

    /// The numeric matrix `name` as `(rows, cols, row-major values)`.
    pub fn matrix(&self, name: &str) -> Result<(usize, usize, Vec<f64>)> {
        match self.value(name)? {
            Value::Double { rows, cols, row_major } => Ok((*rows, *cols, row_major.clone())),
            other => crate::error::bail!("variable `{name}`: expected a numeric matrix, found a {other:?}"),
        }
    }
}

/// Reads a whole little-endian Level 5 MAT-file. Errors say which variable
/// (its number from 1 and, once read, its name) and which byte offset is
/// wrong and what was expected there; the caller adds the file's name.
pub fn read(bytes: &[u8]) -> Result<MatFile> {
    ensure!(
        bytes.len() >= 128,
        "truncated MAT-file: {} bytes, expected at least the 128-byte header",
        bytes.len()
    );
    let text = String::from_utf8_lossy(&bytes[..116]);
    ensure!(
        !text.starts_with("MATLAB 7.3"),
        "a MAT v7.3 (HDF5) file; only Level 5 MAT-files (save -v7 or -v6) are read"
    );
    match &bytes[126..128] {
        b"IM" => {}
        b"MI" => crate::error::bail!("a big-endian MAT-file; only little-endian files are read"),
        other => crate::error::bail!(
            "not a Level 5 MAT-file: bytes 126..128 are {other:?}, expected the endian indicator `IM`"
        ),
    }
    let mut vars = vec![];
    let mut at = Reader { bytes, pos: 128 };
    while at.pos < bytes.len() {
        let number = vars.len() + 1;
        let start = at.pos;
        let var = top_level(&mut at)
            .map_err(|e| visage_core::Error::msg(format!("variable {number} (element at byte {start}): {e}")))?;
        vars.extend(var);
    }
    Ok(MatFile { vars })
}

/// A position in a byte buffer whose reads are checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes, or an error naming `what` needed them.
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let left = self.bytes.len() - self.pos;
        ensure!(
            n <= left,
            "truncated at byte {}: {what} needs {n} bytes, {left} left",
            self.pos
        );
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// One data element: `(type, data)`, in the normal or the small format,
    /// with the reader moved past its padding (8 bytes, unless `padded` is
    /// false: top-level elements are not padded).
    fn element(&mut self, what: &str, padded: bool) -> Result<(u32, &'a [u8])> {
        let first = self.u32(what)?;
        if first >> 16 != 0 {
            // Small data element: type and size in one word, data in the next 4 bytes.
            let (ty, n) = (first & 0xFFFF, (first >> 16) as usize);
            ensure!(n <= 4, "{what}: a small data element of {n} bytes (at most 4)");
            let data = self.take(4, what)?;
            return Ok((ty, &data[..n]));
        }
        let n = self.u32(what)? as usize;
        let data = self.take(n, what)?;
        if padded {
            let pad = n.div_ceil(8) * 8 - n;
            let left = self.bytes.len() - self.pos;
            self.pos += pad.min(left);
        }
        Ok((first, data))
    }
}

/// One top-level element: a variable `(name, value)`, or `None` for an
/// element that is not one (MATLAB writes none; skipped).
fn top_level(at: &mut Reader<'_>) -> Result<Option<(String, Value)>> {
    let (ty, data) = at.element("the element", false)?;
    match ty {
        MI_MATRIX => matrix_body(data, 0).map(Some),
        MI_COMPRESSED => {
            let mut inflated = vec![];
            std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(data), &mut inflated)
                .map_err(|e| visage_core::Error::msg(format!("a corrupt or truncated compressed variable: {e}")))?;
            let mut inner = Reader {
                bytes: &inflated,
                pos: 0,
            };
            let (ty, data) = inner.element("the compressed element", false)?;
            ensure!(
                ty == MI_MATRIX,
                "the compressed element holds a data element of type {ty}, expected miMATRIX (14)"
            );
            matrix_body(data, 0).map(Some)
        }
        _ => {
            tracing::debug!(ty, "skipping a top-level MAT element that is not a variable");
            Ok(None)
        }
    }
}

/// How deep cell arrays may nest (a hostile file could otherwise exhaust
/// the stack).
const MAX_DEPTH: usize = 32;

/// The body of an `miMATRIX` element at cell depth `depth`: `(name, value)`.
fn matrix_body(data: &[u8], depth: usize) -> Result<(String, Value)> {
    ensure!(depth <= MAX_DEPTH, "cell arrays nested more than {MAX_DEPTH} deep");
    if data.is_empty() {
        // An empty array (MATLAB writes empty cell items so).
        return Ok((String::new(), Value::matrix(0, 0, vec![])));
    }
    let mut at = Reader { bytes: data, pos: 0 };
    let (ty, flags) = at.element("the array flags", true)?;
    ensure!(
        ty == MI_UINT32 && flags.len() == 8,
        "array flags of type {ty} and {} bytes, expected miUINT32 (6) of 8 bytes",
        flags.len()
    );
    let flags = u32::from_le_bytes([flags[0], flags[1], flags[2], flags[3]]);
    let class = flags & 0xFF;
    let (ty, dims) = at.element("the dimensions", true)?;
    ensure!(
        ty == MI_INT32 && dims.len() >= 8 && dims.len() % 4 == 0,
        "dimensions of type {ty} and {} bytes, expected miINT32 with at least 2 values",
        dims.len()
    );
    let dims: Vec<usize> = dims
        .chunks(4)
        .map(|d| i32::from_le_bytes([d[0], d[1], d[2], d[3]]).max(0) as usize)
        .collect();
    let (_, name) = at.element("the array name", true)?;
    let name = String::from_utf8_lossy(name).into_owned();
    let named = |e: visage_core::Error| visage_core::Error::msg(format!("`{name}`: {e}"));
    let count = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| named(visage_core::Error::msg(format!("dimensions {dims:?} overflow"))))?;
    let (rows, cols) = (dims[0], count.checked_div(dims[0]).unwrap_or(0));
    let value = match class {
        MX_CELL => {
            let mut items = Vec::with_capacity(count.min(1 << 20));
            for i in 0..count {
                let (ty, item) = at.element(&format!("cell item {}", i + 1), true).map_err(named)?;
                ensure!(
                    ty == MI_MATRIX,
                    "`{name}`: cell item {} is of type {ty}, expected miMATRIX (14)",
                    i + 1
                );
                items.push(matrix_body(item, depth + 1).map_err(named)?.1);
            }
            Value::Cell(items)
        }
        MX_CHAR => {
            let (ty, chars) = at.element("the characters", true).map_err(named)?;
            let text = characters(ty, chars).map_err(named)?;
            ensure!(
                rows <= 1 || text.chars().count() == 0,
                "`{name}`: a {rows}x{cols} char array; only character row vectors are read"
            );
            Value::Char(text)
        }
        MX_STRUCT => Value::Unsupported("struct"),
        MX_OBJECT => Value::Unsupported("object"),
        MX_SPARSE => Value::Unsupported("sparse"),
        _ if flags & COMPLEX_FLAG != 0 => Value::Unsupported("complex"),
        MX_DOUBLE..=MX_UINT64 => {
            let (ty, real) = at.element("the values", true).map_err(named)?;
            let column_major = numbers(ty, real).map_err(named)?;
            ensure!(
                column_major.len() == count,
                "`{name}`: {} values for dimensions {dims:?}, expected {count}",
                column_major.len()
            );
            let mut row_major = vec![0.0; count];
            for c in 0..cols {
                for r in 0..rows {
                    row_major[r * cols + c] = column_major[c * rows + r];
                }
            }
            Value::Double { rows, cols, row_major }
        }
        other => crate::error::bail!("`{name}`: unknown array class {other}"),
    };
    Ok((name, value))
}

/// The values of a numeric data element as doubles.
fn numbers(ty: u32, data: &[u8]) -> Result<Vec<f64>> {
    let size = match ty {
        MI_INT8 | MI_UINT8 => 1,
        MI_INT16 | MI_UINT16 => 2,
        MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
        MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
        other => crate::error::bail!("values of data type {other}, expected a numeric type"),
    };
    ensure!(
        data.len() % size == 0,
        "{} bytes of values, not a multiple of {size}",
        data.len()
    );
    Ok(data
        .chunks(size)
        .map(|b| match ty {
            MI_INT8 => b[0] as i8 as f64,
            MI_UINT8 => b[0] as f64,
            MI_INT16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            MI_UINT16 => u16::from_le_bytes([b[0], b[1]]) as f64,
            MI_INT32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            MI_UINT32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            MI_SINGLE => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            MI_INT64 => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64,
            MI_UINT64 => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64,
            _ => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

/// The text of a character data element.
fn characters(ty: u32, data: &[u8]) -> Result<String> {
    match ty {
        MI_UINT16 | MI_UTF16 => {
            ensure!(data.len() % 2 == 0, "{} bytes of UTF-16 characters", data.len());
            let units: Vec<u16> = data.chunks(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
            Ok(String::from_utf16_lossy(&units))
        }
        MI_UTF8 | MI_UINT8 | MI_INT8 => Ok(String::from_utf8_lossy(data).into_owned()),
        other => crate::error::bail!("characters of data type {other}, expected miUINT16 or miUTF8"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_a_matrix_by_hand() {
        let bytes = write(&[("a", Value::matrix(1, 2, vec![1.0, 2.0]))]).unwrap();
        assert_eq!(bytes.len(), 128 + 8 + 16 + 16 + 16 + 24);
        assert_eq!(&bytes[124..128], &[0, 1, b'I', b'M']);
        // miMATRIX tag with the body's length.
        assert_eq!(&bytes[128..136], &[14, 0, 0, 0, 72, 0, 0, 0]);
        // Array flags: double class.
        assert_eq!(&bytes[136..152], &[6, 0, 0, 0, 8, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        // Dimensions 1x2, name "a" padded.
        assert_eq!(&bytes[152..168], &[5, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&bytes[168..184], &[1, 0, 0, 0, 1, 0, 0, 0, b'a', 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[192..200], &1.0f64.to_le_bytes());
        assert!(write(&[("1x", Value::Char("x".into()))]).is_err());
    }

    fn sample_file() -> Vec<u8> {
        write(&[
            ("m", Value::matrix(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
            (
                "names",
                Value::Cell(vec![Value::Char("ab".into()), Value::Char("é".into())]),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn reads_back_what_it_writes() {
        let file = read(&sample_file()).unwrap();
        assert_eq!(file.names(), ["m", "names"]);
        assert_eq!(file.matrix("m").unwrap(), (2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        match file.get("names") {
            Some(Value::Cell(items)) => {
                assert!(matches!(&items[..], [Value::Char(a), Value::Char(b)] if a == "ab" && b == "é"))
            }
            other => panic!("{other:?}"),
        }
        let err = file.matrix("names").unwrap_err().to_string();
        assert!(
            err.contains("expected a numeric matrix, found a cell array of 2 items"),
            "{err}"
        );
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let bytes = sample_file();
        for len in 0..bytes.len() {
            let _ = read(&bytes[..len]);
        }
        for at in 128..bytes.len() {
            for value in [0u8, 1, 0x7F, 0xFF] {
                let mut damaged = bytes.clone();
                damaged[at] = value;
                let _ = read(&damaged);
            }
        }
        let err = read(&bytes[..bytes.len() - 1]).unwrap_err().to_string();
        // `m`: 8 (tag) + 16 (flags) + 16 (dims) + 16 (name) + 8 + 6 * 8 = 112
        // bytes after the 128-byte header.
        assert_eq!(
            err,
            "variable 2 (element at byte 240): truncated at byte 248: the element needs 176 bytes, 175 left"
        );
    }
}
