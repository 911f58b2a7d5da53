//! Shared by the end-to-end tests: lambda-local and a Temporal dev server whose Worker
//! Controller invokes it.

#![allow(dead_code)] // Each test binary uses its own subset.

pub mod faults;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    str::FromStr,
    time::{Duration, Instant},
};

use lambda_local::{
    Config, FunctionConfig, InvocationRecord, Limits, LocalLambda, Outcome, RoleConfig,
    temporal::{DevServer, default_tools_dir, find_or_install_cli, verbose},
};
use temporalio_client::{
    Client, ClientOptions, ConnectionOptions, Url, WorkflowFetchHistoryOptions,
    WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_common::{
    HasWorkflowDefinition, UntypedWorkflow,
    protos::temporal::api::{
        enums::v1::{EventType, TimeoutType, VersioningBehavior},
        failure::v1::failure::FailureInfo,
        history::v1::{
            ActivityTaskScheduledEventAttributes, HistoryEvent, history_event::Attributes,
        },
    },
};

/// The role every test's Worker Controller assumes, with the given external id.
pub fn role(external_id: &str) -> RoleConfig {
    RoleConfig {
        arn: "arn:aws:iam::123456789012:role/temporal-invoker".to_owned(),
        external_id: external_id.to_owned(),
    }
}

/// A running local loop.
pub struct Local {
    pub cli: PathBuf,
    pub lambda: LocalLambda,
    pub server: DevServer,
}

/// Starts lambda-local and the dev server on `runtime`, which must outlive them: processes are
/// started from its threads, and their parent-death signal fires when the starting thread exits.
pub fn start(runtime: &tokio::runtime::Runtime, role: &RoleConfig) -> Local {
    let config = Config {
        forward_logs: verbose(),
        ..Config::new(role.clone())
    };
    runtime.block_on(async {
        tokio::spawn(async move {
            let cli = find_or_install_cli(&default_tools_dir()).await.unwrap();
            let lambda = LocalLambda::start(config).await.unwrap();
            let server = DevServer::start(&cli, &lambda.aws_client_environment())
                .await
                .unwrap();
            Local {
                cli,
                lambda,
                server,
            }
        })
        .await
        .unwrap()
    })
}

/// lambda-local and a dev server shared by every test of one binary, on a runtime that
/// outlives the tests (see [`start`]).
pub struct Shared {
    pub runtime: tokio::runtime::Runtime,
    pub cli: PathBuf,
    pub lambda: LocalLambda,
    pub server: DevServer,
    pub role: RoleConfig,
}

impl Shared {
    /// Starts both, with a Worker Controller role that has `external_id`.
    pub fn start(external_id: &str) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let role = role(external_id);
        let Local {
            cli,
            lambda,
            server,
        } = start(&runtime, &role);
        Self {
            runtime,
            cli,
            lambda,
            server,
            role,
        }
    }

    /// Runs `future` on the shared runtime (processes it starts outlive the test thread).
    pub fn run<F: std::future::Future + Send + 'static>(&self, future: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        self.runtime.block_on(self.runtime.spawn(future)).unwrap()
    }

    /// Runs a test's `body`; when it panics, prints everything function `name` logged and
    /// every invocation record of it before passing the panic on, so a failure seen only in
    /// CI can be read from its output.
    pub fn dump_on_failure(&self, name: &str, body: impl FnOnce()) {
        let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) else {
            return;
        };
        eprintln!("---- {name}: the function's log ----");
        for line in self.lambda.logs(name) {
            eprintln!(
                "{} [{name}:{}] {}",
                line.timestamp_ms, line.environment, line.text
            );
        }
        eprintln!("---- {name}: its invocations ----");
        for record in self.records(name) {
            eprintln!("{record:?}");
        }
        std::panic::resume_unwind(panic);
    }

    /// The invocation records of one function (each ran with Lambda's limits, or this panics).
    pub fn records(&self, function: &str) -> Vec<InvocationRecord> {
        let records: Vec<_> = self
            .lambda
            .records()
            .into_iter()
            .filter(|r| r.function_name == function)
            .collect();
        assert_ran_limited(&records);
        records
    }
}

/// A field of the worker's JSON response in `record` (a string as it is, any other value as
/// JSON), `""` when absent.
pub fn response(record: &InvocationRecord, field: &str) -> String {
    record
        .response
        .as_ref()
        .and_then(|r| match r.get(field)? {
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        })
        .unwrap_or_default()
}

/// `test-worker` as function `name`, polling task queue `<name>-tq` as version
/// `name`/`build-1` of the server at `temporal_address`.
pub fn test_worker(
    name: &str,
    temporal_address: &str,
    timeout_secs: u64,
    concurrency: u32,
) -> FunctionConfig {
    let mut function = FunctionConfig::new(
        name,
        vec![env!("CARGO_BIN_EXE_test-worker").to_owned()],
        env!("CARGO_MANIFEST_DIR"),
    );
    function.timeout = Duration::from_secs(timeout_secs);
    function.concurrency = concurrency;
    // As deployed with the ADOT layer: an extension, so Lambda's shutdown phase sends the worker
    // SIGTERM (without one the environment is just killed, and there is nothing to test).
    function.extension = true;
    for (key, value) in [
        ("TEMPORAL_ADDRESS", temporal_address),
        ("TEMPORAL_TASK_QUEUE", &format!("{name}-tq")),
        ("TEST_WORKER_DEPLOYMENT", name),
        ("TEST_WORKER_BUILD_ID", "build-1"),
    ] {
        function.env.insert(key.to_owned(), value.to_owned());
    }
    // To follow tasks through a failing test's function log, e.g.
    // TEST_FUNCTION_RUST_LOG=temporal_lambda_worker=debug,info.
    if let Ok(filter) = std::env::var("TEST_FUNCTION_RUST_LOG") {
        function.env.insert("RUST_LOG".to_owned(), filter);
    }
    function
}

/// Attaches `function` (already added to lambda-local) to version `build-1` of deployment
/// `function` and makes it current at once, before the version has seen a poller.
pub async fn attach_current(
    server: &DevServer,
    function_arn: &str,
    function: &str,
    role: &RoleConfig,
) {
    server
        .create_lambda_version(function, "build-1", function_arn, role)
        .await
        .unwrap();
    make_current(server, function).await;
}

/// Makes version `build-1` of `deployment` current, also before it has seen a poller.
pub async fn make_current(server: &DevServer, deployment: &str) {
    server
        .cli(&[
            "worker",
            "deployment",
            "set-current-version",
            "--deployment-name",
            deployment,
            "--build-id",
            "build-1",
            "--allow-no-pollers",
            "--ignore-missing-task-queues",
            "--yes",
        ])
        .await
        .unwrap();
}

/// A client of the `default` namespace at `address`.
pub async fn client(address: &str) -> Client {
    let url = Url::from_str(&format!("http://{address}")).unwrap();
    Client::connect(
        ConnectionOptions::new(url).build(),
        ClientOptions::new("default").build(),
    )
    .await
    .unwrap()
}

/// Starts `workflow` with `input` as `id` on `task_queue` and waits at most `patience` for its
/// result.
pub async fn complete<W>(
    client: &Client,
    workflow: W,
    input: W::Input,
    task_queue: String,
    id: String,
    patience: Duration,
) -> W::Output
where
    W: HasWorkflowDefinition + Send + Sync + 'static,
    W::Input: Send + 'static,
    W::Output: Send + 'static,
{
    let handle = client
        .start_workflow(
            workflow,
            input,
            WorkflowStartOptions::new(task_queue, id).build(),
        )
        .await
        .unwrap();
    tokio::time::timeout(
        patience,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .unwrap_or_else(|_| panic!("the workflow completed within {patience:?}"))
    .unwrap()
}

/// A workflow's history.
pub struct History {
    pub workflow_id: String,
    pub events: Vec<HistoryEvent>,
}

/// A loopback address where nothing listens (yet): a port the kernel just handed out.
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Milliseconds since the epoch, now.
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A task that waited for a timeout (see [`History::timeout_waits`]).
pub struct TimeoutWait {
    /// What waited, where and when.
    pub line: String,
    /// About when the task was handed to the worker that lost it (ms since the epoch).
    pub lost_at_ms: i64,
}

/// Panics when a history waited for a timeout it did not ask for ([`History::timeout_waits`]),
/// or a workflow task waited on a sticky queue for longer than the worker's sticky
/// schedule-to-start timeout; returns the sticky waits within it, for the test to count and
/// print.
pub fn assert_no_timeout_waits(
    histories: &[History],
    retried_on_purpose: &[(&str, u32)],
) -> Vec<String> {
    let waits: Vec<String> = histories
        .iter()
        .flat_map(|h| h.timeout_waits(retried_on_purpose))
        .map(|wait| wait.line)
        .collect();
    assert!(
        waits.is_empty(),
        "tasks waited for timeouts:\n{}",
        waits.join("\n")
    );
    let bound =
        temporal_lambda_worker::defaults::STICKY_SCHEDULE_TO_START_TIMEOUT.as_millis() as i64;
    let sticky: Vec<(String, i64)> = histories.iter().flat_map(History::sticky_waits).collect();
    for (line, waited_ms) in &sticky {
        // The server's timer fires a few milliseconds late.
        assert!(
            *waited_ms <= bound + 500,
            "{line}: waited {waited_ms} ms, more than the sticky timeout"
        );
    }
    sticky.into_iter().map(|(line, _)| line).collect()
}

impl History {
    /// Fetches the whole history of the workflow's latest run.
    pub async fn fetch(client: &Client, workflow_id: &str) -> Self {
        let events = client
            .get_workflow_handle::<UntypedWorkflow>(workflow_id)
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .into_events()
            .await
            .unwrap();
        Self {
            workflow_id: workflow_id.to_owned(),
            events,
        }
    }

    /// How many events of this type the history has.
    /// Each completed workflow task's versioning behaviour and the build id of the worker that
    /// completed it, in order.
    pub fn completed_tasks(&self) -> Vec<(VersioningBehavior, String)> {
        self.events
            .iter()
            .filter_map(|e| match &e.attributes {
                Some(Attributes::WorkflowTaskCompletedEventAttributes(a)) => Some((
                    a.versioning_behavior(),
                    a.deployment_version
                        .as_ref()
                        .map(|v| v.build_id.clone())
                        .unwrap_or_default(),
                )),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, kind: EventType) -> usize {
        self.events
            .iter()
            .filter(|e| e.event_type == kind as i32)
            .count()
    }

    /// The failure of each `ActivityTaskFailed` event, every message of its cause chain joined.
    pub fn activity_failures(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.attributes {
                Some(Attributes::ActivityTaskFailedEventAttributes(a)) => {
                    let mut messages = Vec::new();
                    let mut failure = a.failure.as_ref();
                    while let Some(f) = failure {
                        messages.push(f.message.clone());
                        failure = f.cause.as_deref();
                    }
                    Some(messages.join(": "))
                }
                _ => None,
            })
            .collect()
    }

    /// Every place where this history waited for a timeout it did not ask for (empty when there
    /// is none): a workflow task that timed out after a worker started it (handed to a worker
    /// that had stopped), a failed workflow task, an activity that timed out, or an activity
    /// attempt beyond those the workload causes on purpose (`retried_on_purpose`: activity type
    /// and the attempt on which it succeeds, whatever failed the earlier ones). A lost activity
    /// attempt leaves no event of its own: it shows as a higher attempt number, and a timeout as
    /// its last failure, on the attempt that completed. Workflow tasks that waited on a sticky
    /// queue are listed by [`History::sticky_waits`] instead.
    pub fn timeout_waits(&self, retried_on_purpose: &[(&str, u32)]) -> Vec<TimeoutWait> {
        let id = &self.workflow_id;
        let start = self.events.first().map_or(0, event_ms);
        let at = |e: &HistoryEvent| {
            let ms = event_ms(e) - start;
            format!(
                "{id} event {} at +{ms} ms ({} ms since the epoch)",
                e.event_id,
                event_ms(e)
            )
        };
        let mut waits = Vec::new();
        for event in &self.events {
            match &event.attributes {
                Some(Attributes::WorkflowTaskTimedOutEventAttributes(a))
                    if a.timeout_type() != TimeoutType::ScheduleToStart =>
                {
                    let started = self
                        .events
                        .iter()
                        .find(|e| e.event_id == a.started_event_id);
                    let by = started.and_then(|e| match &e.attributes {
                        Some(Attributes::WorkflowTaskStartedEventAttributes(s)) => {
                            Some(s.identity.clone())
                        }
                        _ => None,
                    });
                    let started_ms = started.map_or(0, event_ms);
                    waits.push(TimeoutWait {
                        line: format!(
                            "{}: workflow task timed out ({:?}); started at {started_ms} ms \
                             since the epoch by {}",
                            at(event),
                            a.timeout_type(),
                            by.unwrap_or_default()
                        ),
                        lost_at_ms: started_ms,
                    })
                }
                Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => waits.push(TimeoutWait {
                    line: format!("{}: workflow task failed ({:?})", at(event), a.cause()),
                    lost_at_ms: event_ms(event),
                }),
                Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => {
                    waits.push(TimeoutWait {
                        line: format!("{}: activity timed out", at(event)),
                        lost_at_ms: event_ms(event) - self.start_to_close_ms(a.scheduled_event_id),
                    })
                }
                Some(Attributes::ActivityTaskStartedEventAttributes(a)) => {
                    let activity = self.activity_type(a.scheduled_event_id);
                    let on_purpose = retried_on_purpose
                        .iter()
                        .find(|(name, _)| *name == activity);
                    let expected = on_purpose.map_or(1, |(_, attempt)| *attempt);
                    // A retry caused on purpose may follow a timeout the test caused.
                    let timed_out = on_purpose.is_none()
                        && a.last_failure.as_ref().is_some_and(|f| {
                            matches!(f.failure_info, Some(FailureInfo::TimeoutFailureInfo(_)))
                        });
                    if a.attempt != expected as i32 || timed_out {
                        // The lost attempt started a start-to-close timeout and a retry backoff
                        // (1 s at first) before this one.
                        let before = self.start_to_close_ms(a.scheduled_event_id) + 1_000;
                        waits.push(TimeoutWait {
                            line: format!(
                                "{}: activity {activity} completed on attempt {} (expected \
                                 {expected}), last failure: {:?}",
                                at(event),
                                a.attempt,
                                a.last_failure.as_ref().map(|f| f.message.as_str())
                            ),
                            lost_at_ms: event_ms(event) - before,
                        });
                    }
                }
                _ => {}
            }
        }
        waits
    }

    /// Each workflow task that waited on a sticky queue until the sticky schedule-to-start
    /// timeout moved it to the normal queue, with how long it waited (ms). A worker that runs
    /// picks up its sticky tasks in milliseconds; one put on the sticky queue of a stopping worker
    /// in the instant before the server forgot the queue waits the whole timeout.
    pub fn sticky_waits(&self) -> Vec<(String, i64)> {
        self.events
            .iter()
            .filter_map(|event| match &event.attributes {
                Some(Attributes::WorkflowTaskTimedOutEventAttributes(a))
                    if a.timeout_type() == TimeoutType::ScheduleToStart =>
                {
                    let scheduled = self
                        .events
                        .iter()
                        .find(|e| e.event_id == a.scheduled_event_id)
                        .map_or(0, event_ms);
                    let line = format!(
                        "{} event {}: workflow task waited on a sticky queue until {} ms since \
                         the epoch",
                        self.workflow_id,
                        event.event_id,
                        event_ms(event)
                    );
                    Some((line, event_ms(event) - scheduled))
                }
                _ => None,
            })
            .collect()
    }

    /// The start-to-close timeout (ms) of the activity scheduled by event `scheduled_event_id`.
    fn start_to_close_ms(&self, scheduled_event_id: i64) -> i64 {
        self.scheduled_activity(scheduled_event_id)
            .and_then(|a| a.start_to_close_timeout.as_ref())
            .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
    }

    /// The type of the activity scheduled by event `scheduled_event_id`.
    fn activity_type(&self, scheduled_event_id: i64) -> String {
        self.scheduled_activity(scheduled_event_id)
            .and_then(|a| a.activity_type.as_ref())
            .map_or_else(String::new, |t| t.name.clone())
    }

    fn scheduled_activity(
        &self,
        scheduled_event_id: i64,
    ) -> Option<&ActivityTaskScheduledEventAttributes> {
        self.events
            .iter()
            .find(|e| e.event_id == scheduled_event_id)
            .and_then(|e| match &e.attributes {
                Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => Some(a),
                _ => None,
            })
    }

    /// Panics unless the workflow completed exactly once, with every scheduled activity
    /// completed exactly once (`activities` of them) and none failed or timed out.
    pub fn assert_completed_once(&self, activities: usize) {
        let id = &self.workflow_id;
        assert_eq!(self.count(EventType::WorkflowExecutionCompleted), 1, "{id}");
        assert_eq!(
            self.count(EventType::ActivityTaskScheduled),
            activities,
            "{id}"
        );
        assert_eq!(
            self.count(EventType::ActivityTaskCompleted),
            activities,
            "{id}"
        );
        assert_eq!(self.count(EventType::ActivityTaskFailed), 0, "{id}");
        assert_eq!(self.count(EventType::ActivityTaskTimedOut), 0, "{id}");
    }
}

/// When `event` happened, in milliseconds since the epoch.
fn event_ms(event: &HistoryEvent) -> i64 {
    event
        .event_time
        .as_ref()
        .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

/// Polls `done` every 250 ms, panicking after `patience`.
pub fn wait_until(what: &str, patience: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < patience,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Panics unless every invocation ran with its memory size's CPU share and memory limit, as on
/// Lambda: a test that passes on a whole unthrottled host proves nothing about Lambda.
pub fn assert_ran_limited(records: &[InvocationRecord]) {
    if let Some(r) = records.iter().find(|r| r.limits != Limits::Cgroup) {
        panic!(
            "invocation {} ran without Lambda's CPU share and memory limit (limits: {:?}): run \
             the tests as root on a host with the cgroup v1 cpu and memory controllers \
             (lambda-local said why at start)",
            r.request_id, r.limits
        );
    }
}

/// Panics unless every record ended by its deadline and well inside the function timeout
/// (`Timeout` is the outcome of an environment killed at its deadline), limited as on Lambda.
pub fn assert_within_deadlines(records: &[InvocationRecord], timeout: Duration) {
    assert_ran_limited(records);
    for r in records {
        assert_ne!(r.outcome, Outcome::Timeout, "killed at the timeout: {r:?}");
        assert_ne!(r.outcome, Outcome::Crashed, "the process died: {r:?}");
        assert!(
            r.ended_at_ms <= r.deadline_ms,
            "ended after its deadline: {r:?}"
        );
        assert!(
            r.duration_ms < timeout.as_millis() as f64,
            "ran for the whole timeout: {r:?}"
        );
    }
}

/// A minimal HTTP/1.1 exchange.
pub fn http(address: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
