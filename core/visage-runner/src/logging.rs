//! Logging: human-readable lines on the terminal, JSON lines in the run
//! directory once it exists. The level comes from `--log` or `RUST_LOG`
//! (default `info`). Plugins receive this dispatcher at registration, so their
//! events land in the same places.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where the JSON log goes: held in memory until the run directory exists
/// (so that plugin loading is logged too), then a file.
#[derive(Clone, Default)]
pub struct JsonLog(Arc<Mutex<Sink>>);

/// The JSON log's current destination.
#[derive(Default)]
pub enum Sink {
    /// Before the run directory exists.
    #[default]
    Pending,
    /// Lines held until then.
    Buffer(Vec<u8>),
    /// The log file.
    File(File),
}

impl JsonLog {
    /// Starts writing JSON lines to `path`, beginning with what was logged so
    /// far (appending, so a resumed run keeps its earlier log).
    pub fn open(&self, path: &Path) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let mut sink = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Sink::Buffer(held) = &*sink {
            file.write_all(held)?;
        }
        *sink = Sink::File(file);
        Ok(())
    }

    /// Closes the log file: what is logged next is held until the next
    /// [`JsonLog::open`], and whatever was held so far is dropped. `--seeds`
    /// calls it before each seed, so that each seed's log starts with its
    /// own lines and not the previous seed's.
    pub fn hold(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Sink::Pending;
    }
}

/// A writer into the JSON log's current destination.
pub struct JsonWriter(Arc<Mutex<Sink>>);

impl Write for JsonWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut sink = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::File(file) => file.write(buf),
            Sink::Buffer(held) => {
                held.extend_from_slice(buf);
                Ok(buf.len())
            }
            Sink::Pending => {
                *sink = Sink::Buffer(buf.to_vec());
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut *self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Sink::File(file) => file.flush(),
            _ => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for JsonLog {
    type Writer = JsonWriter;
    fn make_writer(&'a self) -> JsonWriter {
        JsonWriter(self.0.clone())
    }
}

/// Installs the global subscriber. `level` overrides `RUST_LOG` for the
/// terminal; the JSON log always records `info` and above and libtorch's
/// full error texts (`debug`, target `libtorch`), and more when the filter
/// asks for `debug` or `trace`.
pub fn init(level: Option<&str>) -> anyhow::Result<JsonLog> {
    let spec = level
        .map(String::from)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let file_spec = if spec.contains("debug") || spec.contains("trace") {
        spec.clone()
    } else {
        "info".into()
    };
    // libtorch's full error texts (C++ stack traces), which messages leave out.
    let file_spec = format!("{file_spec},{}=debug", visage_core::error::TORCH_TRACE);
    let filter = |spec: &str| EnvFilter::try_new(spec).map_err(|e| anyhow::anyhow!("--log/RUST_LOG `{spec}`: {e}"));
    let json = JsonLog::default();
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .with_filter(filter(&spec)?);
    let file = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(json.clone())
        .with_filter(filter(&file_spec)?);
    tracing_subscriber::registry().with(terminal).with(file).try_init()?;
    Ok(json)
}
