//! Reading the text files of the benchmarks: every problem is an error
//! naming the file, the line and what was expected.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use visage_core::{Error, Result};

/// Reads a whole file; a missing or unreadable file is an error naming it
/// and what it should hold.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::msg(format!("{}: cannot read {what}: {e}", path.display())))
}

/// Reads a UTF-8 text file (see [`read`]).
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    let bytes = read(path, what)?;
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::msg(format!("{}, line {line}: expected UTF-8 text", path.display()))
    })
}

/// One line of a file, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The file.
    pub path: &'a Path,
    /// The 1-based line number.
    pub number: usize,
    /// The line's text, without its end.
    pub text: &'a str,
}

impl<'a> Line<'a> {
    /// The non-empty lines of `text` (a `\r` before the `\n` is dropped),
    /// numbered from 1 as in the file.
    pub fn all(path: &'a Path, text: &'a str) -> impl Iterator<Item = Line<'a>> + 'a {
        text.lines()
            .enumerate()
            .map(move |(i, t)| Line {
                path,
                number: i + 1,
                text: t.trim_end_matches('\r'),
            })
            .filter(|l| !l.text.trim().is_empty())
    }

    /// An error at this line: `<file>, line <n>: expected <what>, got `<text>``.
    pub fn error(&self, expected: impl Display) -> Error {
        let mut shown: String = self.text.chars().take(80).collect();
        if shown.len() < self.text.len() {
            shown += "...";
        }
        Error::msg(format!(
            "{}, line {}: expected {expected}, got `{shown}`",
            self.path.display(),
            self.number
        ))
    }

    /// The fields split by `sep` (whitespace when `None`), trimmed: exactly
    /// `n` of them, or an error saying `what` they are.
    pub fn fields(&self, sep: Option<char>, n: usize, what: &str) -> Result<Vec<&'a str>> {
        let fields: Vec<&str> = match sep {
            Some(c) => self.text.split(c).map(str::trim).collect(),
            None => self.text.split_whitespace().collect(),
        };
        if fields.len() != n {
            return Err(self.error(format_args!("{n} fields ({what}), found {}", fields.len())));
        }
        Ok(fields)
    }

    /// Field `value` parsed as `T`, or an error naming the field.
    pub fn parse<T: FromStr>(&self, value: &str, field: &str) -> Result<T> {
        value
            .trim()
            .parse()
            .map_err(|_| self.error(format_args!("{field} as a number, found `{value}`")))
    }
}

/// `root/relative`, refusing absolute paths and `..` (a list must not
/// point outside its dataset).
pub fn under(root: &Path, relative: &str, line: &Line) -> Result<PathBuf> {
    let rel = Path::new(relative);
    let inside = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
    if !inside || relative.is_empty() {
        return Err(line.error(format_args!("a relative path inside {}", root.display())));
    }
    Ok(root.join(rel))
}
