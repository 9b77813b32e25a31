//! A plugin library's ELF headers, checked before `dlopen`: the dynamic
//! loader maps the file's segments as they are declared, and touching a
//! mapped page past the end of a truncated file kills the process with
//! SIGBUS. A file whose headers describe bytes it does not have is refused
//! here with a message instead.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// ELF64 header size.
const EHDR: u64 = 64;
/// ELF64 program header size.
const PHDR: u64 = 56;
/// ELF64 section header size.
pub(crate) const SHDR: u64 = 64;
/// `e_type` of a shared object.
const ET_DYN: u16 = 3;
/// `p_type` of a loadable segment.
const PT_LOAD: u32 = 1;
/// `e_phnum` meaning "the count is in section header 0".
const PN_XNUM: u16 = 0xffff;

const EXPECTED: &str = "a 64-bit little-endian ELF shared library";

/// Checks that `path` is a regular file whose ELF64 little-endian header,
/// program-header segments and section-header table all lie within the
/// file. `Err` says what is wrong and what was expected.
pub fn check_shared_library(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        let kind = crate::config::load::file_kind(&meta);
        return Err(format!("it is {kind}, not a regular file; expected {EXPECTED}"));
    }
    let file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    check(&file, meta.len())
}

/// Little-endian reads at an offset of the file.
pub(crate) struct Reader<'f> {
    /// The file read.
    pub(crate) file: &'f File,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, offset: u64) -> Result<[u8; N], String> {
        let mut buf = [0u8; N];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| format!("cannot read {N} bytes at offset {offset}: {e}"))?;
        Ok(buf)
    }
    pub(crate) fn u16(&self, offset: u64) -> Result<u16, String> {
        self.bytes::<2>(offset).map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&self, offset: u64) -> Result<u32, String> {
        self.bytes::<4>(offset).map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&self, offset: u64) -> Result<u64, String> {
        self.bytes::<8>(offset).map(u64::from_le_bytes)
    }
}

/// `start + count * size`, or an error when that overflows.
fn end_of(start: u64, count: u64, size: u64, what: &str) -> Result<u64, String> {
    count
        .checked_mul(size)
        .and_then(|n| n.checked_add(start))
        .ok_or_else(|| format!("the {what} extends past any possible file (corrupt header)"))
}

fn check(file: &File, len: u64) -> Result<(), String> {
    if len == 0 {
        return Err(format!("the file is empty; expected {EXPECTED}"));
    }
    if len < EHDR {
        return Err(format!(
            "the file has {len} bytes, fewer than an ELF header's {EHDR}; expected {EXPECTED}"
        ));
    }
    let r = Reader { file };
    let ident = r.bytes::<16>(0)?;
    if ident[..4] != *b"\x7fELF" {
        return Err(format!(
            "not an ELF file (it does not start with \\x7fELF); expected {EXPECTED}"
        ));
    }
    if ident[4] != 2 || ident[5] != 1 {
        return Err(format!(
            "an ELF file of class {} and byte order {}; expected {EXPECTED}",
            ident[4], ident[5]
        ));
    }
    let e_type = r.u16(16)?;
    if e_type != ET_DYN {
        return Err(format!(
            "an ELF file of type {e_type}, not a shared object; expected {EXPECTED}"
        ));
    }
    let phoff = r.u64(32)?;
    let shoff = r.u64(40)?;
    let phentsize = r.u16(54)? as u64;
    let mut phnum = r.u16(56)? as u64;
    let shentsize = r.u16(58)? as u64;
    let mut shnum = r.u16(60)? as u64;
    let truncated = |what: String, end: u64| {
        Err(format!(
            "{what} ends at byte {end}, past the end of the file ({len} bytes): the file is truncated or corrupt; \
             expected {EXPECTED}"
        ))
    };
    // The section-header table, whose first entry may hold the real counts.
    if shoff != 0 {
        if shentsize < SHDR {
            return Err(format!(
                "section headers of {shentsize} bytes, fewer than ELF64's {SHDR}; expected {EXPECTED}"
            ));
        }
        let first_end = end_of(shoff, 1, shentsize, "section-header table")?;
        if first_end > len {
            return truncated("the section-header table".into(), first_end);
        }
        if shnum == 0 {
            shnum = r.u64(shoff + 32)?;
        }
        if phnum == PN_XNUM as u64 {
            phnum = r.u32(shoff + 44)? as u64;
        }
        let end = end_of(shoff, shnum, shentsize, "section-header table")?;
        if end > len {
            return truncated(format!("the section-header table ({shnum} entries)"), end);
        }
    }
    if phnum == 0 {
        return Err(format!("no program headers: nothing to load; expected {EXPECTED}"));
    }
    if phentsize < PHDR {
        return Err(format!(
            "program headers of {phentsize} bytes, fewer than ELF64's {PHDR}; expected {EXPECTED}"
        ));
    }
    let end = end_of(phoff, phnum, phentsize, "program-header table")?;
    if end > len {
        return truncated(format!("the program-header table ({phnum} entries)"), end);
    }
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = r.u32(at)?;
        let offset = r.u64(at + 8)?;
        let filesz = r.u64(at + 32)?;
        if p_type != PT_LOAD && filesz == 0 {
            continue;
        }
        let end = offset
            .checked_add(filesz)
            .ok_or_else(|| format!("segment {i} extends past any possible file (corrupt header)"))?;
        if end > len {
            let kind = if p_type == PT_LOAD {
                "PT_LOAD".to_string()
            } else {
                format!("type {p_type:#x}")
            };
            return truncated(format!("segment {i} ({kind}, bytes {offset}..{end})"), end);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 shared object: a header, one PT_LOAD segment covering
    /// `load` bytes from 0, and `sections` section headers at the end.
    fn elf(load: u64, sections: u16, size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&ET_DYN.to_le_bytes());
        b[32..40].copy_from_slice(&EHDR.to_le_bytes()); // phoff
        let shoff = if sections > 0 { 200u64 } else { 0 };
        b[40..48].copy_from_slice(&shoff.to_le_bytes());
        b[54..56].copy_from_slice(&(PHDR as u16).to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        b[58..60].copy_from_slice(&(SHDR as u16).to_le_bytes());
        b[60..62].copy_from_slice(&sections.to_le_bytes());
        let ph = EHDR as usize;
        b[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        b[ph + 32..ph + 40].copy_from_slice(&load.to_le_bytes());
        b
    }

    fn checked(bytes: &[u8]) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libx.so");
        std::fs::write(&path, bytes).unwrap();
        check_shared_library(&path)
    }

    #[test]
    fn a_whole_library_passes() {
        checked(&elf(400, 2, 400)).unwrap();
        checked(&elf(120, 0, 120)).unwrap();
    }

    #[test]
    fn anything_short_or_foreign_is_refused_with_a_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "the file is empty"),
            (b"\x7fELF".to_vec(), "fewer than an ELF header"),
            (vec![7u8; 100], "not an ELF file"),
            (
                elf(400, 2, 399),
                "segment 0 (PT_LOAD, bytes 0..400) ends at byte 400, past the end of the file (399 bytes)",
            ),
            (
                elf(120, 9, 400),
                "the section-header table (9 entries) ends at byte 776",
            ),
            (elf(u64::MAX, 0, 300), "past the end of the file (300 bytes)"),
            (
                elf(120, 0, 120)[..80].to_vec(),
                "the program-header table (1 entries) ends at byte 120",
            ),
        ];
        for (bytes, expected) in cases {
            let err = checked(&bytes).unwrap_err();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
            assert!(
                err.contains("expected a 64-bit little-endian ELF shared library"),
                "{err}"
            );
        }
        let mut big_endian = elf(400, 0, 400);
        big_endian[5] = 2;
        assert!(checked(&big_endian).unwrap_err().contains("byte order 2"));
        let mut executable = elf(400, 0, 400);
        executable[16] = 2;
        assert!(checked(&executable)
            .unwrap_err()
            .contains("type 2, not a shared object"));
        let dir = tempfile::tempdir().unwrap();
        let err = check_shared_library(dir.path()).unwrap_err();
        assert!(err.contains("it is a directory"), "{err}");
    }

    #[test]
    fn the_built_plugins_pass() {
        let exe = std::env::current_exe().unwrap();
        // target/release/deps/runner-... -> target/release
        let Some(dir) = exe.parent().and_then(Path::parent) else {
            return;
        };
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == std::env::consts::DLL_EXTENSION) {
                check_shared_library(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let bytes = std::fs::read(&path).unwrap();
                assert!(checked(&bytes[..bytes.len() / 2]).is_err(), "{}", path.display());
                seen += 1;
            }
        }
        eprintln!("{seen} built plugin(s) checked");
    }
}
