//! Faults, end to end with no shortcut invokes: the real dev server's Worker Controller invokes
//! the real `test-worker` bootstrap in lambda-local, and something goes wrong on the way: the
//! Temporal server dies mid-invocation and comes back, activities panic, ignore cancellation or
//! block a thread, the function points at an address where nothing listens.
//!
//! (The environment killed at the timeout with an activity in flight is in
//! `worker_controller.rs`; the soak, which rotates these faults under a steady stream of work,
//! in `soak.rs`.)

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

mod common;

use common::{
    History, assert_within_deadlines,
    faults::{assert_three_steps_each, start_steps, steps_outcomes, summary},
    wait_until,
};
use e2e_tests::{MisbehavingWorkflow, PANIC_MESSAGE};
use greeting::GreetingWorkflow;
use lambda_local::{InvocationRecord, Outcome};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::protos::temporal::api::enums::v1::EventType;

type Fixture = common::Shared;

/// One lambda-local and one dev server (state in memory) for the tests of this binary.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::start("faults-external-id"))
}

impl Fixture {
    /// [`Fixture::add_test_worker`], then makes it the current version of deployment `name` on
    /// the shared server. Returns the task queue.
    fn deploy(
        &'static self,
        name: &str,
        temporal_address: &str,
        timeout: Duration,
        concurrency: u32,
        env: &[(&str, &str)],
    ) -> String {
        let arn = self.add_test_worker(name, temporal_address, timeout, concurrency, env);
        let (name, role) = (name.to_owned(), self.role.clone());
        let server = &self.server;
        self.run(async move {
            common::attach_current(server, &arn, &name, &role).await;
            format!("{name}-tq")
        })
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
    let dead = common::free_address();
    fixture.add_test_worker(NAME, &dead, TIMEOUT, 1, &[]);
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
    fixture.add_test_worker(NAME, &address, TIMEOUT, 1, &[]);
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
