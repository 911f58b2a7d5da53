//! Load, end to end with no shortcut invokes: a burst of greeting workflows started at once on
//! the real dev server, executed by the `test-worker` bootstrap that its Worker Controller
//! invokes in lambda-local, at a concurrency limit of 10.
//!
//! `LOAD_WORKFLOWS` sets the burst (default 100, what `cargo test` runs); `scripts/load-test`
//! runs 1000. `LOAD_WORKER` replaces the bootstrap (default: the debug `test-worker`;
//! `scripts/load-test` builds a release one). The test prints the figures it measured.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

mod common;

use common::{History, assert_within_deadlines, wait_until};
use futures::{StreamExt, stream};
use greeting::GreetingWorkflow;
use lambda_local::{InvocationRecord, Outcome};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::protos::temporal::api::enums::v1::EventType;

const NAME: &str = "load";
const CONCURRENCY: u32 = 10;
const TIMEOUT: Duration = Duration::from_secs(20);
/// Requests the test's client has in flight at once (starts, results, histories).
const CLIENT_CONCURRENCY: usize = 50;

fn workflows() -> usize {
    match std::env::var("LOAD_WORKFLOWS") {
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("LOAD_WORKFLOWS={n}: give a number of workflows")),
        Err(_) => 100,
    }
}

/// Milliseconds since the epoch of an event.
fn event_ms(history: &History, kind: EventType) -> i64 {
    let event = history
        .events
        .iter()
        .find(|e| e.event_type == kind as i32)
        .unwrap_or_else(|| panic!("{} has no {kind:?}", history.workflow_id));
    let time = event.event_time.as_ref().unwrap();
    time.seconds * 1000 + i64::from(time.nanos) / 1_000_000
}

#[test]
fn a_burst_of_workflows_drains_at_a_concurrency_limit_of_10_none_lost_or_duplicated() {
    let n = workflows();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let role = common::role("load-external-id");
    let local = common::start(&runtime, &role);
    let address = local.server.address.clone();
    let mut function = common::test_worker(NAME, &address, TIMEOUT.as_secs(), CONCURRENCY);
    if let Ok(worker) = std::env::var("LOAD_WORKER") {
        function.command = vec![worker];
    }
    let worker = function.command[0].clone();
    {
        let _guard = runtime.enter();
        local.lambda.add_function(function).unwrap();
    }
    let arn = local.lambda.version_arn(NAME).unwrap();
    let task_queue = format!("{NAME}-tq");
    let ids: Vec<String> = (0..n).map(|i| format!("{NAME}-{i}")).collect();

    let (start_ms, results, histories) = runtime.block_on(async {
        common::attach_current(&local.server, &arn, NAME, &role).await;
        let client = common::client(&address).await;
        // The burst: every start at once, as many in flight as the client allows.
        let started = Instant::now();
        let starts: Vec<_> = stream::iter(&ids)
            .map(|id| {
                client.start_workflow(
                    GreetingWorkflow::run,
                    id.clone(),
                    WorkflowStartOptions::new(task_queue.clone(), id.clone()).build(),
                )
            })
            .buffer_unordered(CLIENT_CONCURRENCY)
            .collect()
            .await;
        for start in starts {
            start.unwrap();
        }
        let start_ms = started.elapsed().as_millis();
        let results: Vec<String> = stream::iter(&ids)
            .map(|id| {
                let handle = client.get_workflow_handle::<GreetingWorkflow>(id.clone());
                async move {
                    tokio::time::timeout(
                        Duration::from_secs(600),
                        handle.get_result(WorkflowGetResultOptions::default()),
                    )
                    .await
                    .unwrap_or_else(|_| panic!("{id} completed within 10 minutes"))
                    .unwrap()
                }
            })
            .buffered(CLIENT_CONCURRENCY)
            .collect()
            .await;
        let histories: Vec<History> = stream::iter(&ids)
            .map(|id| History::fetch(&client, id))
            .buffered(CLIENT_CONCURRENCY)
            .collect()
            .await;
        (start_ms, results, histories)
    });

    // Every workflow completed with its own result, exactly once, its activity run once.
    let expected: Vec<String> = ids.iter().map(|id| format!("Hello, {id}!")).collect();
    assert_eq!(results, expected);
    for history in &histories {
        history.assert_completed_once(1);
    }
    let sticky_waits = common::assert_no_timeout_waits(&histories, &[]);
    let first_start = histories
        .iter()
        .map(|h| event_ms(h, EventType::WorkflowExecutionStarted))
        .min()
        .unwrap();
    let last_completion = histories
        .iter()
        .map(|h| event_ms(h, EventType::WorkflowExecutionCompleted))
        .max()
        .unwrap();

    wait_until("the invocations ended", Duration::from_secs(600), || {
        local.lambda.in_flight(NAME) == 0
    });
    let records: Vec<InvocationRecord> = local
        .lambda
        .records()
        .into_iter()
        .filter(|r| r.function_name == NAME)
        .collect();
    // No invocation overran its deadline, failed or crashed.
    assert_within_deadlines(&records, TIMEOUT);
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Success),
        "{:?}",
        records.iter().find(|r| r.outcome != Outcome::Success)
    );
    // The workers started each activity exactly once between them.
    let activity_tasks: u64 = records.iter().filter_map(|r| r.activity_tasks).sum();
    assert_eq!(
        activity_tasks, n as u64,
        "activity tasks the invocations ran"
    );
    // Within the concurrency limit.
    let environments: HashSet<u32> = records.iter().map(|r| r.environment).collect();
    assert!(
        environments.len() <= CONCURRENCY as usize,
        "{environments:?}"
    );
    let most_at_once = records
        .iter()
        .map(|r| {
            records
                .iter()
                .filter(|o| o.started_at_ms <= r.started_at_ms && r.started_at_ms < o.ended_at_ms)
                .count()
        })
        .max()
        .unwrap();
    assert!(most_at_once <= CONCURRENCY as usize, "{most_at_once}");

    let workflow_tasks: u64 = records.iter().filter_map(|r| r.workflow_tasks).sum();
    let max_memory = records.iter().map(|r| r.max_memory_used_mb).max().unwrap();
    let billed_ms: u64 = records.iter().map(|r| r.billed_duration_ms).sum();
    let longest = records
        .iter()
        .map(|r| r.duration_ms)
        .fold(0.0_f64, f64::max);
    println!(
        "load: {n} workflows, worker {worker}, function timeout {}s, concurrency {CONCURRENCY}\n\
         load: burst started in {start_ms} ms; drained in {} ms (first start to last completion)\n\
         load: {} invocations ({} cold) in {} environments, at most {most_at_once} at once; \
         {workflow_tasks} workflow tasks, {activity_tasks} activity tasks\n\
         load: max memory used {max_memory} MB; longest invocation {longest:.0} ms of {} ms; \
         billed {:.1} s in all\n\
         load: no task waited for a timeout; {} workflow tasks waited on a sticky queue",
        TIMEOUT.as_secs(),
        last_completion - first_start,
        records.len(),
        records.iter().filter(|r| r.cold_start).count(),
        environments.len(),
        TIMEOUT.as_millis(),
        billed_ms as f64 / 1000.0,
        sticky_waits.len(),
    );
    runtime.block_on(async move {
        local.server.stop().await;
        local.lambda.shutdown().await;
    });
}
