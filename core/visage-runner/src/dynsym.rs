//! The names a plugin library's dynamic symbol table defines, read from the
//! file. The host finds a plugin's declaration among them: its symbol is
//! named after the plugin (`VISAGE_PLUGIN_<name>`, see
//! `visage_core::plugin`), and `dlsym` can only look up a name it is given.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::elf::{Reader, SHDR};

/// `sh_type` of the dynamic symbol table.
const SHT_DYNSYM: u32 = 11;
/// ELF64 symbol size.
const SYM: usize = 24;
/// `st_shndx` of an undefined (imported) symbol.
const SHN_UNDEF: u16 = 0;

/// The symbols of the dynamic symbol table of the ELF64 shared library
/// `path` that the library defines (not those it imports) and whose names
/// start with `prefix`, in table order. A library without section headers
/// or without a dynamic symbol table defines none. The headers must have
/// passed [`crate::elf::check_shared_library`]; `Err` says what part of
/// the table lies outside the file.
pub fn defined_with_prefix(path: &Path, prefix: &str) -> Result<Vec<String>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let len = file.metadata().map_err(|e| format!("cannot read it: {e}"))?.len();
    let r = Reader { file: &file };
    let shoff = r.u64(40)?;
    if shoff == 0 {
        return Ok(vec![]);
    }
    let shentsize = u64::from(r.u16(58)?).max(SHDR);
    let mut shnum = u64::from(r.u16(60)?);
    if shnum == 0 {
        shnum = r.u64(shoff + 32)?;
    }
    let section = |i: u64| Section::read(&r, shoff + i * shentsize);
    for i in 0..shnum {
        let dynsym = section(i)?;
        if dynsym.kind != SHT_DYNSYM {
            continue;
        }
        if u64::from(dynsym.link) >= shnum {
            return Err(format!(
                "the dynamic symbol table (section {i}) names string table section {}, but there are {shnum} sections",
                dynsym.link
            ));
        }
        let symbols = dynsym.bytes(&file, len, &format!("the dynamic symbol table (section {i})"))?;
        let strings = section(u64::from(dynsym.link))?.bytes(&file, len, "its string table")?;
        return names(&symbols, &strings, prefix.as_bytes());
    }
    Ok(vec![])
}

/// The fields of a section header the reader needs.
struct Section {
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

impl Section {
    fn read(r: &Reader<'_>, at: u64) -> Result<Section, String> {
        Ok(Section {
            kind: r.u32(at + 4)?,
            offset: r.u64(at + 24)?,
            size: r.u64(at + 32)?,
            link: r.u32(at + 40)?,
        })
    }

    /// The section's bytes; `what` names it in the error when they lie
    /// past the end of the file (`len` bytes).
    fn bytes(&self, file: &File, len: u64, what: &str) -> Result<Vec<u8>, String> {
        let end = self.offset.checked_add(self.size).filter(|&end| end <= len);
        let Some(end) = end else {
            return Err(format!(
                "{what} (bytes {}.. of {}) ends past the end of the file ({len} bytes): the file is truncated or corrupt",
                self.offset, self.size
            ));
        };
        let mut buf = vec![0u8; (end - self.offset) as usize];
        file.read_exact_at(&mut buf, self.offset)
            .map_err(|e| format!("cannot read {what} at offset {}: {e}", self.offset))?;
        Ok(buf)
    }
}

/// The defined symbols of `symbols` (ELF64 entries) whose names in
/// `strings` start with `prefix`.
fn names(symbols: &[u8], strings: &[u8], prefix: &[u8]) -> Result<Vec<String>, String> {
    let mut out = vec![];
    for (i, symbol) in symbols.chunks_exact(SYM).enumerate() {
        let name = u32::from_le_bytes([symbol[0], symbol[1], symbol[2], symbol[3]]) as usize;
        let shndx = u16::from_le_bytes([symbol[6], symbol[7]]);
        if shndx == SHN_UNDEF {
            continue;
        }
        let Some(rest) = strings.get(name..) else {
            return Err(format!(
                "dynamic symbol {i} names string offset {name}, past its string table's {} bytes",
                strings.len()
            ));
        };
        let text = rest.split(|&b| b == 0).next().unwrap_or_default();
        if text.starts_with(prefix) {
            out.push(String::from_utf8_lossy(text).into_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRINGS: &[u8] = b"\0VISAGE_PLUGIN_fer\0VISAGE_PLUGIN_x\0other\0VISAGE_PLUGIN\0";

    /// A symbol naming string offset `name`, defined in section `shndx`
    /// (0: undefined).
    fn symbol(name: u32, shndx: u16) -> Vec<u8> {
        let mut s = vec![0u8; SYM];
        s[..4].copy_from_slice(&name.to_le_bytes());
        s[6..8].copy_from_slice(&shndx.to_le_bytes());
        s
    }

    /// An ELF64 header and three sections (null, `.dynsym` of `symbols`
    /// linking to 2, `.dynstr` of [`STRINGS`]), the string table `cut`
    /// bytes short of the file.
    fn library(symbols: &[Vec<u8>], cut: usize) -> Vec<u8> {
        let table: Vec<u8> = symbols.concat();
        let (dynsym_at, dynstr_at) = (64usize, 64 + table.len());
        let shoff = dynstr_at + STRINGS.len();
        let mut b = vec![0u8; shoff + 3 * SHDR as usize];
        b[..4].copy_from_slice(b"\x7fELF");
        b[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
        b[58..60].copy_from_slice(&(SHDR as u16).to_le_bytes());
        b[60..62].copy_from_slice(&3u16.to_le_bytes());
        b[dynsym_at..dynstr_at].copy_from_slice(&table);
        b[dynstr_at..shoff].copy_from_slice(STRINGS);
        let header = |b: &mut Vec<u8>, i: usize, kind: u32, offset: usize, size: usize, link: u32| {
            let at = shoff + i * SHDR as usize;
            b[at + 4..at + 8].copy_from_slice(&kind.to_le_bytes());
            b[at + 24..at + 32].copy_from_slice(&(offset as u64).to_le_bytes());
            b[at + 32..at + 40].copy_from_slice(&(size as u64).to_le_bytes());
            b[at + 40..at + 44].copy_from_slice(&link.to_le_bytes());
        };
        header(&mut b, 1, SHT_DYNSYM, dynsym_at, table.len(), 2);
        header(&mut b, 2, 3, dynstr_at, STRINGS.len() + cut, 0);
        b
    }

    fn read(bytes: &[u8], prefix: &str) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libx.so");
        std::fs::write(&path, bytes).unwrap();
        defined_with_prefix(&path, prefix)
    }

    #[test]
    fn only_the_defined_symbols_with_the_prefix_are_named() {
        // Offsets in STRINGS: VISAGE_PLUGIN_fer 1, VISAGE_PLUGIN_x 19,
        // other 35, VISAGE_PLUGIN 41.
        let symbols = [symbol(0, 0), symbol(1, 9), symbol(19, 0), symbol(35, 9), symbol(41, 9)];
        let bytes = library(&symbols, 0);
        assert_eq!(
            read(&bytes, "VISAGE_PLUGIN").unwrap(),
            ["VISAGE_PLUGIN_fer", "VISAGE_PLUGIN"]
        );
        assert_eq!(read(&bytes, "VISAGE_PLUGIN_").unwrap(), ["VISAGE_PLUGIN_fer"]);
        assert_eq!(
            read(&bytes, "").unwrap(),
            ["VISAGE_PLUGIN_fer", "other", "VISAGE_PLUGIN"]
        );
        let mut no_sections = bytes.clone();
        no_sections[40..48].fill(0);
        assert!(read(&no_sections, "").unwrap().is_empty());
    }

    #[test]
    fn a_table_outside_the_file_is_an_error_naming_it() {
        let err = read(&library(&[symbol(1, 9)], 1000), "V").unwrap_err();
        assert!(
            err.contains("its string table (bytes 88.. of 1055) ends past the end of the file"),
            "{err}"
        );
        let err = read(&library(&[symbol(500, 9)], 0), "V").unwrap_err();
        assert!(
            err.contains("dynamic symbol 0 names string offset 500, past its string table's 55 bytes"),
            "{err}"
        );
    }
}
