//! One function's execution environments: warm reuse, a concurrency limit, a queue for
//! asynchronous events, and a record of every invocation.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::{
    arn::function_arn,
    config::FunctionConfig,
    limits::{Controllers, Limits},
    logs::LogSink,
    record::{InvocationRecord, Outcome, Records},
    runtime_api::{Answer, CallerContext, Event},
    sandbox::{Ending, InitFailure, Sandbox, terminate},
};

/// Lambda's limit for a runtime's shutdown phase (no extensions): SIGTERM, then SIGKILL.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_millis(500);

/// How one execution environment went through the shutdown phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retirement {
    /// The environment's number.
    pub environment: u32,
    /// Time from SIGTERM until its process exited; `None` when it was killed at the limit.
    pub exited_after: Option<Duration>,
}

/// What a synchronous caller gets back.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The function's response.
    Response(Bytes),
    /// A function error (also timeouts and crashes), as Lambda reports it.
    FunctionError(Bytes),
}

/// How an invocation was requested.
#[derive(Clone, Copy, Debug)]
pub(crate) enum InvocationType {
    RequestResponse,
    Event,
}

impl InvocationType {
    fn as_str(self) -> &'static str {
        match self {
            Self::RequestResponse => "RequestResponse",
            Self::Event => "Event",
        }
    }
}

#[derive(Clone)]
struct Queued {
    request_id: String,
    payload: Bytes,
    invoked_arn: String,
    caller: CallerContext,
    received_at: SystemTime,
    /// 1, then 2 and 3 for Lambda's retries of a failed asynchronous invocation.
    attempt: u32,
}

pub(crate) struct Function {
    pub(crate) config: FunctionConfig,
    pub(crate) arn: String,
    lambda_env: Vec<(String, String)>,
    idle: Mutex<Vec<Sandbox>>,
    /// Every live environment's process id, busy or idle.
    live: Mutex<BTreeMap<u32, i32>>,
    permits: Arc<Semaphore>,
    queue: mpsc::UnboundedSender<Queued>,
    queued: Arc<AtomicUsize>,
    next_environment: AtomicU32,
    records: Records,
    logs: LogSink,
    /// Where each environment's CPU share and memory limit are set; `None`: unlimited.
    controllers: Option<Arc<Controllers>>,
}

impl Function {
    pub(crate) fn start(
        config: FunctionConfig,
        region: &str,
        account_id: &str,
        records: Records,
        logs: LogSink,
        controllers: Option<Arc<Controllers>>,
        platform_env: &[(String, String)],
    ) -> Arc<Self> {
        let arn = function_arn(region, account_id, &config.name);
        let lambda_env = lambda_environment(&config, region, platform_env);
        let (queue, mut queued) = mpsc::unbounded_channel::<Queued>();
        let function = Arc::new(Self {
            permits: Arc::new(Semaphore::new(config.concurrency as usize)),
            config,
            arn,
            lambda_env,
            idle: Mutex::default(),
            live: Mutex::default(),
            queue,
            queued: Arc::default(),
            next_environment: AtomicU32::new(1),
            records,
            logs,
            controllers,
        });
        let weak: Weak<Self> = Arc::downgrade(&function);
        let permits = Arc::clone(&function.permits);
        let waiting = Arc::clone(&function.queued);
        // Asynchronous events wait here for a free slot, in arrival order.
        tokio::spawn(async move {
            while let Some(event) = queued.recv().await {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                waiting.fetch_sub(1, Ordering::Relaxed);
                let Some(function) = weak.upgrade() else {
                    return;
                };
                tokio::spawn(async move {
                    let retry = event.clone();
                    let (record, _) = function.run(event, InvocationType::Event, permit).await;
                    if record.outcome != Outcome::Success {
                        function.retry_later(retry);
                    }
                });
            }
        });
        function
    }

    /// Queues an asynchronous invocation and returns its request id.
    pub(crate) fn enqueue(
        &self,
        payload: Bytes,
        invoked_arn: String,
        caller: CallerContext,
    ) -> String {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.queued.fetch_add(1, Ordering::Relaxed);
        let _ = self.queue.send(Queued {
            request_id: request_id.clone(),
            payload,
            invoked_arn,
            caller,
            received_at: SystemTime::now(),
            attempt: 1,
        });
        request_id
    }

    /// Lambda's retries of a failed asynchronous invocation: the same event (same request id),
    /// queued again after the configured delay, up to `async_retries` times. Waiting for its
    /// delay, a retry is not in flight.
    fn retry_later(self: &Arc<Self>, mut event: Queued) {
        let retries_done = event.attempt - 1;
        if retries_done >= self.config.async_retries {
            return;
        }
        let delay = self.config.async_retry_delays_ms[retries_done as usize];
        event.attempt += 1;
        let (queue, queued) = (self.queue.clone(), Arc::clone(&self.queued));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            queued.fetch_add(1, Ordering::Relaxed);
            let _ = queue.send(event);
        });
    }

    /// Invocations running or queued.
    pub(crate) fn in_flight(&self) -> usize {
        let running = self.config.concurrency as usize - self.permits.available_permits();
        running + self.queued.load(Ordering::Relaxed)
    }

    /// Runs a synchronous invocation, or returns `None` when every slot is busy (Lambda throttles).
    pub(crate) async fn invoke(
        &self,
        payload: Bytes,
        invoked_arn: String,
        caller: CallerContext,
    ) -> Option<(InvocationRecord, Reply)> {
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok()?;
        let queued = Queued {
            request_id: uuid::Uuid::new_v4().to_string(),
            payload,
            invoked_arn,
            caller,
            received_at: SystemTime::now(),
            attempt: 1,
        };
        Some(
            self.run(queued, InvocationType::RequestResponse, permit)
                .await,
        )
    }

    /// One invocation's whole life: an environment for it, the event delivered there, and its
    /// record.
    async fn run(
        &self,
        queued: Queued,
        invocation_type: InvocationType,
        _permit: OwnedSemaphorePermit,
    ) -> (InvocationRecord, Reply) {
        let (record, reply) = match self.acquire_environment().await {
            Ok((sandbox, init_duration)) => {
                self.run_invocation(sandbox, init_duration, queued, invocation_type)
                    .await
            }
            Err((environment, failure)) => {
                self.init_error(&queued, invocation_type, environment, &failure)
            }
        };
        (self.record_invocation(record).await, reply)
    }

    /// A warm environment, thawed, or a new one with its init duration (a cold start). Fails with
    /// the new environment's number and why it could not start.
    async fn acquire_environment(&self) -> Result<(Sandbox, Option<Duration>), (u32, InitFailure)> {
        let warm = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(sandbox) = warm {
            sandbox.thaw();
            return Ok((sandbox, None));
        }
        let id = self.next_environment.fetch_add(1, Ordering::Relaxed);
        let mut env = self.lambda_env.clone();
        env.push((
            "AWS_LAMBDA_LOG_STREAM_NAME".to_owned(),
            format!(
                "{}/[{}]{id:032x}",
                chrono::Utc::now().format("%Y/%m/%d"),
                self.config.version
            ),
        ));
        let controllers = self.controllers.as_deref();
        let (sandbox, init_duration) =
            Sandbox::start(id, &self.config, &env, &self.logs, controllers)
                .await
                .map_err(|failure| (id, failure))?;
        self.live_environments().insert(id, sandbox.pid());
        Ok((sandbox, Some(init_duration)))
    }

    /// The record and reply of an invocation whose new environment could not start.
    fn init_error(
        &self,
        queued: &Queued,
        invocation_type: InvocationType,
        environment: u32,
        failure: &InitFailure,
    ) -> (InvocationRecord, Reply) {
        let mut record = self.new_record(
            &queued.request_id,
            invocation_type,
            environment,
            queued.received_at,
            SystemTime::now(),
        );
        record.attempt = queued.attempt;
        record.cold_start = true;
        record.init_duration_ms = Some(ms(failure.init_duration));
        record.billed_duration_ms = ms(failure.init_duration).ceil() as u64;
        record.outcome = Outcome::InitError;
        record.error_type = Some(failure.error_type.clone());
        record.error_message = Some(failure.message.clone());
        let body = error_body(&failure.error_type, &failure.message);
        (record, Reply::FunctionError(body))
    }

    /// Delivers the event to the environment, waits for its ending, then releases the
    /// environment.
    async fn run_invocation(
        &self,
        mut sandbox: Sandbox,
        init_duration: Option<Duration>,
        queued: Queued,
        invocation_type: InvocationType,
    ) -> (InvocationRecord, Reply) {
        let Queued {
            request_id,
            payload,
            invoked_arn,
            caller,
            received_at,
            attempt,
        } = queued;
        // Lambda delivers `{}` for an empty payload.
        let payload = if payload.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            payload
        };
        let started_at = SystemTime::now();
        let deadline = started_at + self.config.timeout;
        let event = Event {
            request_id: request_id.clone(),
            payload,
            deadline_ms: epoch_ms(deadline),
            function_arn: invoked_arn,
            trace_id: trace_id(),
            caller,
        };
        self.logs.platform_line(
            sandbox.id,
            &format!(
                "START RequestId: {request_id} Version: {}",
                self.config.version
            ),
        );
        let (ending, duration) = sandbox.invoke(event, self.config.timeout).await;
        let mut record = self.new_record(
            &request_id,
            invocation_type,
            sandbox.id,
            received_at,
            started_at,
        );
        record.attempt = attempt;
        record.max_memory_used_mb = sandbox.max_memory_used_mb().await;
        record.limits = sandbox.limits();
        record.duration_ms = ms(duration);
        record.cold_start = init_duration.is_some();
        record.init_duration_ms = init_duration.map(ms);
        record.billed_duration_ms =
            ms(duration).ceil() as u64 + init_duration.map_or(0, |d| ms(d).ceil() as u64);
        let reply = self.reply(ending, &mut record);
        let answered = matches!(record.outcome, Outcome::Success | Outcome::Error);
        self.release_environment(sandbox, answered).await;
        record.ended_at_ms = epoch_ms(SystemTime::now());
        (record, reply)
    }

    /// What the caller gets for how the invocation ended, with the outcome and error recorded.
    fn reply(&self, ending: Ending, record: &mut InvocationRecord) -> Reply {
        match ending {
            Ending::Answered(Answer::Response(body)) => {
                record.set_task_counts(&body);
                Reply::Response(body)
            }
            Ending::Answered(Answer::Error { error_type, body }) => {
                record.outcome = Outcome::Error;
                // The function's `errorMessage`, or its whole body when it sent another shape.
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_owned));
                record.error_message =
                    Some(message.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()));
                record.error_type = Some(error_type);
                Reply::FunctionError(body)
            }
            Ending::TimedOut => {
                let message = format!(
                    "{} {} Task timed out after {:.2} seconds",
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    record.request_id,
                    self.config.timeout.as_secs_f64()
                );
                record.outcome = Outcome::Timeout;
                record.error_type = Some("Sandbox.Timedout".to_owned());
                record.error_message = Some(message.clone());
                Reply::FunctionError(error_body("Sandbox.Timedout", &message))
            }
            Ending::Crashed(message) => crashed(record, "Runtime.ExitError", message),
            Ending::OutOfMemory(message) => {
                // The environment's processes had used it all when the kernel stepped in.
                record.max_memory_used_mb = u64::from(self.config.memory_mb);
                crashed(record, "Runtime.OutOfMemory", message)
            }
        }
    }

    /// After an invocation: an environment whose function answered waits for its next event
    /// frozen, once it asks for one; any other is discarded.
    async fn release_environment(&self, mut sandbox: Sandbox, answered: bool) {
        let healthy = answered
            && sandbox
                .wait_for_next(tokio::time::Instant::now() + Duration::from_secs(2))
                .await;
        // Decided under the lock of the live set, so a shutdown phase starting now either
        // thaws what is frozen here or finds it gone from the set.
        let retiring = {
            let mut live = self.live_environments();
            let retiring = !live.contains_key(&sandbox.id);
            if !retiring && healthy {
                sandbox.freeze();
            } else {
                live.remove(&sandbox.id);
            }
            retiring
        };
        if retiring {
            // The shutdown phase ends the process (by SIGKILL past its limit).
            sandbox.reap().await;
        } else if healthy {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sandbox);
        } else {
            sandbox.kill().await;
        }
    }

    fn new_record(
        &self,
        request_id: &str,
        invocation_type: InvocationType,
        environment: u32,
        received_at: SystemTime,
        started_at: SystemTime,
    ) -> InvocationRecord {
        InvocationRecord {
            request_id: request_id.to_owned(),
            function_name: self.config.name.clone(),
            function_version: self.config.version.clone(),
            invocation_type: invocation_type.as_str().to_owned(),
            attempt: 1,
            environment,
            cold_start: false,
            init_duration_ms: None,
            received_at_ms: epoch_ms(received_at),
            started_at_ms: epoch_ms(started_at),
            ended_at_ms: epoch_ms(SystemTime::now()),
            deadline_ms: epoch_ms(started_at + self.config.timeout),
            duration_ms: 0.0,
            billed_duration_ms: 0,
            memory_size_mb: self.config.memory_mb,
            max_memory_used_mb: 0,
            limits: if self.controllers.is_some() {
                Limits::Cgroup
            } else {
                Limits::None
            },
            outcome: Outcome::Success,
            error_type: None,
            error_message: None,
            workflow_tasks: None,
            activity_tasks: None,
            processed_no_task: None,
            response: None,
        }
    }

    /// Writes the invocation's `REPORT` line (after its `END` line, when it ran) and keeps its
    /// record.
    async fn record_invocation(&self, record: InvocationRecord) -> InvocationRecord {
        let report = record.report_line();
        eprintln!("[{}:{}] {report}", self.config.name, record.environment);
        if record.outcome != Outcome::InitError {
            self.logs.platform_line(
                record.environment,
                &format!("END RequestId: {}", record.request_id),
            );
        }
        self.logs.platform_line(record.environment, &report);
        self.records.push(record.clone()).await;
        record
    }

    fn live_environments(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, i32>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kills every idle environment.
    pub(crate) async fn shutdown(&self) {
        let idle: Vec<Sandbox> =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for mut sandbox in idle {
            self.live_environments().remove(&sandbox.id);
            sandbox.kill().await;
        }
    }

    /// Runs Lambda's shutdown phase on every live environment, busy or frozen, at once.
    pub(crate) async fn retire(&self, limit: Duration) -> Vec<Retirement> {
        // Out of the idle pool first, so no invocation arriving meanwhile is handed an
        // environment that is being shut down (it would wait for a dead process until its
        // timeout); one that was handed out just before is busy, and retires as busy ones do.
        let frozen: Vec<Sandbox> =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        let live: Vec<(u32, i32)> = std::mem::take(&mut *self.live_environments())
            .into_iter()
            .collect();
        // Lambda signals the runtime only when the function has an extension.
        let limit = if self.config.extension {
            Some(limit)
        } else {
            None
        };
        let signalled: Vec<_> = live
            .into_iter()
            .map(|(id, pid)| (id, tokio::spawn(terminate(pid, limit))))
            .collect();
        let mut retirements = Vec::new();
        for (environment, terminating) in signalled {
            retirements.push(Retirement {
                environment,
                exited_after: terminating.await.unwrap_or(None),
            });
        }
        // Reap the frozen ones; a busy one is reaped by its invocation, which sees the exit.
        for mut sandbox in frozen {
            sandbox.kill().await;
        }
        retirements
    }
}

/// The execution role's session token every function gets (a placeholder, as are the keys);
/// the Parameters and Secrets extension wants it back.
pub(crate) const ROLE_SESSION_TOKEN: &str = "lambda-local-placeholder-session-token";

/// Placeholder credentials of the execution role, shaped like the temporary ones Lambda gives
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); they open nothing.
const ROLE_CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "ASIALAMBDALOCALEXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "lambda-local-placeholder-secret-access-key",
    ),
    ("AWS_SESSION_TOKEN", ROLE_SESSION_TOKEN),
];

/// The variables Lambda sets for every function, those of the environment's extensions
/// (`platform_env`), then the function's own.
fn lambda_environment(
    config: &FunctionConfig,
    region: &str,
    platform_env: &[(String, String)],
) -> Vec<(String, String)> {
    let task_root = config.task_root.display().to_string();
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", config.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            config.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", config.version.clone()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", config.name),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
        ("_HANDLER", config.handler.clone()),
        // X-Ray's daemon address as Lambda gives it, on loopback here (nothing listens).
        ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000".to_owned()),
        ("_AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1".to_owned()),
        ("_AWS_XRAY_DAEMON_PORT", "2000".to_owned()),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        // The host's PATH, so interpreters of other runtimes (python3, node) resolve.
        (
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ),
    ]
    .into_iter()
    .chain(ROLE_CREDENTIALS.map(|(k, v)| (k, v.to_owned())))
    .chain(
        config
            .log_format
            .iter()
            .map(|format| ("AWS_LAMBDA_LOG_FORMAT", format.clone())),
    )
    .chain((config.log_format.as_deref() == Some("JSON")).then(|| {
        let level = config.log_level.clone();
        (
            "AWS_LAMBDA_LOG_LEVEL",
            level.unwrap_or_else(|| "INFO".to_owned()),
        )
    }))
    .map(|(k, v)| (k.to_owned(), v))
    .chain(platform_env.iter().cloned())
    .collect();
    for (key, value) in &config.env {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// Records a dead environment's invocation as crashed, with Lambda's error type.
fn crashed(record: &mut InvocationRecord, error_type: &str, message: String) -> Reply {
    record.outcome = Outcome::Crashed;
    record.error_type = Some(error_type.to_owned());
    let body = error_body(error_type, &message);
    record.error_message = Some(message);
    Reply::FunctionError(body)
}

fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string())
}

/// An X-Ray trace header: `Root=1-<epoch seconds hex>-<96 random bits>;Parent=...;Sampled=0`.
fn trace_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        epoch_ms(SystemTime::now()) / 1000,
        &random[..24],
        &random[16..32]
    )
}

/// Milliseconds since the epoch (0 for a time before it).
pub(crate) fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_variables_are_set_and_user_values_win() {
        let mut config = FunctionConfig::new("f", vec!["b".into()], "/task");
        config.env.insert("AWS_REGION".into(), "eu-west-1".into());
        config.env.insert("TEMPORAL_ADDRESS".into(), "h:1".into());
        let env: std::collections::HashMap<_, _> = lambda_environment(&config, "us-east-1", &[])
            .into_iter()
            .collect();
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "f");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "1");
        assert_eq!(env["LAMBDA_TASK_ROOT"], "/task");
        assert_eq!(env["AWS_REGION"], "eu-west-1");
        assert_eq!(env["TEMPORAL_ADDRESS"], "h:1");
        // As Lambda's provided runtimes have them (the RIE reserves the same names).
        assert_eq!(env["_HANDLER"], "bootstrap");
        assert_eq!(env["LAMBDA_RUNTIME_DIR"], "/var/runtime");
        assert_eq!(env["AWS_XRAY_DAEMON_ADDRESS"], "127.0.0.1:2000");
        assert_eq!(env["AWS_XRAY_CONTEXT_MISSING"], "LOG_ERROR");
        assert!(env["AWS_ACCESS_KEY_ID"].starts_with("ASIA"));
        assert!(!env["AWS_SESSION_TOKEN"].is_empty());
        // No log format set: the function is not told one.
        assert!(!env.contains_key("AWS_LAMBDA_LOG_FORMAT"));
        assert!(!env.contains_key("AWS_LAMBDA_LOG_LEVEL"));
    }

    #[test]
    fn a_json_log_format_comes_with_its_application_log_level() {
        let mut config = FunctionConfig::new("f", vec!["b".into()], "/task");
        config.log_format = Some("JSON".into());
        let env = |config: &FunctionConfig| -> std::collections::HashMap<_, _> {
            lambda_environment(config, "us-east-1", &[])
                .into_iter()
                .collect()
        };
        assert_eq!(env(&config)["AWS_LAMBDA_LOG_FORMAT"], "JSON");
        assert_eq!(env(&config)["AWS_LAMBDA_LOG_LEVEL"], "INFO");
        config.log_level = Some("WARN".into());
        assert_eq!(env(&config)["AWS_LAMBDA_LOG_LEVEL"], "WARN");
        config.log_format = Some("Text".into());
        config.log_level = None;
        assert_eq!(env(&config)["AWS_LAMBDA_LOG_FORMAT"], "Text");
        assert!(!env(&config).contains_key("AWS_LAMBDA_LOG_LEVEL"));
    }

    #[test]
    fn trace_ids_have_xrays_shape() {
        let id = trace_id();
        let root = id.strip_prefix("Root=1-").unwrap();
        let (time, rest) = root.split_once('-').unwrap();
        assert_eq!(time.len(), 8);
        assert_eq!(rest.split(';').next().unwrap().len(), 24);
        assert!(id.contains(";Parent=") && id.ends_with(";Sampled=0"));
    }
}
