//! A reader for `torch.save` files (the zip format of PyTorch >= 1.6),
//! without Python: a restricted unpickler that rebuilds tensors from the
//! archive's storages and keeps every other object as inert data.
//!
//! Nested checkpoints are flattened with `.`: `{'model': {'conv1.weight': t}}`
//! gives `model.conv1.weight`, so that a prefix finds the backbone in MAE's,
//! MoCo's or DINO's checkpoints alike.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

use crate::{Error, Result};

/// A value on the unpickler's stack.
#[derive(Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// `module.name`, from GLOBAL.
    Global(String),
    /// A storage reference from BINPERSID: (dtype, key in the archive).
    Storage(Kind, String),
    Tensor(Tensor),
    /// Any other object: its class and constructor arguments.
    Object(String, Box<Value>),
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
            Value::Storage(k, s) => Value::Storage(*k, s.clone()),
            Value::Tensor(t) => Value::Tensor(t.shallow_clone()),
            Value::Object(c, a) => Value::Object(c.clone(), a.clone()),
            Value::Mark => Value::Mark,
        }
    }
}

/// Reads every tensor of a `torch.save` zip file, with flattened names.
pub fn read_torch_zip(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let at = |what: String| Error::msg(format!("{}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| at(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        at(format!(
            "not a PyTorch zip checkpoint ({e}); files from torch < 1.6 must be re-saved with a newer torch"
        ))
    })?;
    let pkl = (0..archive.len())
        .filter_map(|i| archive.by_index(i).ok().map(|f| f.name().to_string()))
        .find(|n| n.ends_with("data.pkl"))
        .ok_or_else(|| at("the archive has no data.pkl".into()))?;
    let root = pkl.trim_end_matches("data.pkl").to_string();
    let mut bytes = vec![];
    archive
        .by_name(&pkl)
        .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
        .map_err(|e| at(format!("{pkl}: {e}")))?;
    let value = Unpickler::new(&bytes, |kind, key| {
        let name = format!("{root}data/{key}");
        let mut data = vec![];
        archive
            .by_name(&name)
            .and_then(|mut f| f.read_to_end(&mut data).map_err(Into::into))
            .map_err(|e| Error::msg(format!("storage {name}: {e}")))?;
        let numel = data.len() / kind.elt_size_in_bytes();
        Ok(Tensor::f_from_data_size(&data, &[numel as i64], kind)?)
    })
    .run()
    .map_err(|e| at(format!("data.pkl: {e}")))?;
    let mut out = vec![];
    flatten(String::new(), value, &mut out);
    if out.is_empty() {
        return Err(at("the checkpoint holds no tensors".into()));
    }
    Ok(out)
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

impl<'a, F: FnMut(Kind, &str) -> Result<Tensor>> Unpickler<'a, F> {
    fn new(data: &'a [u8], load_storage: F) -> Self {
        Unpickler {
            data,
            pos: 0,
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

    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(), // STOP
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

    /// `('storage', torch.FloatStorage, key, location, numel)`.
    fn persistent(&mut self, pid: Value) -> Result<Value> {
        let Value::Tuple(items) = pid else {
            return Err(Error::msg("persistent id is not a tuple"));
        };
        match items.as_slice() {
            [Value::Str(tag), Value::Global(class), Value::Str(key), ..] if tag == "storage" => {
                let kind = storage_kind(class).ok_or_else(|| Error::msg(format!("unsupported storage {class}")))?;
                Ok(Value::Storage(kind, key.clone()))
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
            [Value::Storage(kind, key), Value::Int(offset), size, stride, ..] => {
                let (size, stride) = ints(size)
                    .zip(ints(stride))
                    .ok_or_else(|| Error::msg("tensor size or stride is not a tuple of ints"))?;
                let storage = match self.storages.get(key) {
                    Some(s) => s.shallow_clone(),
                    None => {
                        let s = (self.load_storage)(*kind, key)?;
                        self.storages.insert(key.clone(), s.shallow_clone());
                        s
                    }
                };
                let needed = *offset + size.iter().zip(&stride).map(|(n, s)| (n - 1).max(0) * s).sum::<i64>() + 1;
                if size.contains(&0) {
                    return Ok(Value::Tensor(Tensor::zeros(size.as_slice(), (*kind, tch::Device::Cpu))));
                }
                if needed > storage.numel() as i64 || *offset < 0 {
                    return Err(Error::msg(format!(
                        "tensor of size {size:?} at offset {offset} exceeds its storage {key} of {} elements",
                        storage.numel()
                    )));
                }
                let t = storage
                    .f_as_strided(size.as_slice(), stride.as_slice(), *offset)?
                    .contiguous();
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
