//! NumPy's `.npy` array format (version 1.0 written; 1.0, 2.0 and 3.0
//! read): the magic `\x93NUMPY`, a version, a little-endian header length,
//! a Python dict literal `{'descr': '<f8', 'fortran_order': False,
//! 'shape': (2, 3), }` padded with spaces to a multiple of 64 bytes and
//! ending in a newline, then the values in C order. Arrays are kept as
//! their raw bytes with the type string; [`Npy::floats`] and
//! [`Npy::bytes`] give the values.

use visage_core::Result;

use crate::error::{bail, ensure};

const MAGIC: &[u8] = b"\x93NUMPY";

/// One array: its NumPy type string, shape and raw little-endian values in
/// C order.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    /// NumPy's type string: `|u1`, `<f8`, `<f4`, `<i8`, ...
    pub descr: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// The values' bytes, C order.
    pub data: Vec<u8>,
}

/// The byte size of one value of `descr`, for the types read.
fn item_size(descr: &str) -> Result<usize> {
    Ok(match descr {
        "|u1" | "|i1" | "|b1" => 1,
        "<u2" | "<i2" => 2,
        "<f4" | "<i4" | "<u4" => 4,
        "<f8" | "<i8" | "<u8" => 8,
        other => bail!("array type `{other}`: expected a little-endian number type (|u1, <f4, <f8, <i4, <i8, ...)"),
    })
}

impl Npy {
    /// A uint8 array.
    pub fn u8(shape: Vec<usize>, values: Vec<u8>) -> Npy {
        Npy {
            descr: "|u1".into(),
            shape,
            data: values,
        }
    }

    /// A float64 array.
    pub fn f64(shape: Vec<usize>, values: &[f64]) -> Npy {
        Npy {
            descr: "<f8".into(),
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// Number of values the shape holds.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values of a uint8 array.
    pub fn bytes(&self) -> Result<&[u8]> {
        ensure!(
            self.descr == "|u1",
            "array of type `{}`, expected uint8 (`|u1`)",
            self.descr
        );
        Ok(&self.data)
    }

    /// The values of a numeric array as doubles.
    pub fn floats(&self) -> Result<Vec<f64>> {
        let size = item_size(&self.descr)?;
        ensure!(
            self.data.len() % size == 0,
            "{} bytes of `{}` values, not a multiple of {size}",
            self.data.len(),
            self.descr
        );
        Ok(self
            .data
            .chunks(size)
            .map(|b| {
                let mut w = [0u8; 8];
                w[..size].copy_from_slice(b);
                match self.descr.as_str() {
                    "|u1" | "|b1" => b[0] as f64,
                    "|i1" => b[0] as i8 as f64,
                    "<u2" => u16::from_le_bytes([w[0], w[1]]) as f64,
                    "<i2" => i16::from_le_bytes([w[0], w[1]]) as f64,
                    "<f4" => f32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64,
                    "<i4" => i32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64,
                    "<u4" => u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64,
                    "<i8" => i64::from_le_bytes(w) as f64,
                    "<u8" => u64::from_le_bytes(w) as f64,
                    _ => f64::from_le_bytes(w),
                }
            })
            .collect())
    }

    /// The `.npy` bytes (version 1.0).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let size = item_size(&self.descr)?;
        ensure!(
            self.data.len() == self.len() * size,
            "{} bytes for shape {:?} of `{}`",
            self.data.len(),
            self.shape,
            self.descr
        );
        let shape = match self.shape.as_slice() {
            [n] => format!("({n},)"),
            dims => format!(
                "({})",
                dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
            ),
        };
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.descr
        );
        let total = (MAGIC.len() + 4 + header.len() + 1).div_ceil(64) * 64;
        while MAGIC.len() + 4 + header.len() + 1 < total {
            header.push(' ');
        }
        header.push('\n');
        ensure!(header.len() <= u16::MAX as usize, "a .npy header too long");
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.data);
        Ok(out)
    }

    /// Reads `.npy` bytes. Errors say what was expected where.
    pub fn decode(bytes: &[u8]) -> Result<Npy> {
        ensure!(
            bytes.len() >= 10 && bytes.starts_with(MAGIC),
            "not a .npy array: expected the magic `\\x93NUMPY` and a version ({} bytes)",
            bytes.len()
        );
        let (len, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 => {
                ensure!(bytes.len() >= 12, "truncated .npy header: {} bytes", bytes.len());
                (
                    u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                    12,
                )
            }
            v => bail!(".npy version {v}.{}, expected 1.0, 2.0 or 3.0", bytes[7]),
        };
        ensure!(
            bytes.len() >= start + len,
            "truncated .npy header: expected {len} header bytes, {} left",
            bytes.len() - start
        );
        let header = String::from_utf8_lossy(&bytes[start..start + len]);
        let descr = quoted_after(&header, "'descr':")?;
        let fortran = header
            .split("'fortran_order':")
            .nth(1)
            .map(|rest| rest.trim_start().starts_with("True"));
        ensure!(
            fortran == Some(false),
            ".npy header `{}`: expected 'fortran_order': False",
            header.trim()
        );
        let shape = shape_in(&header)?;
        let size = item_size(&descr)?;
        let count = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(size));
        let Some(expected) = count else {
            bail!(".npy shape {shape:?} is too large")
        };
        let data = &bytes[start + len..];
        ensure!(
            data.len() == expected,
            "truncated .npy data: shape {shape:?} of `{descr}` needs {expected} bytes, found {}",
            data.len()
        );
        Ok(Npy {
            descr,
            shape,
            data: data.to_vec(),
        })
    }
}

/// The quoted string after `key` in the header dict.
fn quoted_after(header: &str, key: &str) -> Result<String> {
    let rest = header.split(key).nth(1).map(str::trim_start);
    let value = rest.and_then(|r| {
        let q = r.chars().next().filter(|&c| c == '\'' || c == '"')?;
        r[1..].split(q).next().map(str::to_string)
    });
    match value {
        Some(v) => Ok(v),
        None => bail!(".npy header `{}`: expected a {key} 'type' entry", header.trim()),
    }
}

/// The shape tuple of the header dict.
fn shape_in(header: &str) -> Result<Vec<usize>> {
    let inner = header
        .split("'shape':")
        .nth(1)
        .and_then(|r| r.trim_start().strip_prefix('('))
        .and_then(|r| r.split(')').next());
    let Some(inner) = inner else {
        bail!(".npy header `{}`: expected a 'shape': (...) entry", header.trim())
    };
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| visage_core::Error::msg(format!(".npy shape ({inner}): `{d}` is not a dimension")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_as_numpy_writes_it() {
        // numpy.save of np.zeros((2, 3), np.uint8): the header below, padded to 128 - 10 bytes.
        let bytes = Npy::u8(vec![2, 3], vec![0, 1, 2, 3, 4, 5]).encode().unwrap();
        let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(&bytes[..10], b"\x93NUMPY\x01\x00\x76\x00");
        assert_eq!(&bytes[10..10 + header.len()], header.as_bytes());
        assert_eq!(bytes.len(), 128 + 6);
        assert_eq!(bytes[127], b'\n');
        let back = Npy::decode(&bytes).unwrap();
        assert_eq!(back.shape, [2, 3]);
        assert_eq!(back.bytes().unwrap(), [0, 1, 2, 3, 4, 5]);
        let one = Npy::f64(vec![2], &[1.5, -2.0]).encode().unwrap();
        assert!(String::from_utf8_lossy(&one).contains("'shape': (2,), }"));
        assert_eq!(Npy::decode(&one).unwrap().floats().unwrap(), [1.5, -2.0]);
        let err = Npy::decode(&bytes[..bytes.len() - 1]).unwrap_err().to_string();
        assert!(err.contains("needs 6 bytes, found 5"), "{err}");
    }
}
