//! Line and column of every key in a YAML file, so that errors can point at
//! the place a value came from.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// Where each key path (`["pretrain", "steps"]`, `["evaluations", "0"]`)
/// appears in one file: the key of a mapping entry, the item of a sequence.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    found: HashMap<Vec<String>, Position>,
    duplicates: Vec<Duplicate>,
}

/// A key written twice in one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The key's path.
    pub path: Vec<String>,
    /// Where it first appears.
    pub first: Position,
    /// Where it appears again.
    pub second: Position,
}

impl Locations {
    /// Parses `text`; on a syntax error returns what the map has so far (the
    /// syntax error itself is reported by serde_yaml).
    pub fn of(text: &str) -> Self {
        let mut recorder = Recorder::default();
        let _ = Parser::new_from_str(text).load(&mut recorder, false);
        Locations {
            found: recorder.found,
            duplicates: recorder.duplicates,
        }
    }

    /// Keys written twice in one mapping, in the order of their second occurrence.
    pub fn duplicates(&self) -> &[Duplicate] {
        &self.duplicates
    }

    /// The position of `path`, or of its nearest ancestor that is in the file.
    pub fn find(&self, path: &[String]) -> Option<Position> {
        (0..=path.len()).rev().find_map(|n| self.found.get(&path[..n]).copied())
    }

    /// The position of exactly `path`.
    pub fn exact(&self, path: &[String]) -> Option<Position> {
        self.found.get(path).copied()
    }
}

enum Frame {
    Map { pending_key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct Recorder {
    found: HashMap<Vec<String>, Position>,
    path: Vec<String>,
    frames: Vec<Frame>,
    /// For each open container: whether it pushed a path segment.
    pushed: Vec<bool>,
    duplicates: Vec<Duplicate>,
}

impl Recorder {
    fn position(mark: Marker) -> Position {
        Position {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }

    /// A node starts: as a key, or as a value whose path we push.
    /// Returns true if the node is a value (and its segment was pushed).
    fn enter_node(&mut self, scalar: Option<&str>, mark: Marker) -> bool {
        match self.frames.last_mut() {
            Some(Frame::Map { pending_key }) if pending_key.is_none() => {
                let key = scalar.unwrap_or("").to_string();
                let at = Self::position(mark);
                // libyaml-style parsers mark a block mapping at its first `:`;
                // the mapping really starts at its first key.
                if let Some(start) = self.found.get_mut(&self.path) {
                    if (at.line, at.column) < (start.line, start.column) {
                        *start = at;
                    }
                }
                let mut path = self.path.clone();
                path.push(key.clone());
                match self.found.get(&path) {
                    // Only scalar keys can be told apart by their text.
                    Some(&first) if scalar.is_some() => self.duplicates.push(Duplicate {
                        path,
                        first,
                        second: at,
                    }),
                    Some(_) => {}
                    None => {
                        self.found.insert(path, at);
                    }
                }
                *pending_key = Some(key);
                false
            }
            Some(Frame::Map { pending_key }) => {
                self.path.push(pending_key.take().unwrap_or_default());
                true
            }
            Some(Frame::Seq { next }) => {
                self.path.push(next.to_string());
                *next += 1;
                self.found.entry(self.path.clone()).or_insert(Self::position(mark));
                true
            }
            None => {
                self.found.entry(vec![]).or_insert(Self::position(mark));
                false
            }
        }
    }

    fn leave_value(&mut self, pushed: bool) {
        if pushed {
            self.path.pop();
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => {
                let pushed = self.enter_node(Some(&value), mark);
                self.leave_value(pushed);
            }
            Event::Alias(_) => {
                let pushed = self.enter_node(None, mark);
                self.leave_value(pushed);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let pushed = self.enter_node(None, mark);
                let frame = if matches!(event, Event::MappingStart(..)) {
                    Frame::Map { pending_key: None }
                } else {
                    Frame::Seq { next: 0 }
                };
                self.frames.push(frame);
                self.pushed.push(pushed);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                let pushed = self.pushed.pop().unwrap_or(false);
                self.leave_value(pushed);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').filter(|s| !s.is_empty()).map(String::from).collect()
    }

    #[test]
    fn keys_and_items_have_positions() {
        let text = "name: x\npretrain:\n  steps: 3\n  augmentations:\n    - name: flip\n    - {name: noise, params: {std: 0.1}}\nseed: 1\n";
        let loc = Locations::of(text);
        assert_eq!(loc.exact(&path("name")), Some(Position { line: 1, column: 1 }));
        assert_eq!(
            loc.exact(&path("pretrain.steps")),
            Some(Position { line: 3, column: 3 })
        );
        assert_eq!(
            loc.exact(&path("pretrain.augmentations.0")),
            Some(Position { line: 5, column: 7 })
        );
        assert_eq!(
            loc.exact(&path("pretrain.augmentations.0.name")),
            Some(Position { line: 5, column: 7 })
        );
        assert_eq!(
            loc.exact(&path("pretrain.augmentations.1.params.std")),
            Some(Position { line: 6, column: 30 })
        );
        assert_eq!(loc.exact(&path("seed")), Some(Position { line: 7, column: 1 }));
        assert_eq!(
            loc.find(&path("pretrain.steps.missing")),
            Some(Position { line: 3, column: 3 })
        );
    }

    #[test]
    fn a_repeated_key_is_found_at_its_second_occurrence() {
        let text = "name: x\npretrain:\n  steps: 3\n  batch_size: 4\n  steps: 5\nlist:\n  - {a: 1}\n  - {a: 2}\n";
        let loc = Locations::of(text);
        assert_eq!(
            loc.duplicates(),
            &[Duplicate {
                path: path("pretrain.steps"),
                first: Position { line: 3, column: 3 },
                second: Position { line: 5, column: 3 },
            }]
        );
        // The first occurrence keeps its place.
        assert_eq!(
            loc.exact(&path("pretrain.steps")),
            Some(Position { line: 3, column: 3 })
        );
    }
}
