//! A reader for `torch.save` files, without Python: the zip format of
//! PyTorch >= 1.6 and the legacy format before it (still written with
//! `_use_new_zipfile_serialization=False`). A restricted unpickler rebuilds
//! tensors from the storages and keeps every other object as inert data.
//!
//! Nested checkpoints are flattened with `.`: `{'model': {'conv1.weight': t}}`
//! gives `model.conv1.weight`, so that a prefix finds the backbone in MAE's,
//! MoCo's or DINO's checkpoints alike.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

use tch::{Kind, Tensor};

use crate::{Error, Result};

/// A value of a pickle, as [`read_pickle`] returns it (and as the
/// unpickler's stack holds it). Objects other than tensors are kept as
/// inert data: nothing is imported or called.
#[derive(Debug)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer (LONG1 values beyond 64 bits keep their low 64 bits).
    Int(i64),
    /// A float.
    Float(f64),
    /// A unicode string.
    Str(String),
    /// A byte string: Python 3 `bytes`, or a Python 2 `str` (SHORT_BINSTRING,
    /// BINSTRING), as `pickle.load(f, encoding='bytes')` reads it.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict, its items in pickle order.
    Dict(Vec<(Value, Value)>),
    /// `module.name`, from GLOBAL.
    Global(String),
    /// A storage reference from BINPERSID: (dtype, key in the archive,
    /// number of elements when the id gives it).
    Storage(Kind, String, Option<i64>),
    /// A tensor rebuilt from a storage.
    Tensor(Tensor),
    /// Any other object: its class and constructor arguments.
    Object(String, Box<Value>),
    /// The MARK of a pickle's stack (never in a finished value).
    Mark,
}

impl Clone for Value {
    fn clone(&self) -> Self {
        match self {
            Value::None => Value::None,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Str(s) => Value::Str(s.clone()),
            Value::Bytes(b) => Value::Bytes(b.clone()),
            Value::List(v) => Value::List(v.clone()),
            Value::Tuple(v) => Value::Tuple(v.clone()),
            Value::Dict(v) => Value::Dict(v.clone()),
            Value::Global(g) => Value::Global(g.clone()),
            Value::Storage(k, s, n) => Value::Storage(*k, s.clone(), *n),
            Value::Tensor(t) => Value::Tensor(t.shallow_clone()),
            Value::Object(c, a) => Value::Object(c.clone(), a.clone()),
            Value::Mark => Value::Mark,
        }
    }
}

/// Unpickles a plain Python pickle (protocols 0-5, as far as the opcodes of
/// data go: no persistent storages, no extension registry). Errors say
/// what is wrong and at which byte, e.g. `truncated at byte 1234`; the
/// caller names the file.
///
/// ```
/// use visage_core::nn::pickle::{read_pickle, Value};
/// // pickle.dumps(([b"ab"], [True]), protocol=2)
/// let bytes = b"\x80\x02]q\x00C\x02abq\x01a]q\x02\x88a\x86q\x03.";
/// let Value::Tuple(items) = read_pickle(bytes).unwrap() else { panic!() };
/// assert!(matches!(&items[1], Value::List(l) if matches!(l[..], [Value::Bool(true)])));
/// assert!(read_pickle(&bytes[..8]).unwrap_err().to_string().contains("truncated at byte"));
/// ```
pub fn read_pickle(bytes: &[u8]) -> Result<Value> {
    let no_storage = |_: Kind, key: &str, _: Option<i64>| -> Result<Tensor> {
        Err(Error::msg(format!("a torch storage ({key}) in a plain pickle")))
    };
    let (value, _) = Unpickler::new(bytes, 0, no_storage).run()?;
    Ok(value)
}

/// Reads every tensor of a `torch.save` zip file, with flattened names.
pub fn read_torch_zip(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let file = std::fs::File::open(path).map_err(crate::fs::io_error(path))?;
    read_zip(file).map_err(|e| Error::msg(format!("{}: {e}", path.display())))
}

/// [`read_torch_zip`] on an open archive.
pub(crate) fn read_zip<R: Read + Seek>(reader: R) -> Result<Vec<(String, Tensor)>> {
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| Error::msg(format!("not a readable torch.save zip archive ({e})")))?;
    let pkl = (0..archive.len())
        .filter_map(|i| archive.by_index(i).ok().map(|f| f.name().to_string()))
        .find(|n| n.ends_with("data.pkl"))
        .ok_or_else(|| Error::msg("the archive has no data.pkl"))?;
    let root = pkl.trim_end_matches("data.pkl").to_string();
    let mut bytes = vec![];
    archive
        .by_name(&pkl)
        .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
        .map_err(|e| Error::msg(format!("{pkl}: {e}")))?;
    let (value, _) = Unpickler::new(&bytes, 0, |kind, key, _| {
        let name = format!("{root}data/{key}");
        let mut data = vec![];
        archive
            .by_name(&name)
            .and_then(|mut f| f.read_to_end(&mut data).map_err(Into::into))
            .map_err(|e| Error::msg(format!("storage {name}: {e}")))?;
        let numel = data.len() / kind.elt_size_in_bytes();
        Tensor::f_from_data_size(&data, &[numel as i64], kind)
            .map_err(|e| Error::msg(format!("storage {name}: {}", crate::error::torch_message(&e))))
    })
    .run()
    .map_err(|e| Error::msg(format!("data.pkl: {e}")))?;
    tensors(value)
}

/// The pickled magic number that begins a legacy `torch.save` file:
/// `PROTO 2, LONG1 0x1950a86a20f9469cfc6c, STOP`.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";

/// Reads every tensor of a legacy `torch.save` file (PyTorch < 1.6, or
/// `_use_new_zipfile_serialization=False`), with flattened names: five
/// pickles (magic number, protocol version, system info, the object, the
/// storage keys in file order), then each storage as its element count
/// (8 bytes, little-endian) and its raw little-endian elements.
pub fn read_torch_legacy(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let at = |what: String| Error::msg(format!("{}: {what}", path.display()));
    let bytes = std::fs::read(path).map_err(crate::fs::io_error(path))?;
    read_legacy_bytes(&bytes).map_err(|e| at(e.to_string()))
}

/// [`read_torch_legacy`] on the file's bytes.
pub(crate) fn read_legacy_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    if !bytes.starts_with(LEGACY_MAGIC) {
        return Err(Error::msg(
            "a pickle, but not a torch.save file (no torch.save magic number)",
        ));
    }
    let no_storage = |_: Kind, key: &str, _: Option<i64>| -> Result<Tensor> {
        Err(Error::msg(format!("storage {key} outside the object's pickle")))
    };
    let mut pos = LEGACY_MAGIC.len();
    let (version, end) = Unpickler::new(bytes, pos, no_storage)
        .run()
        .map_err(|e| legacy("protocol version", e))?;
    if !matches!(version, Value::Int(1001)) {
        return Err(Error::msg(format!(
            "legacy torch.save protocol version {version:?}; only 1001 is read"
        )));
    }
    pos = end;
    let (info, end) = Unpickler::new(bytes, pos, no_storage)
        .run()
        .map_err(|e| legacy("system info", e))?;
    if let Value::Dict(items) = &info {
        let little = items
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == "little_endian"))
            .map(|(_, v)| v);
        if matches!(little, Some(Value::Bool(false))) {
            return Err(Error::msg(
                "written on a big-endian machine; only little-endian files are read",
            ));
        }
    }
    pos = end;
    // Storages are allocated as the object names them and filled once their
    // data, which follows the pickles, is reached; tensors are views of them.
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    let rest = bytes.len().saturating_sub(pos) as i64;
    let (value, end) = Unpickler::new(bytes, pos, |kind, key, numel| {
        let numel = numel.ok_or_else(|| Error::msg(format!("storage {key} without an element count")))?;
        let size = numel.checked_mul(kind.elt_size_in_bytes() as i64);
        if numel < 0 || size.is_none_or(|s| s > rest) {
            return Err(Error::msg(format!(
                "storage {key} of {numel} elements is larger than the file"
            )));
        }
        let storage = Tensor::f_zeros([numel], (kind, tch::Device::Cpu))
            .map_err(|e| Error::msg(format!("storage {key}: {}", crate::error::torch_message(&e))))?;
        storages.insert(key.to_string(), storage.shallow_clone());
        Ok(storage)
    })
    .run()
    .map_err(|e| legacy("the object", e))?;
    pos = end;
    let (keys, end) = Unpickler::new(bytes, pos, no_storage)
        .run()
        .map_err(|e| legacy("storage keys", e))?;
    pos = end;
    let Value::List(keys) = keys else {
        return Err(Error::msg("the storage keys are not a list"));
    };
    for key in keys {
        let Value::Str(key) = key else {
            return Err(Error::msg("a storage key is not a string"));
        };
        let numel = bytes
            .get(pos..pos + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| Error::msg(format!("truncated at byte {pos}: storage {key}")))?;
        pos += 8;
        let Some(storage) = storages.get_mut(&key) else {
            return Err(Error::msg(format!("storage {key} is not used by the object")));
        };
        if numel != storage.numel() as u64 {
            return Err(Error::msg(format!(
                "storage {key} holds {numel} elements, the object says {}",
                storage.numel()
            )));
        }
        let len = storage.numel() * storage.kind().elt_size_in_bytes();
        let data = bytes
            .get(pos..pos + len)
            .ok_or_else(|| Error::msg(format!("truncated at byte {pos}: storage {key}")))?;
        pos += len;
        Tensor::f_from_data_size(data, &[numel as i64], storage.kind())
            .and_then(|src| storage.f_copy_(&src))
            .map_err(|e| Error::msg(format!("storage {key}: {}", crate::error::torch_message(&e))))?;
    }
    tensors(value)
}

fn legacy(what: &str, e: Error) -> Error {
    Error::msg(format!("legacy torch.save file, {what}: {e}"))
}

/// The tensors of an unpickled object, flattened, each made contiguous.
fn tensors(value: Value) -> Result<Vec<(String, Tensor)>> {
    let mut out = vec![];
    flatten(String::new(), value, &mut out);
    if out.is_empty() {
        return Err(Error::msg("the checkpoint holds no tensors"));
    }
    out.into_iter()
        .map(|(k, t)| match t.f_contiguous() {
            Ok(t) => Ok((k, t)),
            Err(e) => Err(Error::msg(format!("`{k}`: {}", crate::error::torch_message(&e)))),
        })
        .collect()
}

fn flatten(prefix: String, value: Value, out: &mut Vec<(String, Tensor)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Tensor(t) => out.push((prefix, t)),
        Value::Dict(items) => {
            for (k, v) in items {
                let key = match k {
                    Value::Str(s) => s,
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                flatten(join(&key), v, out);
            }
        }
        Value::List(items) | Value::Tuple(items) => {
            for (i, v) in items.into_iter().enumerate() {
                flatten(join(&i.to_string()), v, out);
            }
        }
        _ => {}
    }
}

fn storage_kind(class: &str) -> Option<Kind> {
    Some(match class.rsplit('.').next()? {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

struct Unpickler<'a, F> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    load_storage: F,
    storages: HashMap<String, Tensor>,
}

impl<'a, F: FnMut(Kind, &str, Option<i64>) -> Result<Tensor>> Unpickler<'a, F> {
    /// An unpickler of the pickle that begins at byte `pos` of `data`.
    fn new(data: &'a [u8], pos: usize, load_storage: F) -> Self {
        Unpickler {
            data,
            pos,
            stack: vec![],
            memo: HashMap::new(),
            load_storage,
            storages: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| Error::msg(format!("truncated at byte {}", self.pos)))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| Error::msg("unterminated line"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack
            .pop()
            .ok_or_else(|| Error::msg(format!("stack underflow at byte {}", self.pos)))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| Error::msg("MARK not found"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value> {
        self.stack.last_mut().ok_or_else(|| Error::msg("empty stack"))
    }

    fn str(&mut self, n: usize) -> Result<Value> {
        Ok(Value::Str(String::from_utf8_lossy(self.take(n)?).into_owned()))
    }

    /// The pickle's value and the position after its STOP.
    fn run(mut self) -> Result<(Value, usize)> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return Ok((self.pop()?, self.pos)), // STOP
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.stack.push(Value::Int(v as i64))
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i64))
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
                    self.stack.push(Value::Int(v as i64))
                }
                0x8a => {
                    // LONG1: little-endian two's complement.
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let mut v: i64 = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        -1
                    } else {
                        0
                    };
                    for &x in b.iter().rev().take(8) {
                        v = (v << 8) | x as i64;
                    }
                    self.stack.push(Value::Int(v))
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v))
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.str(n)?;
                    self.stack.push(s)
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.str(n)?;
                    self.stack.push(s)
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                b'U' => {
                    // SHORT_BINSTRING: a Python 2 str, read as bytes.
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                b'T' => {
                    // BINSTRING: a Python 2 str, read as bytes.
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                0x8e => {
                    // BINBYTES8
                    let n = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    let n = usize::try_from(n).map_err(|_| Error::msg(format!("a byte string of {n} bytes")))?;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                b'}' => self.stack.push(Value::Dict(vec![])),
                b']' => self.stack.push(Value::List(vec![])),
                b')' => self.stack.push(Value::Tuple(vec![])),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(Error::msg("stack underflow in TUPLEn"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items))
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items))
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Dict(pairs(items)))
                }
                b'a' => {
                    let v = self.pop()?;
                    if let Value::List(l) = self.top()? {
                        l.push(v)
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    if let Value::List(l) = self.top()? {
                        l.extend(items)
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    if let Value::Dict(d) = self.top()? {
                        d.push((k, v))
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if let Value::Dict(d) = self.top()? {
                        d.extend(pairs(items))
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(format!("{module}.{name}")))
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(format!("{m}.{n}"))),
                        _ => return Err(Error::msg("STACK_GLOBAL expects two strings")),
                    }
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.get(i)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.get(i)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent(pid)?;
                    self.stack.push(storage)
                }
                b'R' | 0x81 => {
                    // REDUCE, NEWOBJ
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.stack.push(v)
                }
                b'b' => {
                    // BUILD: state of an object; tensors and dicts ignore it.
                    self.pop()?;
                }
                other => {
                    return Err(Error::msg(format!(
                        "unsupported pickle opcode 0x{other:02x} at byte {}",
                        self.pos - 1
                    )))
                }
            }
        }
    }

    fn get(&mut self, i: u32) -> Result<()> {
        let v = self
            .memo
            .get(&i)
            .cloned()
            .ok_or_else(|| Error::msg(format!("memo {i} unset")))?;
        self.stack.push(v);
        Ok(())
    }

    /// `('storage', torch.FloatStorage, key, location, numel)`, legacy
    /// files adding `view_metadata` (read when `None`).
    fn persistent(&mut self, pid: Value) -> Result<Value> {
        let Value::Tuple(items) = pid else {
            return Err(Error::msg("persistent id is not a tuple"));
        };
        match items.as_slice() {
            [Value::Str(tag), Value::Global(class), Value::Str(key), rest @ ..] if tag == "storage" => {
                let kind = storage_kind(class).ok_or_else(|| Error::msg(format!("unsupported storage {class}")))?;
                if rest.get(2).is_some_and(|v| !matches!(v, Value::None)) {
                    return Err(Error::msg(format!("storage {key} is a view of another; not supported")));
                }
                let numel = match rest.get(1) {
                    Some(Value::Int(n)) => Some(*n),
                    _ => None,
                };
                Ok(Value::Storage(kind, key.clone(), numel))
            }
            _ => Err(Error::msg(format!("unexpected persistent id {items:?}"))),
        }
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value> {
        let Value::Global(name) = callable else {
            return Ok(Value::Object("?".into(), Box::new(args)));
        };
        let args = match args {
            Value::Tuple(a) => a,
            other => return Ok(Value::Object(name, Box::new(other))),
        };
        match name.as_str() {
            "collections.OrderedDict" => Ok(Value::Dict(vec![])),
            "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => self.rebuild_tensor(args),
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                Ok(args.into_iter().next().unwrap_or(Value::None))
            }
            _ => Ok(Value::Object(name, Box::new(Value::Tuple(args)))),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, ...)`.
    fn rebuild_tensor(&mut self, args: Vec<Value>) -> Result<Value> {
        let ints = |v: &Value| -> Option<Vec<i64>> {
            match v {
                Value::Tuple(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::Int(x) => Some(*x),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            }
        };
        match args.as_slice() {
            [Value::Storage(kind, key, numel), Value::Int(offset), size, stride, ..] => {
                let (size, stride) = ints(size)
                    .zip(ints(stride))
                    .ok_or_else(|| Error::msg("tensor size or stride is not a tuple of ints"))?;
                if size.len() != stride.len() || size.iter().chain(&stride).any(|&x| x < 0) {
                    return Err(Error::msg(format!(
                        "tensor size {size:?} and stride {stride:?} do not describe a tensor"
                    )));
                }
                let storage = match self.storages.get(key) {
                    Some(s) => s.shallow_clone(),
                    None => {
                        let s = (self.load_storage)(*kind, key, *numel)?;
                        self.storages.insert(key.clone(), s.shallow_clone());
                        s
                    }
                };
                if size.contains(&0) {
                    let t = Tensor::f_zeros(size.as_slice(), (*kind, tch::Device::Cpu))
                        .map_err(|e| Error::msg(crate::error::torch_message(&e)))?;
                    return Ok(Value::Tensor(t));
                }
                // The last element's index, in i128 so that no size overflows.
                let last = *offset as i128
                    + size
                        .iter()
                        .zip(&stride)
                        .map(|(&n, &s)| (n as i128 - 1) * s as i128)
                        .sum::<i128>();
                if last >= storage.numel() as i128 || *offset < 0 {
                    return Err(Error::msg(format!(
                        "tensor of size {size:?} at offset {offset} exceeds its storage {key} of {} elements",
                        storage.numel()
                    )));
                }
                // A view: legacy files fill their storages after the pickle.
                let t = storage
                    .f_as_strided(size.as_slice(), stride.as_slice(), *offset)
                    .map_err(|e| Error::msg(crate::error::torch_message(&e)))?;
                Ok(Value::Tensor(t))
            }
            _ => Err(Error::msg("unexpected arguments to _rebuild_tensor_v2")),
        }
    }
}

fn pairs(items: Vec<Value>) -> Vec<(Value, Value)> {
    let mut it = items.into_iter();
    let mut out = vec![];
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{Cursor, Write};

    use proptest::prelude::*;

    use super::*;

    fn unicode(out: &mut Vec<u8>, s: &str) {
        out.push(b'X');
        out.extend((s.len() as u32).to_le_bytes());
        out.extend(s.as_bytes());
    }

    /// `{'w': tensor [2, 2] (float, storage '0' of 4 elements),
    ///   'n': {'b': tensor [3] (int64, storage '1' of 3 elements)}}` as
    /// `torch.save` pickles it (protocol 2); legacy files add
    /// `view_metadata` (None) to the persistent ids.
    fn object(legacy: bool) -> Vec<u8> {
        let mut p = b"\x80\x02}q\x00(".to_vec();
        let tensor = |p: &mut Vec<u8>, class: &str, key: &str, numel: u8, size: &[u8], stride: &[u8]| {
            p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
            unicode(p, "storage");
            p.extend(format!("ctorch\n{class}\n").as_bytes());
            unicode(p, key);
            unicode(p, "cpu");
            p.extend([b'K', numel]);
            if legacy {
                p.push(b'N');
            }
            p.extend(b"tQK\x00(");
            for &n in size {
                p.extend([b'K', n]);
            }
            p.push(b't');
            p.push(b'(');
            for &s in stride {
                p.extend([b'K', s]);
            }
            p.extend(b"t\x89ccollections\nOrderedDict\n)RtR");
        };
        unicode(&mut p, "w");
        tensor(&mut p, "FloatStorage", "0", 4, &[2, 2], &[2, 1]);
        unicode(&mut p, "n");
        p.push(b'}');
        unicode(&mut p, "b");
        tensor(&mut p, "LongStorage", "1", 3, &[3], &[1]);
        p.extend(b"su.");
        p
    }

    fn floats() -> Vec<u8> {
        [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn longs() -> Vec<u8> {
        [7i64, -1, 9].iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A small `torch.save` zip archive, made by hand as torch lays it out.
    pub(crate) fn tiny_zip() -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(vec![]));
        let stored = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in [
            ("archive/data.pkl", object(false)),
            ("archive/data/0", floats()),
            ("archive/data/1", longs()),
            ("archive/version", b"3\n".to_vec()),
        ] {
            zip.start_file(name, stored).unwrap();
            zip.write_all(&bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// A small legacy `torch.save` file, as torch < 1.6 writes it.
    pub(crate) fn tiny_legacy() -> Vec<u8> {
        let mut f = LEGACY_MAGIC.to_vec();
        f.extend(b"\x80\x02M\xe9\x03.");
        f.extend(b"\x80\x02}(");
        unicode(&mut f, "little_endian");
        f.extend(b"\x88u.");
        f.extend(object(true));
        f.extend(b"\x80\x02](");
        unicode(&mut f, "1");
        unicode(&mut f, "0");
        f.extend(b"e.");
        f.extend(3u64.to_le_bytes());
        f.extend(longs());
        f.extend(4u64.to_le_bytes());
        f.extend(floats());
        f
    }

    fn check(tensors: Vec<(String, Tensor)>) {
        let names: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["w", "n.b"]);
        assert_eq!(tensors[0].1.size(), [2, 2]);
        assert_eq!(
            Vec::<f32>::try_from(tensors[0].1.flatten(0, -1)).unwrap(),
            [1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(Vec::<i64>::try_from(&tensors[1].1).unwrap(), [7, -1, 9]);
    }

    #[test]
    fn reads_a_zip_and_a_legacy_file() {
        check(read_zip(Cursor::new(tiny_zip())).unwrap());
        check(read_legacy_bytes(&tiny_legacy()).unwrap());
    }

    #[test]
    fn a_cut_legacy_file_says_where() {
        let file = tiny_legacy();
        let err = read_legacy_bytes(&file[..file.len() - 5]).unwrap_err().to_string();
        assert!(err.contains("truncated at byte"), "{err}");
        let err = read_legacy_bytes(&file[..40]).unwrap_err().to_string();
        assert!(err.contains("legacy torch.save file"), "{err}");
    }

    /// Bytes changed at a few places, bytes inserted, the tail cut off.
    fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
        let len = base.len();
        (
            prop::collection::vec((0..len, any::<u8>()), 0..6),
            prop::collection::vec((0..len, any::<u8>()), 0..3),
            prop::option::of(0..len),
        )
            .prop_map(move |(changes, inserts, cut)| {
                let mut bytes = base.clone();
                for (at, b) in changes {
                    bytes[at] = b;
                }
                for (at, b) in inserts {
                    bytes.insert(at, b);
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut);
                }
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Arbitrary bytes are an error or a result, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = read_zip(Cursor::new(bytes.clone()));
            let _ = read_legacy_bytes(&bytes);
            let mut legacy = LEGACY_MAGIC.to_vec();
            legacy.extend(&bytes);
            let _ = read_legacy_bytes(&legacy);
            let _ = Unpickler::new(&bytes, 0, |_, _, _| Ok(Tensor::zeros([4], (Kind::Float, tch::Device::Cpu)))).run();
        }

        /// A valid object pickle, damaged.
        #[test]
        fn a_damaged_object_pickle_never_panics(bytes in mutated(object(false))) {
            let _ = Unpickler::new(&bytes, 0, |kind, _, numel| {
                Ok(Tensor::zeros([numel.unwrap_or(4).clamp(0, 64)], (kind, tch::Device::Cpu)))
            })
            .run();
        }

        /// A valid torch.save zip, damaged.
        #[test]
        fn a_damaged_zip_never_panics(bytes in mutated(tiny_zip())) {
            let _ = read_zip(Cursor::new(bytes));
        }

        /// A valid legacy torch.save file, damaged.
        #[test]
        fn a_damaged_legacy_file_never_panics(bytes in mutated(tiny_legacy())) {
            let _ = read_legacy_bytes(&bytes);
        }
    }
}
