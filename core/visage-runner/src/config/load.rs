//! Layering: built-in defaults < `extends` files < the file < `VISAGE_*`
//! environment < `--set key=value`, later wins, merged by figment. Each value
//! keeps its origin, so errors and `--origins` can name the file and line.

use std::collections::BTreeMap;
use std::path::{Component as PathPart, Path, PathBuf};

use figment::providers::{Env, Format, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::diagnostic::{did_you_mean, unknown_and_expected, ConfigError, Diagnostic, Place};
use super::experiment::Experiment;
use super::locate::Locations;

/// `VISAGE_*` variables that configure the tools, not the experiment.
pub const RESERVED_ENV: &[&str] = &["plugin_path", "venv", "no_build"];

/// The largest experiment file read: anything bigger is a mistake (a data
/// file named by `extends`), not an experiment.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads an experiment file: a regular file (not a FIFO, which would block,
/// nor a device like `/dev/zero`, which never ends) of at most
/// [`MAX_FILE_BYTES`], checked before it is opened.
pub fn read_config(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let read_error = |source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_file() {
        return Err(ConfigError::NotAFile {
            file: path.to_path_buf(),
            kind: file_kind(&meta),
        });
    }
    let too_large = |size| ConfigError::TooLarge {
        file: path.to_path_buf(),
        size,
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    // Bounded even if the file grows after the check.
    let mut bytes = vec![];
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        ))
    })
}

/// What a file system entry that is not a regular file is, in words.
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// An experiment file's text as a figment provider: the file is read once,
/// by [`read_config`], and its values keep the file as their source.
struct FileText {
    path: PathBuf,
    text: String,
}

impl Provider for FileText {
    fn metadata(&self) -> Metadata {
        Metadata::from("YAML file", self.path.as_path())
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Yaml::string(&self.text).data()
    }
}

/// One experiment file taking part in a resolution.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path, as the user gave it or as reached through `extends`.
    pub path: PathBuf,
    /// Positions of its keys.
    pub locations: Locations,
    /// Its content.
    pub data: serde_json::Value,
    /// Its canonical path, to recognise it however it was reached.
    identity: PathBuf,
    /// Its text, as read once.
    text: String,
}

/// The merged layers, able to say where any key came from.
pub struct Layers {
    figment: Figment,
    merged: Value,
    files: Vec<SourceFile>,
    /// Each layer's own data, lowest first: the files, the environment, each `--set`.
    layer_data: Vec<serde_json::Value>,
    sets: Vec<String>,
}

/// Component slots that hold one mapping (list items are replaced whole by
/// any layer that sets the list).
const COMPONENT_SLOTS: &[&[&str]] = &[
    &["backbone"],
    &["pretrain", "method"],
    &["pretrain", "dataset"],
    &["pretrain", "optimizer"],
    &["pretrain", "scheduler"],
];

/// Reads `path` and everything it extends, then the environment and `sets`.
pub fn layers(path: &Path, sets: &[String]) -> Result<Layers, ConfigError> {
    let mut files = Vec::new();
    collect_extends(path, &mut vec![], None, &mut files)?;
    let mut figment = Figment::new();
    let mut layer_data: Vec<serde_json::Value> = files.iter().map(|f| f.data.clone()).collect();
    for file in &files {
        figment = figment.merge(FileText {
            path: file.path.clone(),
            text: file.text.clone(),
        });
    }
    let env = Env::prefixed("VISAGE_")
        .split("__")
        .filter(|k| !RESERVED_ENV.iter().any(|r| k == *r));
    layer_data.push(provider_json(&env));
    figment = figment.merge(env);
    for arg in sets {
        let merged = merged_value(&figment)?;
        let set = SetArg::parse(arg, &merged)?;
        layer_data.push(provider_json(&set));
        figment = figment.merge(set);
    }
    let merged = merged_value(&figment)?;
    let mut layers = Layers {
        figment,
        merged,
        files,
        layer_data,
        sets: sets.to_vec(),
    };
    layers.drop_stale_params();
    Ok(layers)
}

fn provider_json(provider: &impl Provider) -> serde_json::Value {
    let data = provider
        .data()
        .ok()
        .and_then(|mut m| m.remove(&Profile::Default))
        .unwrap_or_default();
    serde_json::to_value(data).unwrap_or_default()
}

fn merged_value(figment: &Figment) -> Result<Value, ConfigError> {
    figment.find_value("").map_err(|e| {
        ConfigError::Invalid(Diagnostic {
            place: Place::Default,
            key: e.path.join("."),
            message: e.kind.to_string(),
            suggestion: None,
        })
    })
}

/// Depth-first: bases before the file that extends them, each file once.
fn collect_extends(
    path: &Path,
    stack: &mut Vec<PathBuf>,
    included_at: Option<Place>,
    out: &mut Vec<SourceFile>,
) -> Result<(), ConfigError> {
    let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(start) = stack.iter().position(|p| *p == identity) {
        let mut chain: Vec<PathBuf> = stack[start..].to_vec();
        chain.push(identity);
        return Err(ConfigError::Cycle {
            chain: chain.iter().map(|p| relative_to_cwd(p)).collect(),
        });
    }
    let text = read_config(path).map_err(|e| match (e, &included_at) {
        (ConfigError::Read { source, .. }, Some(at)) if source.kind() == std::io::ErrorKind::NotFound => {
            ConfigError::MissingExtends {
                at: at.clone(),
                target: path.to_path_buf(),
            }
        }
        (e, _) => e,
    })?;
    let locations = Locations::of(&text);
    let parsed: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| syntax_error(path, &e, &locations))?;
    if !parsed.is_mapping() {
        return Err(ConfigError::Invalid(Diagnostic {
            place: Place::File {
                file: path.to_path_buf(),
                position: locations.exact(&[]),
            },
            key: String::new(),
            message: "an experiment file must be a mapping of keys to values".into(),
            suggestion: None,
        }));
    }
    if let Some((at, kind)) = composite_key(&parsed, &mut vec![]) {
        return Err(ConfigError::Syntax {
            at: Place::File {
                file: path.to_path_buf(),
                position: locations.find(&at),
            },
            message: format!("a key must be a plain value such as a name, not a {kind}"),
        });
    }
    // Anything else the layered reader refuses is still this file's fault.
    if let Err(e) = Yaml::string(&text).data() {
        return Err(ConfigError::Syntax {
            at: Place::File {
                file: path.to_path_buf(),
                position: locations.find(&e.path),
            },
            message: e.kind.to_string(),
        });
    }
    stack.push(identity.clone());
    for (i, base) in extends_of(path, &parsed, &locations)?.into_iter().enumerate() {
        let key = if matches!(parsed.get("extends"), Some(serde_yaml::Value::Sequence(_))) {
            vec!["extends".to_string(), i.to_string()]
        } else {
            vec!["extends".to_string()]
        };
        let at = Place::File {
            file: path.to_path_buf(),
            position: locations.find(&key),
        };
        let target = normalize(&path.parent().unwrap_or(Path::new("")).join(base));
        collect_extends(&target, stack, Some(at), out)?;
    }
    stack.pop();
    if !out.iter().any(|f| f.identity == identity) {
        let data = serde_json::to_value(&parsed).unwrap_or_default();
        out.push(SourceFile {
            path: path.to_path_buf(),
            locations,
            data,
            identity,
            text,
        });
    }
    Ok(())
}

/// The path to the first mapping that has a sequence or a mapping as a key
/// (YAML allows `? [a]: 1`; an experiment's keys are names), and that key's kind.
fn composite_key(value: &serde_yaml::Value, path: &mut Vec<String>) -> Option<(Vec<String>, &'static str)> {
    let children: Vec<(String, &serde_yaml::Value)> = match value {
        serde_yaml::Value::Mapping(map) => {
            for key in map.keys() {
                match key {
                    serde_yaml::Value::Sequence(_) => return Some((path.clone(), "list")),
                    serde_yaml::Value::Mapping(_) => return Some((path.clone(), "mapping")),
                    _ => {}
                }
            }
            map.iter().map(|(k, v)| (key_name(k), v)).collect()
        }
        serde_yaml::Value::Sequence(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        serde_yaml::Value::Tagged(tagged) => return composite_key(&tagged.value, path),
        _ => vec![],
    };
    for (name, child) in children {
        path.push(name);
        if let Some(found) = composite_key(child, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

/// A scalar key as the path segment the locator records.
fn key_name(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}

fn extends_of(path: &Path, parsed: &serde_yaml::Value, locations: &Locations) -> Result<Vec<String>, ConfigError> {
    let bad = |message: &str| {
        ConfigError::Invalid(Diagnostic {
            place: Place::File {
                file: path.to_path_buf(),
                position: locations.find(&["extends".to_string()]),
            },
            key: "extends".into(),
            message: message.into(),
            suggestion: None,
        })
    };
    match parsed.get("extends") {
        None | Some(serde_yaml::Value::Null) => Ok(vec![]),
        Some(serde_yaml::Value::String(s)) => Ok(vec![s.clone()]),
        Some(serde_yaml::Value::Sequence(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| bad("expected a path or a list of paths"))
            })
            .collect(),
        Some(_) => Err(bad("expected a path or a list of paths")),
    }
}

fn syntax_error(path: &Path, e: &serde_yaml::Error, locations: &Locations) -> ConfigError {
    let mut position = e.location().map(|l| super::locate::Position {
        line: l.line(),
        column: l.column(),
    });
    let message = e.to_string();
    let mut message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    // serde_yaml places a duplicate key at its mapping; point at the
    // second occurrence of the key instead.
    if message.contains("duplicate entry") {
        let dups = locations.duplicates();
        let named = dups.iter().find(|d| {
            d.path
                .last()
                .is_some_and(|k| message.ends_with(&format!("key \"{k}\"")) || message.ends_with(&format!("key {k}")))
        });
        if let Some(dup) = named.or(dups.first()) {
            position = Some(dup.second);
            message = format!(
                "duplicate key `{}` (first at line {}, column {})",
                dup.path.join("."),
                dup.first.line,
                dup.first.column
            );
        }
    }
    ConfigError::Syntax {
        at: Place::File {
            file: path.to_path_buf(),
            position,
        },
        message,
    }
}

/// Removes `.` and folds `a/..` without touching the file system, so that
/// messages show `experiments/base.yaml`, not `experiments/sub/../base.yaml`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<PathPart> = vec![];
    for part in path.components() {
        match part {
            PathPart::CurDir => {}
            PathPart::ParentDir if matches!(out.last(), Some(PathPart::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

fn relative_to_cwd(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

/// A `--set a.b.c=value` argument as a figment provider. The value is read as
/// YAML (`3`, `true`, `[a, b]`, `{x: 1}`). A numeric segment indexes into a
/// list that lower layers define; the list is then replaced as a whole.
struct SetArg {
    arg: String,
    data: Dict,
}

impl SetArg {
    fn parse(arg: &str, merged: &Value) -> Result<Self, ConfigError> {
        let bad = |message: String| ConfigError::BadSet {
            arg: arg.into(),
            message,
        };
        let (key, raw) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected key.path=value".into()))?;
        let path: Vec<&str> = key.split('.').collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(bad(format!("`{key}` is not a dotted key path")));
        }
        let value: serde_yaml::Value =
            serde_yaml::from_str(raw).map_err(|e| bad(format!("the value is not YAML: {e}")))?;
        let value = Value::serialize(value).map_err(|e| bad(e.to_string()))?;
        // Replace from the first list on the path, so that indices address its items.
        let mut node = Some(merged);
        for (depth, segment) in path.iter().enumerate() {
            let next = node.and_then(|n| n.as_dict()).and_then(|d| d.get(*segment));
            if let Some(Value::Array(_, items)) = next {
                if depth + 1 == path.len() {
                    // The whole list: the value must be one.
                    if !matches!(value, Value::Array(..)) {
                        return Err(bad(
                            "a list can only be replaced whole: give its items in YAML, e.g. [a, b]".into(),
                        ));
                    }
                    break;
                }
                let mut items = items.clone();
                set_in_array(&mut items, &path[depth + 1..], value).map_err(bad)?;
                let list = Value::from(items);
                return Ok(SetArg {
                    arg: arg.into(),
                    data: nest(&path[..=depth], list),
                });
            }
            node = next;
        }
        Ok(SetArg {
            arg: arg.into(),
            data: nest(&path, value),
        })
    }
}

fn set_in_array(items: &mut [Value], rest: &[&str], value: Value) -> Result<(), String> {
    let (first, rest) = rest
        .split_first()
        .ok_or("a list can only be replaced whole: give its items in YAML, e.g. [a, b]")?;
    let index: usize = first
        .parse()
        .map_err(|_| format!("`{first}` indexes a list and must be a number"))?;
    let len = items.len();
    let slot = items
        .get_mut(index)
        .ok_or_else(|| format!("index {index} is out of range: the list has {len} items"))?;
    set_in_value(slot, rest, value)
}

fn set_in_value(slot: &mut Value, rest: &[&str], value: Value) -> Result<(), String> {
    let Some((first, tail)) = rest.split_first() else {
        *slot = value;
        return Ok(());
    };
    match slot {
        Value::Array(_, items) => set_in_array(items, rest, value),
        Value::Dict(_, dict) => {
            let child = dict
                .entry(first.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            set_in_value(child, tail, value)
        }
        _ => {
            *slot = Value::from(nest(rest, value));
            Ok(())
        }
    }
}

fn nest(path: &[&str], value: Value) -> Dict {
    let mut value = value;
    for segment in path.iter().skip(1).rev() {
        let mut d = Dict::new();
        d.insert(segment.to_string(), value);
        value = Value::from(d);
    }
    let mut root = Dict::new();
    root.insert(path[0].to_string(), value);
    root
}

impl Provider for SetArg {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("--set {}", self.arg))
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

impl Layers {
    /// The layer (index into `layer_data`) a value came from: a file, the
    /// environment (after the files), or a `--set` (after the environment).
    fn rank(&self, value: &Value) -> Option<usize> {
        let meta = self.figment.get_metadata(value.tag())?;
        if let Some(Source::File(file)) = &meta.source {
            let wanted = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            return self.files.iter().position(|f| f.identity == wanted);
        }
        if let Some(arg) = meta.name.strip_prefix("--set ") {
            return self
                .sets
                .iter()
                .rposition(|s| s == arg)
                .map(|i| self.files.len() + 1 + i);
        }
        meta.name.contains("environment").then_some(self.files.len())
    }

    /// Parameters follow the component they were written for: when a layer
    /// names a different component in a slot, the parameters that lower
    /// layers wrote for the old component are dropped, so that
    /// `--set backbone.name=other` or a child file naming another optimiser
    /// does not inherit parameters the new component does not take.
    fn drop_stale_params(&mut self) {
        for slot in COMPONENT_SLOTS {
            let slot: Vec<String> = slot.iter().map(|s| s.to_string()).collect();
            let name_path = [slot.clone(), vec!["name".into()]].concat();
            let Some(name) = self.find(&name_path).and_then(|v| v.as_str()).map(String::from) else {
                continue;
            };
            let pointer = format!("/{}", name_path.join("/"));
            // The component named in the slot once layers 0..=rank are merged.
            let in_effect: Vec<Option<String>> = (0..self.layer_data.len())
                .map(|rank| {
                    (0..=rank).rev().find_map(|k| {
                        self.layer_data[k]
                            .pointer(&pointer)
                            .and_then(|v| v.as_str())
                            .map(String::from)
                    })
                })
                .collect();
            let keep = |rank: Option<usize>| match rank.and_then(|r| in_effect.get(r)) {
                Some(Some(then)) => *then == name,
                _ => true,
            };
            let params_path = [slot, vec!["params".into()]].concat();
            let Some(Value::Dict(_, mut params)) = self.find(&params_path).cloned() else {
                continue;
            };
            retain_params(&mut params, &|v| keep(self.rank(v)));
            if let Some(Value::Dict(_, dict)) = self.find_mut(&params_path) {
                *dict = params;
            }
        }
    }

    fn find_mut(&mut self, path: &[String]) -> Option<&mut Value> {
        let mut node = &mut self.merged;
        for segment in path {
            node = match node {
                Value::Dict(_, d) => d.get_mut(segment)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The files that took part, bases first.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The merged configuration as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.merged).unwrap_or(serde_json::Value::Null)
    }

    /// The value at `path`, if some layer set it.
    fn find(&self, path: &[String]) -> Option<&Value> {
        let mut node = &self.merged;
        for segment in path {
            node = match node {
                Value::Dict(_, d) => d.get(segment)?,
                Value::Array(_, items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Where the value at exactly `path` came from; `None` if no layer set it.
    pub fn origin(&self, path: &[String]) -> Option<Place> {
        let value = self.find(path)?;
        Some(self.place_of(value, path))
    }

    /// Where `path`, or its nearest ancestor that some layer set, came from.
    pub fn nearest_origin(&self, path: &[String]) -> Place {
        (0..=path.len())
            .rev()
            .find_map(|n| self.origin(&path[..n]).filter(|p| n > 0 || *p != Place::Default))
            .unwrap_or_else(|| {
                self.files
                    .last()
                    .map(|f| Place::File {
                        file: f.path.clone(),
                        position: None,
                    })
                    .unwrap_or(Place::Default)
            })
    }

    fn place_of(&self, value: &Value, path: &[String]) -> Place {
        let files = self.files.len();
        match self.rank(value) {
            Some(r) if r < files => {
                let f = &self.files[r];
                Place::File {
                    file: f.path.clone(),
                    position: f.locations.find(path),
                }
            }
            Some(r) if r == files => Place::Env(format!("VISAGE_{}", path.join("__").to_uppercase())),
            Some(r) => Place::Set(self.sets[r - files - 1].clone()),
            None => Place::Default,
        }
    }

    /// A diagnostic for `path` from a message, with a did-you-mean when the
    /// message is serde's "unknown field/variant" one.
    pub fn diagnose(&self, path: &[String], message: String) -> Diagnostic {
        let suggestion = unknown_and_expected(&message)
            .and_then(|(unknown, expected)| did_you_mean(&unknown, expected.iter().map(String::as_str)));
        Diagnostic {
            place: self.nearest_origin(path),
            key: path.join("."),
            message,
            suggestion,
        }
    }

    /// Deserialises the merged layers into the typed experiment.
    pub fn experiment(&self) -> Result<Experiment, ConfigError> {
        // JSON, and so every component's parameters, has no NaN or
        // infinity: the conversion would turn them into null.
        if let Some((path, value)) = first_non_finite(&self.merged, &mut vec![]) {
            let written = if value.is_nan() {
                ".nan"
            } else if value > 0.0 {
                ".inf"
            } else {
                "-.inf"
            };
            let message = format!("expected a finite number, got `{written}`");
            return Err(ConfigError::Invalid(self.diagnose(&path, message)));
        }
        let json = self.to_json();
        visage_core::params::from_value::<Experiment>(json)
            .map_err(|e| ConfigError::Invalid(self.diagnose(&e.path, e.message)))
    }

    /// Every leaf of `resolved` (the typed experiment, re-serialised) with its
    /// origin: the layer that set it, or `default`.
    pub fn origins_of(&self, resolved: &serde_json::Value) -> BTreeMap<String, (serde_json::Value, Place)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(Vec::<String>::new(), resolved)];
        while let Some((path, value)) = stack.pop() {
            match value {
                serde_json::Value::Object(m) if !m.is_empty() => {
                    stack.extend(m.iter().map(|(k, v)| ([path.clone(), vec![k.clone()]].concat(), v)))
                }
                serde_json::Value::Array(a) if !a.is_empty() => stack.extend(
                    a.iter()
                        .enumerate()
                        .map(|(i, v)| ([path.clone(), vec![i.to_string()]].concat(), v)),
                ),
                leaf => {
                    let place = self.origin(&path).unwrap_or(Place::Default);
                    out.insert(path.join("."), (leaf.clone(), place));
                }
            }
        }
        out
    }
}

/// The first NaN or infinite number in `value`, with its key path.
fn first_non_finite(value: &Value, path: &mut Vec<String>) -> Option<(Vec<String>, f64)> {
    use figment::value::Num;
    match value {
        Value::Num(_, Num::F64(x)) if !x.is_finite() => Some((path.clone(), *x)),
        Value::Num(_, Num::F32(x)) if !x.is_finite() => Some((path.clone(), *x as f64)),
        Value::Dict(_, dict) => dict.iter().find_map(|(k, v)| {
            path.push(k.clone());
            let found = first_non_finite(v, path);
            path.pop();
            found
        }),
        Value::Array(_, items) => items.iter().enumerate().find_map(|(i, v)| {
            path.push(i.to_string());
            let found = first_non_finite(v, path);
            path.pop();
            found
        }),
        _ => None,
    }
}

/// Keeps the leaves `keep` accepts; drops mappings left empty by that.
fn retain_params(dict: &mut Dict, keep: &dyn Fn(&Value) -> bool) {
    dict.retain(|_, value| match value {
        Value::Dict(_, inner) if !inner.is_empty() => {
            retain_params(inner, keep);
            !inner.is_empty()
        }
        leaf => keep(leaf),
    });
}
