//! Structured logs for CloudWatch: JSON lines on stderr, through `tracing`.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs a `tracing` subscriber that writes to stderr: JSON (one object per line) unless
/// `AWS_LAMBDA_LOG_FORMAT=Text`, at the level in `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`,
/// else `info`.
///
/// Does nothing when a global subscriber is already installed, so your own setup wins.
/// [`crate::run_worker`] calls it for you.
pub fn init_logging() {
    // RUST_LOG as written (targets are case-sensitive); Lambda's level is upper case (`DEBUG`).
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .map(|l| l.to_lowercase())
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
