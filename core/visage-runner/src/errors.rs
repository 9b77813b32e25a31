//! Errors as the user reads them: one line per cause, each said once,
//! without libtorch's C++ stack traces (which go to the JSON log).

use visage_core::error::{torch_summary, TORCH_TRACE};

/// `e` and its causes, `: `-separated (as `{:#}`), except that a cause
/// whose text its parent already shows (an error that prints its source,
/// such as an OS error under the path it concerns) is not repeated, and a
/// libtorch text is cut to its first line, its full text logged at `debug`
/// under [`TORCH_TRACE`] (so `log.jsonl` keeps it).
pub fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = vec![];
    let mut parent = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let repeated = !parent.is_empty() && parent.contains(&text);
        let shown = if has_torch_trace(&text) {
            tracing::debug!(target: TORCH_TRACE, trace = %text, "libtorch error: {}", torch_summary(&text));
            torch_summary(&text).to_string()
        } else {
            text.clone()
        };
        if !repeated {
            parts.push(shown);
        }
        parent = text;
    }
    parts.join(": ")
}

/// Whether `text` carries libtorch's C++ stack trace.
fn has_torch_trace(text: &str) -> bool {
    text.lines()
        .skip(1)
        .any(|l| l.starts_with("frame #") || l.starts_with("Exception raised from"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_os_error_under_its_path_is_said_once() {
        let os = std::io::Error::from(std::io::ErrorKind::NotFound);
        let inner = visage_core::fs::io_error(std::path::Path::new("/x/y"))(os);
        let e = anyhow::Error::new(inner).context("reading the dataset");
        let text = describe(&e);
        assert_eq!(text.matches("not found").count(), 1, "{text}");
        assert!(text.starts_with("reading the dataset: /x/y: "), "{text}");
    }

    #[test]
    fn a_libtorch_trace_is_cut_to_its_first_line() {
        let err = tch::Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu))
            .f_view([3])
            .unwrap_err();
        let e = anyhow::Error::new(err).context("the head");
        let text = describe(&e);
        assert!(!text.contains('\n') && !text.contains("frame #"), "{text}");
        assert!(text.starts_with("the head: ") && text.contains("shape '[3]'"), "{text}");
    }
}
