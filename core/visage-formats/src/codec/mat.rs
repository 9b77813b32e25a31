//! A minimal MATLAB Level 5 MAT-file writer: double matrices, character
//! row vectors and cell arrays of them (no structs, no compression), which
//! is all the AFLW2000-3D and AFLW files hold. Layout from MathWorks'
//! "MAT-File Format" (Level 5): a 128-byte header, then one `miMATRIX`
//! element per variable, each sub-element padded to 8 bytes.

use visage_core::Result;

use crate::error::ensure;

const MI_INT8: u32 = 1;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_DOUBLE: u32 = 9;
const MI_MATRIX: u32 = 14;

const MX_CELL: u32 = 1;
const MX_CHAR: u32 = 4;
const MX_DOUBLE: u32 = 6;

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
    /// A `rows x 1` cell array.
    Cell(Vec<Value>),
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
}
