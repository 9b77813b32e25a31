//! A minimal Python pickle writer (protocol 4) for what verification `.bin`
//! files hold: a tuple of (list of byte strings, list of bools).

use visage_core::Result;

use crate::error::ensure;

const PROTO: u8 = 0x80;
const EMPTY_LIST: u8 = b']';
const MARK: u8 = b'(';
const APPENDS: u8 = b'e';
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const TUPLE2: u8 = 0x86;
const STOP: u8 = b'.';

/// Items per `APPENDS`, as Python's own pickler batches them.
const BATCH: usize = 1000;

/// `pickle.dumps((blobs, flags), protocol=4)` up to memo and framing, which
/// are optional: `pickle.load` reads it back as `([bytes, ...], [bool, ...])`.
pub fn list_of_bytes_and_bools(blobs: &[Vec<u8>], flags: &[bool]) -> Result<Vec<u8>> {
    let mut out = vec![PROTO, 4, EMPTY_LIST];
    for chunk in blobs.chunks(BATCH) {
        out.push(MARK);
        for blob in chunk {
            if blob.len() < 256 {
                out.push(SHORT_BINBYTES);
                out.push(blob.len() as u8);
            } else {
                ensure!(
                    blob.len() <= u32::MAX as usize,
                    "an image of {} bytes is too large",
                    blob.len()
                );
                out.push(BINBYTES);
                out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(blob);
        }
        out.push(APPENDS);
    }
    out.push(EMPTY_LIST);
    for chunk in flags.chunks(BATCH) {
        out.push(MARK);
        out.extend(chunk.iter().map(|&f| if f { NEWTRUE } else { NEWFALSE }));
        out.push(APPENDS);
    }
    out.extend_from_slice(&[TUPLE2, STOP]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pythons_opcodes() {
        // pickletools.dis of the hand-written stream, checked by hand:
        // PROTO 4, EMPTY_LIST, MARK, SHORT_BINBYTES b'ab', APPENDS,
        // EMPTY_LIST, MARK, NEWTRUE, NEWFALSE, APPENDS, TUPLE2, STOP.
        let bytes = list_of_bytes_and_bools(&[b"ab".to_vec()], &[true, false]).unwrap();
        assert_eq!(
            bytes,
            [0x80, 4, b']', b'(', b'C', 2, b'a', b'b', b'e', b']', b'(', 0x88, 0x89, b'e', 0x86, b'.']
        );
        let long = list_of_bytes_and_bools(&[vec![7; 300]], &[]).unwrap();
        assert_eq!(&long[3..9], &[b'(', b'B', 44, 1, 0, 0]);
    }
}
