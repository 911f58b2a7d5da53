//! What every invocation leaves behind: a `REPORT` line like Lambda's, and a machine-readable
//! [`InvocationRecord`] for tests and benchmarks (kept in memory and appended to a JSON-lines file).

use std::{
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use crate::limits::Limits;

/// How an invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The function returned a response.
    Success,
    /// The function reported an error through the Runtime API.
    Error,
    /// The function ran past its timeout and its environment was killed.
    Timeout,
    /// The function's process exited during the invocation.
    Crashed,
    /// The function failed during initialization (`/init/error`, or exited before polling).
    InitError,
}

/// One invocation, as the environment saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// The request id the function saw.
    pub request_id: String,
    /// The function name.
    pub function_name: String,
    /// The version it ran as.
    pub function_version: String,
    /// `Event` or `RequestResponse`.
    pub invocation_type: String,
    /// 1, or 2 and 3 for Lambda's retries of a failed `Event` invocation (same request id).
    pub attempt: u32,
    /// The execution environment (one process) that served it.
    pub environment: u32,
    /// Whether the environment was started for this invocation.
    pub cold_start: bool,
    /// Process start to first `/next`, on cold starts.
    pub init_duration_ms: Option<f64>,
    /// When the invoke request arrived (ms since the epoch).
    pub received_at_ms: u64,
    /// When the function received the event.
    pub started_at_ms: u64,
    /// When the invocation ended.
    pub ended_at_ms: u64,
    /// The deadline the function was given.
    pub deadline_ms: u64,
    /// Event delivered to response (or error, timeout, crash).
    pub duration_ms: f64,
    /// Duration rounded up to the millisecond, plus the init duration on cold starts (custom
    /// runtimes are billed for init).
    pub billed_duration_ms: u64,
    /// The configured memory size.
    pub memory_size_mb: u32,
    /// Peak resident memory of the environment's processes so far.
    pub max_memory_used_mb: u64,
    /// The limits its environment ran under: `cgroup` (the CPU share and memory limit of its
    /// memory size) or `none` (a whole host; its figures are not Lambda's).
    pub limits: Limits,
    /// How it ended.
    pub outcome: Outcome,
    /// The error type, for errors.
    pub error_type: Option<String>,
    /// The error message, for errors, timeouts and crashes.
    pub error_message: Option<String>,
    /// Workflow tasks processed, when the function reports it (`workflow_tasks` in its response).
    pub workflow_tasks: Option<u64>,
    /// Activity tasks processed, when the function reports it (`activity_tasks`).
    pub activity_tasks: Option<u64>,
    /// True when the function reported that it processed no task: invoked for nothing. A run of
    /// these is how a worker polling as a different version than Temporal invokes it for shows.
    pub processed_no_task: Option<bool>,
    /// The function's response, when it was JSON (a worker built with temporal-lambda-worker
    /// reports `connection`, `stopped_by`, `shutdown`, `stop_ms` and its task counts there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
}

impl InvocationRecord {
    /// The line Lambda writes to the function's log at the end of an invocation.
    pub fn report_line(&self) -> String {
        let mut line = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            self.duration_ms,
            self.billed_duration_ms,
            self.memory_size_mb,
            self.max_memory_used_mb
        );
        if let Some(init) = self.init_duration_ms {
            line.push_str(&format!("\tInit Duration: {init:.2} ms"));
        }
        match self.outcome {
            Outcome::Success => {}
            Outcome::Timeout => line.push_str("\tStatus: timeout"),
            Outcome::Error => line.push_str("\tStatus: error"),
            // The platform's own errors name their type, as Lambda's REPORT does.
            Outcome::Crashed | Outcome::InitError => line.push_str(&format!(
                "\tStatus: error\tError Type: {}",
                self.error_type.as_deref().unwrap_or("Runtime.Unknown")
            )),
        }
        if self.processed_no_task == Some(true) {
            line.push_str("\tProcessed no task");
        }
        line
    }

    /// Reads `workflow_tasks` / `activity_tasks` from a function's JSON response.
    pub(crate) fn set_task_counts(&mut self, response: &[u8]) {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(response) else {
            return;
        };
        self.workflow_tasks = value.get("workflow_tasks").and_then(|v| v.as_u64());
        self.activity_tasks = value.get("activity_tasks").and_then(|v| v.as_u64());
        self.processed_no_task = match (self.workflow_tasks, self.activity_tasks) {
            (Some(w), Some(a)) => Some(w + a == 0),
            _ => None,
        };
        self.response = Some(value);
    }
}

/// Where records go.
#[derive(Clone, Default)]
pub(crate) struct Records {
    all: Arc<Mutex<Vec<InvocationRecord>>>,
    file: Option<PathBuf>,
}

impl Records {
    pub(crate) async fn new(file: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(path) = &file {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::File::create(path).await?;
        }
        Ok(Self {
            all: Arc::default(),
            file,
        })
    }

    pub(crate) async fn push(&self, record: InvocationRecord) {
        if let Some(path) = &self.file {
            let file = path.clone();
            let line = serde_json::to_string(&record).unwrap_or_default();
            // Appending blocks, so on a blocking thread; awaited, so the record is in the file by
            // the time the invocation's caller hears back.
            let appended = tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(file)
                    .and_then(|mut f| writeln!(f, "{line}"))
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            if let Err(e) = appended {
                tracing::error!(file = %path.display(), error = %e, "cannot append the invocation record");
            }
        }
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    pub(crate) fn snapshot(&self) -> Vec<InvocationRecord> {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> InvocationRecord {
        InvocationRecord {
            request_id: "r1".into(),
            function_name: "f".into(),
            function_version: "1".into(),
            invocation_type: "Event".into(),
            attempt: 1,
            environment: 1,
            cold_start: true,
            init_duration_ms: Some(20.5),
            received_at_ms: 0,
            started_at_ms: 0,
            ended_at_ms: 0,
            deadline_ms: 0,
            duration_ms: 12.345,
            billed_duration_ms: 34,
            memory_size_mb: 128,
            max_memory_used_mb: 19,
            limits: Limits::Cgroup,
            outcome: Outcome::Success,
            error_type: None,
            error_message: None,
            workflow_tasks: None,
            activity_tasks: None,
            processed_no_task: None,
            response: None,
        }
    }

    #[test]
    fn report_lines_look_like_lambdas() {
        assert_eq!(
            record().report_line(),
            "REPORT RequestId: r1\tDuration: 12.35 ms\tBilled Duration: 34 ms\tMemory Size: 128 MB\tMax Memory Used: 19 MB\tInit Duration: 20.50 ms"
        );
        let mut timed_out = record();
        timed_out.init_duration_ms = None;
        timed_out.outcome = Outcome::Timeout;
        assert!(
            timed_out
                .report_line()
                .ends_with("Max Memory Used: 19 MB\tStatus: timeout")
        );
        let mut out_of_memory = timed_out;
        out_of_memory.outcome = Outcome::Crashed;
        out_of_memory.error_type = Some("Runtime.OutOfMemory".into());
        assert!(
            out_of_memory
                .report_line()
                .ends_with("\tStatus: error\tError Type: Runtime.OutOfMemory"),
            "{}",
            out_of_memory.report_line()
        );
    }

    #[test]
    fn task_counts_come_from_the_response_when_reported() {
        let mut r = record();
        r.set_task_counts(br#"{"workflow_tasks":0,"activity_tasks":0}"#);
        assert_eq!(r.processed_no_task, Some(true));
        assert!(r.report_line().ends_with("Processed no task"));
        r.set_task_counts(br#"{"workflow_tasks":2,"activity_tasks":1}"#);
        assert_eq!(r.processed_no_task, Some(false));
        assert_eq!(r.response.as_ref().unwrap()["activity_tasks"], 1);
        r.set_task_counts(b"null");
        assert_eq!((r.workflow_tasks, r.processed_no_task), (None, None));
    }
}
