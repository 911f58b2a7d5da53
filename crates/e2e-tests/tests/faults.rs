//! Faults, end to end with no shortcut invokes: the real dev server's Worker Controller invokes
//! the real `test-worker` bootstrap in lambda-local, and something goes wrong on the way: the
//! Temporal server dies mid-invocation and comes back, activities panic, ignore cancellation or
//! block a thread, the function points at an address where nothing listens; and a soak that
//! rotates faults under a steady stream of work for `SOAK_SECS` (60 s in `cargo test`).
//!
//! (The environment killed at the timeout with an activity in flight is in
//! `worker_controller.rs`.)

use std::{
    collections::HashSet,
    net::TcpListener,
    path::PathBuf,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

mod common;

use common::{History, assert_within_deadlines, wait_until};
use e2e_tests::{MisbehavingWorkflow, OutlivesTimeoutWorkflow, PANIC_MESSAGE, StepsWorkflow};
use greeting::GreetingWorkflow;
use lambda_local::{
    InvocationRecord, Outcome,
    temporal::{DevServer, DevServerOptions},
};
use temporalio_client::{
    WorkflowGetResultOptions, WorkflowIdReusePolicy, WorkflowStartOptions,
    errors::WorkflowStartError,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;

type Fixture = common::Shared;

/// One lambda-local and one dev server (state in memory) for the tests of this binary.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::start("faults-external-id"))
}

impl Fixture {
    /// Adds `test-worker` as function `name` talking to `temporal_address`, with `env` on top.
    /// Returns its version ARN.
    fn add_function(
        &self,
        name: &str,
        temporal_address: &str,
        timeout: Duration,
        concurrency: u32,
        env: &[(&str, &str)],
    ) -> String {
        let mut function =
            common::test_worker(name, temporal_address, timeout.as_secs(), concurrency);
        for (key, value) in env {
            function.env.insert((*key).to_owned(), (*value).to_owned());
        }
        let _guard = self.runtime.enter();
        self.lambda.add_function(function).unwrap();
        self.lambda.version_arn(name).unwrap()
    }

    /// [`Fixture::add_function`], then makes it the current version of deployment `name` on
    /// the shared server. Returns the task queue.
    fn deploy(
        &'static self,
        name: &str,
        temporal_address: &str,
        timeout: Duration,
        concurrency: u32,
        env: &[(&str, &str)],
    ) -> String {
        let arn = self.add_function(name, temporal_address, timeout, concurrency, env);
        let (name, role) = (name.to_owned(), self.role.clone());
        let server = &self.server;
        self.run(async move {
            common::attach_current(server, &arn, &name, &role).await;
            format!("{name}-tq")
        })
    }
}

impl Fixture {
    /// A dev server of its own with its state in a SQLite file, so it can be killed and come
    /// back with every workflow and task ([`DevServer::restart`]), and function `name` deployed
    /// on it as [`Fixture::deploy`] does. The file goes when the returned guard drops.
    fn deploy_restartable(
        &'static self,
        name: &str,
        timeout: Duration,
        concurrency: u32,
        env: &[(&str, &str)],
    ) -> (DevServer, RemoveOnDrop) {
        let db_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&db_file);
        let state = RemoveOnDrop(db_file.clone());
        let (cli, aws) = (self.cli.clone(), self.lambda.aws_client_environment());
        let options = DevServerOptions {
            db_file: Some(db_file),
        };
        let server =
            self.run(async move { DevServer::start_with(&cli, &aws, options).await.unwrap() });
        let arn = self.add_function(name, &server.address, timeout, concurrency, env);
        let (name, role) = (name.to_owned(), self.role.clone());
        let server = self.run(async move {
            common::attach_current(&server, &arn, &name, &role).await;
            server
        });
        (server, state)
    }
}

/// What the worker said about how its invocation went.
fn summary(record: &InvocationRecord) -> String {
    ["connection", "stopped_by", "shutdown"]
        .map(|field| format!("{field}={}", common::response(record, field)))
        .join(" ")
}

/// Starts a [`StepsWorkflow`] of `steps` steps of `step_ms` for each id, `spacing` apart.
async fn start_steps(
    address: String,
    task_queue: String,
    ids: Vec<String>,
    (steps, step_ms): (u32, u64),
    spacing: Duration,
) {
    let client = common::client(&address).await;
    for id in ids {
        client
            .start_workflow(
                StepsWorkflow::run,
                (steps, step_ms),
                WorkflowStartOptions::new(task_queue.clone(), id).build(),
            )
            .await
            .unwrap();
        tokio::time::sleep(spacing).await;
    }
}

/// Waits for each [`StepsWorkflow`]'s result (at most `patience` each), then fetches its
/// history.
async fn steps_outcomes(
    address: String,
    ids: Vec<String>,
    patience: Duration,
) -> Vec<(u32, History)> {
    let client = common::client(&address).await;
    let mut outcomes = Vec::new();
    for id in ids {
        let handle = client.get_workflow_handle::<StepsWorkflow>(id.clone());
        let Ok(result) = tokio::time::timeout(
            patience,
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        else {
            let history = History::fetch(&client, &id).await;
            let events: Vec<String> = history
                .events
                .iter()
                .map(|e| {
                    format!(
                        "{} {:?}",
                        e.event_time.map_or(0, |t| t.seconds),
                        e.event_type()
                    )
                })
                .collect();
            panic!("{id} completed within {patience:?}; its history: {events:#?}");
        };
        let result = result.unwrap();
        outcomes.push((result, History::fetch(&client, &id).await));
    }
    outcomes
}

/// Panics unless each workflow returned 1 + 2 + 3 and its history shows it completed once,
/// each of its three steps scheduled and completed exactly once.
fn assert_three_steps_each(outcomes: &[(u32, History)]) {
    for (result, history) in outcomes {
        assert_eq!(*result, 1 + 2 + 3, "{}", history.workflow_id);
        history.assert_completed_once(3);
    }
}

#[test]
fn the_server_killed_mid_invocation_and_restarted_loses_no_workflow_and_no_invocation_overruns() {
    const NAME: &str = "restart-faults";
    fixture().dump_on_failure(NAME, || server_killed_mid_invocation_and_restarted(NAME));
}

fn server_killed_mid_invocation_and_restarted(name: &str) {
    const TIMEOUT: Duration = Duration::from_secs(15);
    let fixture = fixture();
    let (mut server, _state) = fixture.deploy_restartable(name, TIMEOUT, 2, &[]);
    let address = server.address.clone();
    let task_queue = format!("{name}-tq");
    let ids = |wave: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{name}-{wave}-{i}")).collect()
    };

    // Four workflows of three 1.5 s steps each: the activities keep the invocations busy.
    let before = ids("before", 4);
    fixture.run(start_steps(
        address.clone(),
        task_queue.clone(),
        before.clone(),
        (3, 1500),
        Duration::ZERO,
    ));
    // Kill the server once the first step of a workflow is done: an invocation is polling and
    // activities are running.
    wait_until(
        "a workflow got past its first step",
        Duration::from_secs(60),
        || {
            let (address, id) = (address.clone(), before[0].clone());
            fixture.run(async move {
                let client = common::client(&address).await;
                let history = History::fetch(&client, &id).await;
                history.count(EventType::ActivityTaskCompleted) >= 1
            })
        },
    );
    let killed_at = common::epoch_ms();
    server = fixture.run(async move {
        server.kill().await;
        server
    });
    assert!(
        fixture.lambda.in_flight(name) > 0,
        "an invocation was running when the server died"
    );
    // Down for a few seconds, then back on the same ports with the same state.
    std::thread::sleep(Duration::from_secs(4));
    server = fixture.run(async move {
        server.restart().await.unwrap();
        server
    });
    let restarted_at = common::epoch_ms();

    // New work keeps arriving after the restart, as production traffic would (the Worker
    // Controller re-checks a backlog with no new tasks only every few minutes).
    let after = ids("after", 3);
    fixture.run(start_steps(
        address.clone(),
        task_queue.clone(),
        after.clone(),
        (3, 100),
        Duration::from_secs(2),
    ));
    let every: Vec<String> = before.iter().chain(&after).cloned().collect();
    let outcomes = fixture.run(steps_outcomes(
        address.clone(),
        every,
        Duration::from_secs(150),
    ));
    assert_three_steps_each(&outcomes);
    wait_until("the invocations ended", Duration::from_secs(90), || {
        fixture.lambda.in_flight(name) == 0
    });

    // Once everything is idle, the environments that were connected to the old server process
    // serve a new wave warm, through new connections to the new one.
    let warm_since = common::epoch_ms();
    let later = ids("later", 2);
    fixture.run(start_steps(
        address.clone(),
        task_queue.clone(),
        later.clone(),
        (3, 100),
        Duration::ZERO,
    ));
    // As patient as the wave above: in CI, under load, the first of these once took over 60 s.
    let outcomes = fixture.run(steps_outcomes(
        address.clone(),
        later,
        Duration::from_secs(150),
    ));
    assert_three_steps_each(&outcomes);
    wait_until(
        "the last invocations ended",
        Duration::from_secs(60),
        || fixture.lambda.in_flight(name) == 0,
    );

    let records = fixture.records(name);
    for r in &records {
        eprintln!(
            "{}  started {:+} ms from the kill, outcome {:?}, error {:?}, response {}",
            r.report_line(),
            r.started_at_ms as i64 - killed_at as i64,
            r.outcome,
            r.error_message,
            summary(r)
        );
    }
    assert_within_deadlines(&records, TIMEOUT);
    let straddling: Vec<_> = records
        .iter()
        .filter(|r| r.started_at_ms < killed_at && killed_at < r.ended_at_ms)
        .collect();
    assert!(
        !straddling.is_empty(),
        "an invocation was running when the server died: {records:?}"
    );
    for r in &straddling {
        // It either rode the outage out or failed saying what happened; either way in time.
        if r.outcome != Outcome::Success {
            let message = r.error_message.clone().unwrap_or_default();
            assert!(message.contains(&address), "a clear error: {r:?}");
        }
    }
    let after_restart: Vec<_> = records
        .iter()
        .filter(|r| r.started_at_ms > restarted_at)
        .collect();
    assert!(
        after_restart.iter().all(|r| r.outcome == Outcome::Success),
        "{after_restart:?}"
    );
    let environments_before: Vec<u32> = records
        .iter()
        .filter(|r| r.started_at_ms < killed_at)
        .map(|r| r.environment)
        .collect();
    assert!(
        records.iter().any(|r| r.started_at_ms > warm_since
            && !r.cold_start
            && environments_before.contains(&r.environment)
            && r.activity_tasks.unwrap_or(0) > 0),
        "an environment from before the restart did the later work warm: {records:?}"
    );

    fixture.run(async move { server.stop().await });
}

/// Removes a file when dropped, also when the test fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn misbehaving_activities_on_a_multi_thread_worker_neither_overrun_nor_kill_the_environment() {
    const NAME: &str = "misbehaving-faults";
    const TIMEOUT: Duration = Duration::from_secs(15);
    let fixture = fixture();
    let server = &fixture.server;
    let task_queue = fixture.deploy(
        NAME,
        &server.address,
        TIMEOUT,
        1,
        &[("TEST_WORKER_RUNTIME", "multi_thread")],
    );
    let address = server.address.clone();
    let (result, history) = fixture.run(async move {
        let client = common::client(&address).await;
        let id = format!("{NAME}-1");
        let handle = client
            .start_workflow(
                MisbehavingWorkflow::run,
                (),
                WorkflowStartOptions::new(task_queue, id.clone()).build(),
            )
            .await
            .unwrap();
        let result = tokio::time::timeout(
            Duration::from_secs(120),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .expect("the workflow completed within 120s")
        .unwrap();
        (result, History::fetch(&client, &id).await)
    });

    // The panic became the activity's failure, which the workflow saw and reported.
    let failures = history.activity_failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains(&format!("Activity function panicked: {PANIC_MESSAGE}")),
        "{failures:?}"
    );
    assert!(result.starts_with("panicked: "), "{result}");
    assert!(result.contains(PANIC_MESSAGE), "{result}");
    // The first attempts of the other two never finished (they ignored cancellation or held
    // their thread when the worker stopped); each completed on a retry, exactly once.
    let attempt = |label: &str| -> u32 {
        let rest = result
            .split(label)
            .nth(1)
            .unwrap_or_else(|| panic!("{result}"));
        rest.split(';').next().unwrap().trim().parse().unwrap()
    };
    assert!(attempt("ignored cancellation: attempt ") >= 2, "{result}");
    assert!(attempt("blocked a thread: attempt ") >= 2, "{result}");
    assert_eq!(history.count(EventType::WorkflowExecutionCompleted), 1);
    assert_eq!(history.count(EventType::ActivityTaskScheduled), 3);
    assert_eq!(history.count(EventType::ActivityTaskCompleted), 2);

    wait_until("the invocations ended", Duration::from_secs(60), || {
        fixture.lambda.in_flight(NAME) == 0
    });
    let records = fixture.records(NAME);
    for r in &records {
        eprintln!("{}  {:?} {}", r.report_line(), r.outcome, summary(r));
    }
    // Every invocation returned before its deadline, although activities ignored cancellation
    // or blocked a thread when it stopped.
    assert_within_deadlines(&records, TIMEOUT);
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Success),
        "{records:?}"
    );
    // The worker really was stopped with those activities running: one invocation had to
    // abandon them at the hard stop, and still returned in time (above).
    assert_eq!(
        records
            .iter()
            .filter(|r| common::response(r, "shutdown") == "abandoned")
            .count(),
        1,
        "{records:?}"
    );
    // One process served them all: the panic did not take it down, and the invocations after
    // the misbehaving ones reused it warm.
    assert!(
        records.len() >= 2,
        "a later invocation ran the retries: {records:?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r.environment == records[0].environment),
        "{records:?}"
    );
    assert_eq!(
        records.iter().filter(|r| r.cold_start).count(),
        1,
        "{records:?}"
    );
}

#[test]
fn an_unreachable_server_is_a_clear_error_naming_the_address_well_within_the_budget() {
    const NAME: &str = "unreachable-faults";
    const TIMEOUT: Duration = Duration::from_secs(10);
    let fixture = fixture();
    let server = &fixture.server;
    let address = server.address.clone();
    // The version is attached and its task queue registered by a first, healthy invocation...
    let task_queue = fixture.deploy(NAME, &address, TIMEOUT, 1, &[]);
    wait_until(
        "the registering invocation ended",
        Duration::from_secs(60),
        || !fixture.records(NAME).is_empty() && fixture.lambda.in_flight(NAME) == 0,
    );
    assert_eq!(fixture.records(NAME)[0].outcome, Outcome::Success);
    // ...then the function's configuration points its worker at an address where nothing
    // listens (the worker's server, independent of the server invoking it).
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    fixture.add_function(NAME, &dead, TIMEOUT, 1, &[]);
    let broken_at = common::epoch_ms();
    let failed = |fixture: &Fixture| -> Vec<InvocationRecord> {
        fixture
            .records(NAME)
            .into_iter()
            .filter(|r| r.started_at_ms >= broken_at)
            .collect()
    };
    // Work arrives; the server invokes the function for it, and each invocation fails.
    let started = Instant::now();
    let mut workflows = Vec::new();
    while failed(fixture).len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the server stopped invoking: {:?}",
            fixture.records(NAME)
        );
        let id = format!("{NAME}-{}", workflows.len());
        workflows.push(id.clone());
        fixture.run({
            let (address, task_queue) = (address.clone(), task_queue.clone());
            async move {
                common::client(&address)
                    .await
                    .start_workflow(
                        GreetingWorkflow::run,
                        "unreachable".to_owned(),
                        WorkflowStartOptions::new(task_queue, id).build(),
                    )
                    .await
                    .unwrap();
            }
        });
        std::thread::sleep(Duration::from_secs(3));
    }
    wait_until(
        "the failing invocations ended",
        Duration::from_secs(30),
        || fixture.lambda.in_flight(NAME) == 0,
    );
    let failed = failed(fixture);
    for r in &failed {
        eprintln!(
            "{}  {:?}: {:?}",
            r.report_line(),
            r.error_type,
            r.error_message
        );
    }
    assert_within_deadlines(&failed, TIMEOUT);
    for r in &failed {
        assert_eq!(r.outcome, Outcome::Error, "{r:?}");
        assert_eq!(
            r.error_type.as_deref(),
            Some("TemporalLambdaWorker.Connect"),
            "{r:?}"
        );
        let message = r.error_message.as_deref().unwrap_or_default();
        assert!(
            message.contains(&format!("cannot connect to Temporal at http://{dead}")),
            "the error names {dead}: {r:?}"
        );
        // Well within the budget: before the worker would even have stopped polling
        // (timeout - the 7 s shutdown deadline buffer).
        assert!(
            r.duration_ms < (TIMEOUT - Duration::from_secs(7)).as_millis() as f64,
            "{r:?}"
        );
    }

    // The fix (the right address) is deployed: the waiting workflows and a new one complete.
    fixture.add_function(NAME, &address, TIMEOUT, 1, &[]);
    let fixed_at = common::epoch_ms();
    workflows.push(format!("{NAME}-after-fix"));
    let results = fixture.run({
        let (address, task_queue, ids) = (address.clone(), task_queue.clone(), workflows.clone());
        async move {
            let client = common::client(&address).await;
            client
                .start_workflow(
                    GreetingWorkflow::run,
                    "fixed".to_owned(),
                    WorkflowStartOptions::new(task_queue, ids.last().unwrap().clone()).build(),
                )
                .await
                .unwrap();
            let mut results = Vec::new();
            for id in ids {
                let handle = client.get_workflow_handle::<GreetingWorkflow>(id.clone());
                let result = tokio::time::timeout(
                    Duration::from_secs(90),
                    handle.get_result(WorkflowGetResultOptions::default()),
                )
                .await
                .unwrap_or_else(|_| panic!("{id} completed after the fix"))
                .unwrap();
                results.push(result);
                History::fetch(&client, &id).await.assert_completed_once(1);
            }
            results
        }
    });
    let mut expected = vec!["Hello, unreachable!".to_owned(); workflows.len() - 1];
    expected.push("Hello, fixed!".to_owned());
    assert_eq!(results, expected);
    wait_until("the invocations ended", Duration::from_secs(30), || {
        fixture.lambda.in_flight(NAME) == 0
    });
    let after_fix: Vec<_> = fixture
        .records(NAME)
        .into_iter()
        .filter(|r| r.started_at_ms >= fixed_at)
        .collect();
    assert_within_deadlines(&after_fix, TIMEOUT);
    assert!(
        after_fix
            .iter()
            .any(|r| r.outcome == Outcome::Success && r.activity_tasks.unwrap_or(0) > 0),
        "{after_fix:?}"
    );
}

/// How long the soak injects faults: `SOAK_SECS` seconds, 60 unless set (what `cargo test`
/// and CI run); `scripts/soak` runs it for 15 minutes.
fn soak_duration() -> Duration {
    match std::env::var("SOAK_SECS") {
        Ok(secs) => Duration::from_secs(
            secs.parse()
                .unwrap_or_else(|_| panic!("SOAK_SECS={secs}: give a number of seconds")),
        ),
        Err(_) => Duration::from_secs(60),
    }
}

/// The faults the soak injects, one after another in this order, with work flowing in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The server is killed (SIGKILL) and comes back 3 s later with its state.
    ServerRestart,
    /// Lambda's shutdown phase for every environment, busy or frozen: SIGTERM, SIGKILL 500 ms
    /// later.
    Sigterm,
    /// An activity blocks the only thread of its environment, which is killed at the timeout.
    /// (The next [`Fault::Sigterm`] comes over 15 s later, once that kill is done.)
    KilledAtTimeout,
    /// No work arrives for 50 s, longer than the client's keepalive interval plus its
    /// timeout, while environments sit frozen on idle connections (soaks of 5 minutes or more).
    QuietGap,
}

/// Time between one fault and the next, for work to flow.
const SOAK_CALM: Duration = Duration::from_secs(8);
/// Time between two workflow starts of the soak's steady stream.
const SOAK_SPACING: Duration = Duration::from_millis(400);

/// The soak's steady stream of workflows.
#[derive(Default)]
struct Arrivals {
    /// The ids of the workflows started so far.
    started: std::sync::Mutex<Vec<String>>,
    paused: AtomicBool,
    stopped: AtomicBool,
}

impl Arrivals {
    fn started(&self) -> Vec<String> {
        self.started.lock().unwrap().clone()
    }

    /// Starts a [`StepsWorkflow`] of three 200 ms steps every [`SOAK_SPACING`] until stopped,
    /// retrying each start while the server is away, as a client with production traffic
    /// would. Each id is used once (a start whose reply was lost shows as already started).
    async fn run(self: Arc<Self>, address: String, task_queue: String, prefix: String) {
        let client = common::client(&address).await;
        let mut next = 0;
        while !self.stopped.load(Ordering::SeqCst) {
            tokio::time::sleep(SOAK_SPACING).await;
            if self.paused.load(Ordering::SeqCst) {
                continue;
            }
            let id = format!("{prefix}-{next}");
            next += 1;
            let options = WorkflowStartOptions::new(task_queue.clone(), id.clone())
                .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
                .build();
            loop {
                match client
                    .start_workflow(StepsWorkflow::run, (3, 200), options.clone())
                    .await
                {
                    Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            self.started.lock().unwrap().push(id);
        }
    }
}

#[test]
fn a_soak_of_rotating_faults_loses_no_workflow_duplicates_none_and_overruns_no_deadline() {
    const NAME: &str = "soak-faults";
    const TIMEOUT: Duration = Duration::from_secs(15);
    let duration = soak_duration();
    let fixture = fixture();
    // The default single-threaded runtime, so a blocking activity really blocks its worker.
    let (mut server, _state) = fixture.deploy_restartable(NAME, TIMEOUT, 4, &[]);
    let address = server.address.clone();
    let task_queue = format!("{NAME}-tq");
    let arrivals = Arc::new(Arrivals::default());
    let stream = fixture.runtime.spawn(Arc::clone(&arrivals).run(
        address.clone(),
        task_queue.clone(),
        NAME.to_owned(),
    ));

    let mut rotation = vec![Fault::ServerRestart, Fault::Sigterm, Fault::KilledAtTimeout];
    if duration >= Duration::from_secs(300) {
        rotation.push(Fault::QuietGap);
    }
    let mut injected = Vec::new();
    let mut outages = Vec::new();
    let mut blockers = Vec::new();
    let mut blocker_starts = Vec::new();
    let mut sigterms = Vec::new();
    let mut retired = 0;
    let soak_started = Instant::now();
    while soak_started.elapsed() < duration {
        std::thread::sleep(SOAK_CALM);
        let fault = rotation[injected.len() % rotation.len()];
        eprintln!(
            "soak {:>4} s: {fault:?} at {} ms since the epoch",
            soak_started.elapsed().as_secs(),
            common::epoch_ms()
        );
        match fault {
            Fault::ServerRestart => {
                let down = common::epoch_ms();
                server = fixture.run(async move {
                    server.kill().await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    server.restart().await.unwrap();
                    server
                });
                outages.push((down, common::epoch_ms()));
            }
            Fault::Sigterm => {
                sigterms.push(common::epoch_ms());
                let retirements =
                    fixture.run(async move { fixture.lambda.retire_environments(NAME).await });
                // Each one answered its invocation and exited inside Lambda's 500 ms.
                assert!(
                    retirements.iter().all(|r| r.exited_after.is_some()),
                    "killed at the limit: {retirements:?}"
                );
                retired += retirements.len();
            }
            Fault::KilledAtTimeout => {
                let id = format!("{NAME}-blocker-{}", blockers.len());
                blockers.push(id.clone());
                blocker_starts.push(common::epoch_ms());
                let (address, task_queue) = (address.clone(), task_queue.clone());
                fixture.run(async move {
                    common::client(&address)
                        .await
                        .start_workflow(
                            OutlivesTimeoutWorkflow::run,
                            (),
                            WorkflowStartOptions::new(task_queue, id).build(),
                        )
                        .await
                        .unwrap();
                });
            }
            Fault::QuietGap => {
                arrivals.paused.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(50));
                arrivals.paused.store(false, Ordering::SeqCst);
            }
        }
        injected.push(fault);
    }
    let faults_ended = Instant::now();

    // Work keeps arriving until everything started during the faults has completed (retried
    // activities wait for an invocation, which new work brings); then the stream stops and
    // its last workflows complete too.
    let during = arrivals.started();
    let patience = Duration::from_secs(180);
    let steps = fixture.run(steps_outcomes(address.clone(), during.clone(), patience));
    let blocked: Vec<(u32, History)> = fixture.run({
        let (address, ids) = (address.clone(), blockers.clone());
        async move {
            let client = common::client(&address).await;
            let mut blocked = Vec::new();
            for id in ids {
                let handle = client.get_workflow_handle::<OutlivesTimeoutWorkflow>(id.clone());
                let result = handle.get_result(WorkflowGetResultOptions::default());
                let attempt = tokio::time::timeout(patience, result)
                    .await
                    .unwrap_or_else(|_| panic!("{id} completed within {patience:?}"))
                    .unwrap();
                let history = History::fetch(&client, &id).await;
                history.assert_completed_once(1);
                blocked.push((attempt, history));
            }
            blocked
        }
    });
    let blocked_attempts: Vec<u32> = blocked.iter().map(|(attempt, _)| *attempt).collect();
    arrivals.stopped.store(true, Ordering::SeqCst);
    fixture.run(async move { stream.await.unwrap() });
    let last = arrivals.started().split_off(during.len());
    let last_steps = fixture.run(steps_outcomes(address.clone(), last.clone(), patience));
    let drained_after = faults_ended.elapsed();
    wait_until("the invocations ended", Duration::from_secs(90), || {
        fixture.lambda.in_flight(NAME) == 0
    });

    // Nothing lost, nothing done twice: every workflow returned 1 + 2 + 3 and its history shows
    // one completion, each step scheduled and completed exactly once.
    assert_three_steps_each(&steps);
    assert_three_steps_each(&last_steps);
    // No task waited for a timeout unless a fault caused it: handed to a worker while the server
    // was away (or a moment either side), to one that SIGTERM stopped mid-invocation (no time to
    // drain), or while a blocking activity held an environment that was then killed at its
    // timeout with its polls still at the server.
    let near = |lost_at: i64, from: u64, to: u64| {
        lost_at + 2_000 >= from as i64 && lost_at <= to as i64 + 2_000
    };
    let fault_of = |lost_at: i64| {
        if outages.iter().any(|&(down, up)| near(lost_at, down, up)) {
            Some("the server restart")
        } else if blocker_starts
            .iter()
            .any(|&at| near(lost_at, at, at + TIMEOUT.as_millis() as u64))
        {
            Some("an environment killed at its timeout")
        } else if sigterms.iter().any(|&at| near(lost_at, at, at + 500)) {
            Some("SIGTERM")
        } else {
            None
        }
    };
    let mut caused = Vec::new();
    let mut uncaused = Vec::new();
    let histories = steps.iter().chain(&last_steps).map(|(_, h)| (h, vec![]));
    let blocked = blocked
        .iter()
        .map(|(attempt, h)| (h, vec![("block_first_attempt", *attempt)]));
    for (history, on_purpose) in histories.chain(blocked) {
        for wait in history.timeout_waits(&on_purpose) {
            match fault_of(wait.lost_at_ms) {
                Some(fault) => caused.push(format!("{} (caused by {fault})", wait.line)),
                None => uncaused.push(wait.line),
            }
        }
    }
    assert!(
        uncaused.is_empty(),
        "tasks waited for timeouts no fault caused:\n{}",
        uncaused.join("\n")
    );
    // The blocking first attempt never finished; a retry did.
    assert!(
        blocked_attempts.iter().all(|&a| a >= 2),
        "{blocked_attempts:?}"
    );

    let records = fixture.records(NAME);
    let count = |outcome: Outcome| records.iter().filter(|r| r.outcome == outcome).count();
    let in_outage = |r: &InvocationRecord| {
        outages
            .iter()
            .any(|&(down, up)| r.started_at_ms <= up && down <= r.ended_at_ms)
    };
    for r in &records {
        match r.outcome {
            // Only the environments an injected blocking activity held were killed.
            Outcome::Timeout => {}
            Outcome::Success => assert!(r.ended_at_ms <= r.deadline_ms, "overran: {r:?}"),
            // An invocation may fail while the server is away, in time and saying where.
            Outcome::Error => {
                assert!(in_outage(r), "failed with the server up: {r:?}");
                assert!(r.ended_at_ms <= r.deadline_ms, "overran: {r:?}");
                let message = r.error_message.as_deref().unwrap_or_default();
                assert!(message.contains(&address), "a clear error: {r:?}");
            }
            Outcome::Crashed | Outcome::InitError => panic!("the process died: {r:?}"),
        }
    }
    assert!(count(Outcome::Timeout) <= blockers.len(), "{records:?}");
    if !blockers.is_empty() {
        assert!(
            count(Outcome::Timeout) >= 1,
            "a blocker was killed: {records:?}"
        );
    }
    if injected.contains(&Fault::Sigterm) {
        assert!(
            records
                .iter()
                .any(|r| common::response(r, "stopped_by") == "sigterm"),
            "an invocation was stopped by SIGTERM: {records:?}"
        );
    }
    let environments: HashSet<u32> = records.iter().map(|r| r.environment).collect();
    let of = |fault: Fault| injected.iter().filter(|&&f| f == fault).count();
    eprintln!(
        "soak: {} s of faults: {} server restarts, {} SIGTERM rounds ({retired} environments \
         retired), {} thread-blocking activities, {} quiet gaps; {} workflows \
         completed exactly once, the last {} s after the last fault; {} invocations in {} \
         environments: {} succeeded, {} failed while the server was away, {} killed at the \
         timeout; {} tasks waited for a timeout a fault caused{}",
        duration.as_secs(),
        of(Fault::ServerRestart),
        of(Fault::Sigterm),
        of(Fault::KilledAtTimeout),
        of(Fault::QuietGap),
        steps.len() + last_steps.len() + blockers.len(),
        drained_after.as_secs(),
        records.len(),
        environments.len(),
        count(Outcome::Success),
        count(Outcome::Error),
        count(Outcome::Timeout),
        caused.len(),
        caused
            .iter()
            .map(|w| format!("\n  {w}"))
            .collect::<String>(),
    );
    fixture.run(async move { server.stop().await });
}
