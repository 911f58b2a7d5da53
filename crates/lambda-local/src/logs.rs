//! The functions' logs, kept per function as CloudWatch keeps a log group per function: every
//! line a function's processes write to stdout or stderr, and the platform's `START`, `END` and
//! `REPORT` lines, in order. Read them with [`crate::LocalLambda::logs`] or
//! `GET /_local/logs/{function}`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use serde::{Deserialize, Serialize};

use crate::pool::epoch_ms;

/// Lines kept per function; older ones are dropped first.
pub const MAX_LINES_PER_FUNCTION: usize = 20_000;
/// Longer lines are cut to this many bytes (at a character boundary) and marked `[truncated]`.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Who wrote a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    /// The function's standard output.
    Stdout,
    /// The function's standard error.
    Stderr,
    /// lambda-local itself, as Lambda's platform writes `START`, `END` and `REPORT` lines.
    Platform,
}

/// One line of a function's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When it was read (ms since the epoch).
    pub timestamp_ms: u64,
    /// The execution environment that wrote it.
    pub environment: u32,
    /// Who wrote it.
    pub source: LogSource,
    /// The line, without its line break.
    pub text: String,
}

/// Every function's log, shared by the functions and the server.
#[derive(Clone, Default)]
pub(crate) struct Logs {
    functions: Arc<Mutex<HashMap<String, VecDeque<LogLine>>>>,
}

impl Logs {
    pub(crate) fn push(&self, function: &str, environment: u32, source: LogSource, text: &str) {
        let line = LogLine {
            timestamp_ms: epoch_ms(SystemTime::now()),
            environment,
            source,
            text: truncate(text, MAX_LINE_BYTES),
        };
        let mut functions = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        let lines = functions.entry(function.to_owned()).or_default();
        if lines.len() == MAX_LINES_PER_FUNCTION {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub(crate) fn lines(&self, function: &str) -> Vec<LogLine> {
        self.functions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(function)
            .map(|lines| lines.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Where one function's lines go: its log, and this process's stderr when forwarding is on.
#[derive(Clone)]
pub(crate) struct LogSink {
    pub(crate) logs: Logs,
    pub(crate) function: String,
    pub(crate) forward: bool,
}

impl LogSink {
    /// A line the function wrote.
    pub(crate) fn function_line(&self, environment: u32, source: LogSource, text: &str) {
        if self.forward {
            eprintln!("[{}:{environment}] {text}", self.function);
        }
        self.logs.push(&self.function, environment, source, text);
    }

    /// A line of lambda-local's own about an invocation (kept, not forwarded).
    pub(crate) fn platform_line(&self, environment: u32, text: &str) {
        self.logs
            .push(&self.function, environment, LogSource::Platform, text);
    }
}

/// `text` cut to at most `max` bytes at a character boundary, marked when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [truncated]", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_per_function_in_order() {
        let logs = Logs::default();
        logs.push("a", 1, LogSource::Stdout, "one");
        logs.push("b", 1, LogSource::Stderr, "other function");
        logs.push("a", 2, LogSource::Platform, "two");
        let a: Vec<_> = logs
            .lines("a")
            .into_iter()
            .map(|l| (l.environment, l.source, l.text))
            .collect();
        assert_eq!(
            a,
            [
                (1, LogSource::Stdout, "one".to_owned()),
                (2, LogSource::Platform, "two".to_owned())
            ]
        );
        assert_eq!(logs.lines("b").len(), 1);
        assert!(logs.lines("unknown").is_empty());
    }

    #[test]
    fn the_oldest_lines_go_first_past_the_limit_and_long_lines_are_cut() {
        let logs = Logs::default();
        for i in 0..MAX_LINES_PER_FUNCTION + 3 {
            logs.push("f", 1, LogSource::Stdout, &i.to_string());
        }
        let lines = logs.lines("f");
        assert_eq!(lines.len(), MAX_LINES_PER_FUNCTION);
        assert_eq!(lines[0].text, "3");
        let long = "é".repeat(MAX_LINE_BYTES);
        logs.push("g", 1, LogSource::Stderr, &long);
        let kept = &logs.lines("g")[0].text;
        assert!(
            kept.ends_with(" [truncated]"),
            "{}",
            &kept[kept.len() - 20..]
        );
        assert!(kept.len() <= MAX_LINE_BYTES + " [truncated]".len());
    }
}
