//! Structured logs for CloudWatch: JSON lines on stderr, through `tracing`.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs a `tracing` subscriber that writes to stderr: JSON (one object per line) unless
/// `AWS_LAMBDA_LOG_FORMAT=Text`, at the level in `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`,
/// else `info`.
///
/// Does nothing when a global subscriber is already installed, so your own setup wins.
/// [`crate::run_worker`] calls it for you.
pub fn init_logging() {
    // RUST_LOG as written (targets are case-sensitive), else Lambda's level.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .and_then(|level| tracing_level(&level))
                .map(str::to_owned)
        })
        .and_then(|filter| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    // Lambda's log stream already timestamps and tags each line with the request id.
    let _ = if text {
        builder.with_ansi(false).try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
}

/// The `tracing` level for one of Lambda's log levels (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`,
/// `FATAL`; any case). `tracing` has no level above `error`, so `FATAL` keeps the errors.
fn tracing_level(lambda_level: &str) -> Option<&'static str> {
    Some(match lambda_level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lambda_log_level_is_a_tracing_level() {
        for (lambda, tracing) in [
            ("TRACE", "trace"),
            ("DEBUG", "debug"),
            ("INFO", "info"),
            ("WARN", "warn"),
            ("ERROR", "error"),
            ("FATAL", "error"),
            ("warn", "warn"),
        ] {
            assert_eq!(tracing_level(lambda), Some(tracing), "{lambda}");
        }
        // Not a level: the default (info) applies, never a filter that silences everything.
        assert_eq!(tracing_level("LOUD"), None);
    }
}
