//! End to end, with no shortcut invokes: workflows are started on the real Temporal dev server,
//! whose Worker Controller assumes the role and invokes the function in lambda-local, which runs
//! the real bootstrap (`test-worker`: the greeting sample plus test workflows).

use std::{
    collections::HashSet,
    sync::OnceLock,
    time::{Duration, Instant},
};

mod common;

use e2e_tests::{
    ApprovalWorkflow, OutOfMemoryWorkflow, OutlivesTimeoutWorkflow, StepsWorkflow, TimerWorkflow,
};
use greeting::GreetingWorkflow;
use lambda_local::{FunctionConfig, Outcome, RoleConfig};
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::{HasWorkflowDefinition, protos::temporal::api::enums::v1::EventType};

type Fixture = common::Shared;

/// One local environment and one dev server for every test of this binary.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::start("e2e-external-id"))
}

impl Fixture {
    /// `test-worker` as function `name` (see [`common::test_worker`]), polling as build
    /// `worker_build_id`.
    fn function(
        &self,
        name: &str,
        worker_build_id: &str,
        timeout_secs: u64,
        concurrency: u32,
    ) -> FunctionConfig {
        let mut function =
            common::test_worker(name, &self.server.address, timeout_secs, concurrency);
        function.env.insert(
            "TEST_WORKER_BUILD_ID".to_owned(),
            worker_build_id.to_owned(),
        );
        function
    }

    /// Replaces a function's code with one polling as another build (same name and version).
    fn redeploy_with_build(&self, name: &str, worker_build_id: &str) {
        let previous = self.lambda.function_config(name).unwrap();
        let function = self.function(
            name,
            worker_build_id,
            previous.timeout.as_secs(),
            previous.concurrency,
        );
        let _guard = self.runtime.enter();
        self.lambda.add_function(function).unwrap();
    }

    fn deploy(
        &'static self,
        name: &str,
        worker_build_id: &str,
        timeout_secs: u64,
        concurrency: u32,
    ) -> String {
        self.deploy_with_env(name, worker_build_id, timeout_secs, concurrency, &[])
    }

    /// [`Fixture::deploy`] with extra variables in the function's environment.
    fn deploy_with_env(
        &'static self,
        name: &str,
        worker_build_id: &str,
        timeout_secs: u64,
        concurrency: u32,
        env: &[(&str, &str)],
    ) -> String {
        let task_queue = format!("{name}-tq");
        let mut function = self.function(name, worker_build_id, timeout_secs, concurrency);
        for (key, value) in env {
            function.env.insert((*key).to_owned(), (*value).to_owned());
        }
        let _guard = self.runtime.enter();
        self.lambda.add_function(function).unwrap();
        let arn = self.lambda.version_arn(name).unwrap();
        let (name, role) = (name.to_owned(), self.role.clone());
        let server = &self.server;
        self.run(async move { common::attach_current(server, &arn, &name, &role).await });
        task_queue
    }

    async fn client(&self) -> Client {
        common::client(&self.server.address).await
    }
}

#[test]
fn the_greeting_workflow_completes_through_an_invocation_the_server_made() {
    let fixture = fixture();
    let task_queue = fixture.deploy("greeting-e2e", "build-1", 12, 2);
    let result = greet(&task_queue, "end to end");
    assert_eq!(result, "Hello, end to end!");
    common::wait_until(
        "an invocation was recorded",
        Duration::from_secs(30),
        || {
            fixture
                .records("greeting-e2e")
                .iter()
                .any(|r| r.activity_tasks == Some(1))
        },
    );
    let records = fixture.records("greeting-e2e");
    assert!(
        records.iter().all(|r| r.invocation_type == "Event"),
        "{records:?}"
    );
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Success),
        "{records:?}"
    );
    assert!(records[0].cold_start && records[0].init_duration_ms.is_some());
}

#[test]
fn twenty_workflows_at_once_complete_within_the_concurrency_limit_reusing_warm_environments() {
    const LIMIT: u32 = 3;
    let fixture = fixture();
    let task_queue = fixture.deploy("burst-e2e", "build-1", 10, LIMIT);
    for wave in 0..2 {
        let task_queue = task_queue.clone();
        let results = fixture.run(async move {
            let client = fixture.client().await;
            let mut handles = Vec::new();
            for i in 0..20 {
                handles.push(
                    client
                        .start_workflow(
                            GreetingWorkflow::run,
                            format!("w{wave}-{i}"),
                            WorkflowStartOptions::new(
                                task_queue.clone(),
                                format!("burst-{wave}-{i}"),
                            )
                            .build(),
                        )
                        .await
                        .unwrap(),
                );
            }
            let mut results = Vec::new();
            for handle in handles {
                let result = tokio::time::timeout(
                    Duration::from_secs(120),
                    handle.get_result(WorkflowGetResultOptions::default()),
                )
                .await
                .expect("every workflow completed")
                .unwrap();
                results.push(result);
            }
            let mut histories = Vec::new();
            for i in 0..20 {
                histories.push(common::History::fetch(&client, &format!("burst-{wave}-{i}")).await);
            }
            common::assert_no_timeout_waits(&histories, &[]);
            results
        });
        let expected: Vec<String> = (0..20).map(|i| format!("Hello, w{wave}-{i}!")).collect();
        assert_eq!(results, expected);
        // Let the wave's invocations end, so the next wave finds the environments idle (frozen).
        common::wait_until(
            "the wave's invocations ended",
            Duration::from_secs(60),
            || fixture.lambda.in_flight("burst-e2e") == 0,
        );
    }
    let records = fixture.records("burst-e2e");
    let environments: HashSet<u32> = records.iter().map(|r| r.environment).collect();
    assert!(environments.len() <= LIMIT as usize, "{environments:?}");
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
    assert!(
        most_at_once <= LIMIT as usize,
        "{most_at_once} invocations overlapped"
    );
    assert!(
        records.iter().any(|r| !r.cold_start),
        "no warm reuse in {records:?}"
    );
    let tasks: u64 = records.iter().filter_map(|r| r.activity_tasks).sum();
    assert_eq!(tasks, 40, "each activity ran exactly once: {records:?}");
}

/// One worker, two behaviours: in `mixed` mode the test worker registers the approval workflow
/// as AutoUpgrade and the others as Pinned (the worker default, as most are). Each workflow's
/// completed tasks carry its own behaviour, and when build-2 becomes current the AutoUpgrade
/// workflow moves to it at its next task while the Pinned one stays on build-1 to the end.
#[test]
fn one_worker_sends_each_workflows_behaviour_and_only_autoupgrade_moves_to_a_new_version() {
    const DEPLOYMENT: &str = "mixed-e2e";
    const BUILD_2_FUNCTION: &str = "mixed-e2e-build-2";
    let fixture = fixture();
    let mixed = [("TEST_WORKER_BEHAVIORS", "mixed")];
    let task_queue = fixture.deploy_with_env(DEPLOYMENT, "build-1", 12, 4, &mixed);
    // A second function (a second version of the code) polling as build-2 of the same
    // deployment, attached but not current yet.
    let mut build_2 = fixture.function(BUILD_2_FUNCTION, "build-2", 12, 4);
    for (key, value) in [
        ("TEST_WORKER_BEHAVIORS", "mixed"),
        ("TEST_WORKER_DEPLOYMENT", DEPLOYMENT),
        ("TEMPORAL_TASK_QUEUE", task_queue.as_str()),
    ] {
        build_2.env.insert(key.to_owned(), value.to_owned());
    }
    {
        let _guard = fixture.runtime.enter();
        fixture.lambda.add_function(build_2).unwrap();
    }
    let build_2_arn = fixture.lambda.version_arn(BUILD_2_FUNCTION).unwrap();
    let (pinned, auto_upgrade) = fixture.run(async move {
        let client = fixture.client().await;
        let options = |id: &str| WorkflowStartOptions::new(task_queue.as_str(), id).build();
        // Pinned: three steps of 3 s, across the version change.
        let steps = client
            .start_workflow(StepsWorkflow::run, (3, 3_000), options("mixed-e2e-steps"))
            .await
            .unwrap();
        // AutoUpgrade: an activity and a timer, then it waits for its approval.
        let approval = client
            .start_workflow(ApprovalWorkflow::run, 500, options("mixed-e2e-approval"))
            .await
            .unwrap();
        let waiting = Instant::now();
        while common::History::fetch(&client, "mixed-e2e-approval")
            .await
            .count(EventType::TimerFired)
            == 0
        {
            assert!(
                waiting.elapsed() < Duration::from_secs(60),
                "the timer never fired"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let server = &fixture.server;
        server
            .create_lambda_version(DEPLOYMENT, "build-2", &build_2_arn, &fixture.role)
            .await
            .unwrap();
        server
            .set_current_version(DEPLOYMENT, "build-2", Duration::from_secs(60))
            .await
            .unwrap();
        approval
            .signal(ApprovalWorkflow::approve, (), Default::default())
            .await
            .unwrap();
        let patience = Duration::from_secs(120);
        let approved = tokio::time::timeout(patience, approval.get_result(Default::default()));
        assert_eq!(
            approved.await.expect("approved within 2 minutes").unwrap(),
            6
        );
        let stepped = tokio::time::timeout(patience, steps.get_result(Default::default()));
        assert_eq!(
            stepped.await.expect("stepped within 2 minutes").unwrap(),
            1 + 2 + 3
        );
        (
            common::History::fetch(&client, "mixed-e2e-steps").await,
            common::History::fetch(&client, "mixed-e2e-approval").await,
        )
    });
    use temporalio_common::protos::temporal::api::enums::v1::VersioningBehavior as Behavior;
    let pinned_tasks = pinned.completed_tasks();
    let auto_tasks = auto_upgrade.completed_tasks();
    common::assert_no_timeout_waits(
        &[pinned, auto_upgrade],
        &[(e2e_tests::RETRIED_ON_PURPOSE, 2)],
    );
    assert!(
        pinned_tasks
            .iter()
            .all(|(behavior, build)| *behavior == Behavior::Pinned && build == "build-1"),
        "the Pinned workflow's tasks: {pinned_tasks:?}"
    );
    assert!(
        auto_tasks
            .iter()
            .all(|(behavior, _)| *behavior == Behavior::AutoUpgrade),
        "the AutoUpgrade workflow's tasks: {auto_tasks:?}"
    );
    assert_eq!(auto_tasks.first().map(|(_, b)| b.as_str()), Some("build-1"));
    assert_eq!(auto_tasks.last().map(|(_, b)| b.as_str()), Some("build-2"));
}

/// Starts `workflow` with `input` as `id` on `task_queue`, waits at most two minutes for its
/// result, and fetches its history.
fn run_to_completion<W>(
    workflow: W,
    input: W::Input,
    task_queue: &str,
    id: &str,
) -> (W::Output, common::History)
where
    W: HasWorkflowDefinition + Send + Sync + 'static,
    W::Input: Send + 'static,
    W::Output: Send + 'static,
{
    let fixture = fixture();
    let (task_queue, id) = (task_queue.to_owned(), id.to_owned());
    fixture.run(async move {
        let client = fixture.client().await;
        let patience = Duration::from_secs(120);
        let output =
            common::complete(&client, workflow, input, task_queue, id.clone(), patience).await;
        (output, common::History::fetch(&client, &id).await)
    })
}

/// The idle exit's lookahead (2 s by default): a worker whose cached workflow starts a 1.5 s timer
/// stays for it, so the whole workflow runs in one invocation, from its cache; for a 4 s timer it
/// leaves after its idle second and a new invocation serves the timer. Neither waits for a
/// timeout.
#[test]
fn an_idle_worker_stays_for_a_short_timer_and_leaves_for_a_long_one() {
    let fixture = fixture();
    let name = "lookahead-e2e";
    // A 60 s timeout: only the idle exit can end these invocations early.
    let task_queue = fixture.deploy(name, "build-1", 60, 1);
    for (timer_ms, working_invocations) in [(1_500, 1..=1), (4_000, 2..=3)] {
        // The server's first invocation (on deploy) or the previous case's must be over, so every
        // invocation counted below is this workflow's.
        common::wait_until("the invocations ended", Duration::from_secs(90), || {
            fixture.lambda.in_flight(name) == 0
        });
        let before = fixture.records(name).len();
        let id = format!("lookahead-{timer_ms}");
        let (result, history) = run_to_completion(TimerWorkflow::run, timer_ms, &task_queue, &id);
        assert_eq!(result, 3);
        common::assert_no_timeout_waits(&[history], &[]);
        common::wait_until("the invocations ended", Duration::from_secs(30), || {
            fixture.lambda.in_flight(name) == 0
        });
        let working: Vec<_> = fixture.records(name)[before..]
            .iter()
            .filter(|r| r.processed_no_task == Some(false))
            .cloned()
            .collect();
        assert!(
            working_invocations.contains(&working.len()),
            "{timer_ms} ms timer: {} invocations did work, expected {working_invocations:?}: \
             {working:?}",
            working.len()
        );
        assert!(
            working
                .iter()
                .all(|r| common::response(r, "stopped_by") == "idle")
        );
    }
}

#[test]
fn an_activity_going_over_the_memory_size_kills_the_environment_and_a_retry_completes_the_workflow()
{
    let fixture = fixture();
    // 128 MB, Lambda's smallest size and the default; the first attempt fills 256 MB.
    let task_queue = fixture.deploy("oom-e2e", "build-1", 12, 2);
    let (attempt, history) =
        run_to_completion(OutOfMemoryWorkflow::run, 256, &task_queue, "oom-e2e-1");
    // The first attempt died with its environment and is retried after its start-to-close
    // timeout; as with a kill at the timeout, the second may have been handed to the dead
    // environment's open poll, so 2 or 3. Nothing else waited for a timeout.
    assert!(
        (2..=3).contains(&attempt),
        "the activity completed on a retry, not attempt {attempt}"
    );
    common::assert_no_timeout_waits(&[history], &[("allocates_on_first_attempt", attempt)]);
    common::wait_until("the invocations ended", Duration::from_secs(60), || {
        fixture.lambda.in_flight("oom-e2e") == 0
    });
    let records = fixture.records("oom-e2e");
    let (killed, others): (Vec<_>, Vec<_>) = records
        .iter()
        .partition(|r| r.error_type.as_deref() == Some("Runtime.OutOfMemory"));
    assert_eq!(killed.len(), 1, "{records:?}");
    let killed = killed[0];
    assert_eq!(killed.outcome, Outcome::Crashed, "{killed:?}");
    assert_eq!(killed.max_memory_used_mb, 128, "{killed:?}");
    assert!(
        others.iter().all(|r| r.outcome == Outcome::Success),
        "{records:?}"
    );
    assert!(
        others
            .iter()
            .any(|r| r.started_at_ms > killed.started_at_ms && r.environment != killed.environment),
        "a new environment ran the retry: {records:?}"
    );
}

#[test]
fn an_activity_outliving_the_timeout_is_killed_then_retried_and_the_workflow_completes() {
    let fixture = fixture();
    let task_queue = fixture.deploy("timeout-e2e", "build-1", 12, 2);
    let (attempt, history) = run_to_completion(
        OutlivesTimeoutWorkflow::run,
        (),
        &task_queue,
        "timeout-e2e-1",
    );
    // Attempt 1 blocked the only environment until it was killed; attempt 2 may have been
    // handed to that environment's still-open poll and been lost with it, so 2 or 3: the kill
    // causes those retries, and nothing else may wait for a timeout.
    assert!(
        (2..=3).contains(&attempt),
        "the activity completed on a retry, not attempt {attempt}"
    );
    common::assert_no_timeout_waits(&[history], &[("block_first_attempt", attempt)]);
    common::wait_until("the invocations ended", Duration::from_secs(60), || {
        fixture.lambda.in_flight("timeout-e2e") == 0
    });
    let records = fixture.records("timeout-e2e");
    let timed_out: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Timeout)
        .collect();
    assert_eq!(timed_out.len(), 1, "{records:?}");
    let killed = timed_out[0];
    // Killed at its deadline (the duration clock starts at pick-up, a moment after the
    // deadline was set, so it reads a hair under the timeout).
    assert!(
        killed.ended_at_ms >= killed.deadline_ms,
        "killed at the deadline: {killed:?}"
    );
    assert!(
        killed.duration_ms > 11_900.0,
        "ran until the timeout: {killed:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.outcome == Outcome::Success && r.started_at_ms > killed.started_at_ms),
        "a later invocation ran the retry: {records:?}"
    );
    // Nothing lost or duplicated: one scheduled activity, one completion, one workflow result.
    let history = fixture.run(async move {
        fixture
            .server
            .cli(&["workflow", "show", "-w", "timeout-e2e-1", "-o", "json"])
            .await
            .unwrap()
    });
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let count = |kind: &str| {
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.get(kind).is_some())
            .count()
    };
    assert_eq!(count("activityTaskScheduledEventAttributes"), 1);
    assert_eq!(count("activityTaskCompletedEventAttributes"), 1);
    assert_eq!(count("workflowExecutionCompletedEventAttributes"), 1);
}

#[test]
fn a_build_id_mismatch_makes_the_server_reinvoke_and_each_invocation_is_flagged() {
    let fixture = fixture();
    // Version build-1 is attached and its task queue registered by a correct first invocation...
    let task_queue = fixture.deploy("mismatch-e2e", "build-1", 9, 1);
    common::wait_until(
        "the registering invocation ended",
        Duration::from_secs(60),
        || {
            !fixture.records("mismatch-e2e").is_empty()
                && fixture.lambda.in_flight("mismatch-e2e") == 0
        },
    );
    // ...then the function's code changes to a build the version does not name (the classic
    // mistake: new code deployed without a new version). Workflows keep arriving; each batch of
    // tasks for build-1 finds no poller, so the server invokes the function again, and each
    // invocation, polling as the other build, gets nothing. (A backlog with no new tasks is only
    // re-checked every few minutes, so the test keeps tasks coming as production traffic would.)
    fixture.redeploy_with_build("mismatch-e2e", "build-other");
    let before = fixture.records("mismatch-e2e").len();
    let started = Instant::now();
    let mut workflows = 0;
    while fixture.records("mismatch-e2e").len() < before + 3 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server stopped invoking"
        );
        let (task_queue, id) = (task_queue.clone(), format!("mismatch-e2e-{workflows}"));
        fixture.run(async move {
            let client = fixture.client().await;
            client
                .start_workflow(
                    GreetingWorkflow::run,
                    "nobody".to_owned(),
                    WorkflowStartOptions::new(task_queue, id).build(),
                )
                .await
                .unwrap();
        });
        workflows += 1;
        std::thread::sleep(Duration::from_secs(4));
    }
    let records = fixture.records("mismatch-e2e");
    let looping = &records[before..];
    assert!(
        looping.iter().all(|r| r.processed_no_task == Some(true)),
        "every invocation for the mismatched build processed no task: {looping:?}"
    );
    assert!(looping[0].report_line().ends_with("Processed no task"));
    // Stop the loop: the function goes away and the workflows are terminated.
    fixture.run(async move {
        fixture.lambda.remove_function("mismatch-e2e").await;
        for i in 0..workflows {
            let id = format!("mismatch-e2e-{i}");
            fixture
                .server
                .cli(&["workflow", "terminate", "-w", &id, "--reason", "test over"])
                .await
                .unwrap();
        }
    });
}

#[test]
fn misconfigurations_get_clear_errors_and_nothing_crashes() {
    let fixture = fixture();
    let _guard = fixture.runtime.enter();
    let mut function = FunctionConfig::new(
        "errors-e2e",
        vec![env!("CARGO_BIN_EXE_test-worker").to_owned()],
        env!("CARGO_MANIFEST_DIR"),
    );
    function
        .env
        .insert("TEMPORAL_ADDRESS".into(), fixture.server.address.clone());
    fixture.lambda.add_function(function).unwrap();
    let arn = fixture.lambda.version_arn("errors-e2e").unwrap();
    let server = &fixture.server;
    let role = fixture.role.clone();
    let (wrong_id, unknown_fn) = fixture.run(async move {
        let wrong_role = RoleConfig {
            external_id: "not-the-external-id".to_owned(),
            ..role.clone()
        };
        let wrong_id = server
            .create_lambda_version("errors-e2e", "build-1", &arn, &wrong_role)
            .await
            .unwrap_err();
        let unknown = "arn:aws:lambda:us-east-1:123456789012:function:no-such-function:1";
        let unknown_fn = server
            .create_lambda_version("errors-e2e", "build-2", unknown, &role)
            .await
            .unwrap_err();
        (wrong_id, unknown_fn)
    });
    assert!(
        wrong_id.contains("AccessDenied") || wrong_id.to_lowercase().contains("external"),
        "{wrong_id}"
    );
    assert!(
        unknown_fn.contains("not found") || unknown_fn.contains("ResourceNotFound"),
        "{unknown_fn}"
    );

    // The Lambda API's own error contract, over HTTP.
    let endpoint = fixture.lambda.endpoint();
    let address = endpoint.trim_start_matches("http://");
    let (status, body) = common::http(
        address,
        "POST",
        "/2015-03-31/functions/no-such/invocations",
        "{}",
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("Function not found"), "{body}");
    let (status, body) = common::http(
        address,
        "POST",
        "/2015-03-31/functions/errors-e2e/invocations",
        "not json",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("must be JSON"), "{body}");
    let (status, _) = common::http(address, "GET", "/2015-03-31/functions/errors-e2e%3A7", "");
    assert_eq!(status, 404, "an unpublished version is not found");
    let (status, body) = common::http(address, "GET", "/2015-03-31/functions/errors-e2e", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"Timeout\":60"), "{body}");
    let (status, body) = common::http(address, "DELETE", "/2015-03-31/functions/errors-e2e", "");
    assert!(status == 404 || status == 405, "{status} {body}");
    // Still serving.
    assert_eq!(
        common::http(address, "GET", "/2015-03-31/functions/errors-e2e", "").0,
        200
    );
}

/// Deploys a function whose hook records when it runs, completes one greeting workflow through
/// it, and returns the hook file.
fn greet_with_hook_file(name: &str, env: &[(&str, &str)]) -> std::path::PathBuf {
    let fixture = fixture();
    let hook_file = std::env::temp_dir().join(format!("{name}-{}.hooks", std::process::id()));
    let _ = std::fs::remove_file(&hook_file);
    let mut env = env.to_vec();
    env.push(("TEST_WORKER_HOOK_FILE", hook_file.to_str().unwrap()));
    let task_queue = fixture.deploy_with_env(name, "build-1", 60, 1, &env);
    assert_eq!(greet(&task_queue, name), format!("Hello, {name}!"));
    hook_file
}

fn hook_runs(hook_file: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(hook_file)
        .unwrap_or_default()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect()
}

#[test]
fn sigterm_during_an_invocation_runs_the_hooks_and_exits_within_lambdas_limit() {
    let fixture = fixture();
    let name = "sigterm-busy";
    let hook_file = greet_with_hook_file(name, &[("TEMPORAL_LAMBDA_IDLE_EXIT", "off")]);
    // Without the idle exit, the invocation polls until deadline − 7 s (53 s from its start):
    // it is still running. (The server sometimes invokes once more although a worker polls; at
    // a concurrency of 1 that event waits in the queue, and is not part of the shutdown phase.)
    assert!(fixture.lambda.in_flight(name) >= 1);
    assert!(
        hook_runs(&hook_file).is_empty(),
        "no invocation has ended yet"
    );

    let sent = common::epoch_ms();
    let retired = fixture.run(async move { fixture.lambda.retire_environments(name).await });
    assert_eq!(retired.len(), 1, "{retired:?}");
    let exited_after = retired[0]
        .exited_after
        .expect("exited by itself, not killed");
    assert!(
        exited_after < lambda_local::SHUTDOWN_LIMIT,
        "{exited_after:?}"
    );
    // The hooks ran once, after the signal and before the process exited.
    let runs = hook_runs(&hook_file);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        runs[0] >= sent && runs[0] <= sent + exited_after.as_millis() as u64 + 1,
        "hook ran at {} for a SIGTERM sent at {sent} and an exit {exited_after:?} later",
        runs[0]
    );
    common::wait_until(
        "the invocation was recorded",
        Duration::from_secs(10),
        || !fixture.records(name).is_empty(),
    );
    // It answered before exiting: a success saying SIGTERM stopped it, not a crash.
    let record = &fixture.records(name)[0];
    assert_eq!(record.outcome, Outcome::Success, "{record:?}");
    assert_eq!(
        common::response(record, "stopped_by"),
        "sigterm",
        "{record:?}"
    );
    assert!(record.duration_ms < 30_000.0, "{record:?}");
}

#[test]
fn sigterm_to_a_frozen_environment_exits_at_once_without_running_hooks_again() {
    let fixture = fixture();
    let name = "sigterm-idle";
    // Idle exit ends the invocation a second after the workflow is done; the environment then
    // waits frozen for its next event.
    let hook_file = greet_with_hook_file(name, &[("TEMPORAL_LAMBDA_IDLE_EXIT", "1s")]);
    common::wait_until("the environment is idle", Duration::from_secs(20), || {
        fixture.lambda.in_flight(name) == 0 && !fixture.records(name).is_empty()
    });
    // Each ended invocation ran its hooks once (the server sometimes invokes twice for one
    // workflow, so count invocations rather than assume one).
    let invocations = fixture.records(name).len();
    assert_eq!(
        hook_runs(&hook_file).len(),
        invocations,
        "the invocations' own hooks ran"
    );

    let sent = common::epoch_ms();
    let retired = fixture.run(async move { fixture.lambda.retire_environments(name).await });
    assert_eq!(retired.len(), 1, "{retired:?}");
    let exited_after = retired[0]
        .exited_after
        .expect("exited by itself, not killed");
    assert!(
        exited_after < lambda_local::SHUTDOWN_LIMIT,
        "{exited_after:?}"
    );
    // Nothing left to flush: no hook ran between the signal and the exit (a later invocation
    // in a new environment may run its own).
    let during_exit = sent..=sent + exited_after.as_millis() as u64 + 1;
    let runs = hook_runs(&hook_file);
    assert!(
        !runs.iter().any(|at| during_exit.contains(at)),
        "hooks ran again at SIGTERM: {runs:?}, signal sent at {sent}"
    );
}

/// Starts a greeting workflow for `name` on `task_queue` (its id is the name, dashed), waits for
/// its result, and checks that its history waited for no timeout.
fn greet(task_queue: &str, name: &str) -> String {
    let fixture = fixture();
    let (task_queue, name) = (task_queue.to_owned(), name.to_owned());
    fixture.run(async move {
        let client = fixture.client().await;
        let id = name.replace(' ', "-");
        let handle = client
            .start_workflow(
                GreetingWorkflow::run,
                name.clone(),
                WorkflowStartOptions::new(task_queue, id.clone()).build(),
            )
            .await
            .unwrap();
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .expect("the workflow completed within 60s")
        .unwrap();
        let history = common::History::fetch(&client, &id).await;
        common::assert_no_timeout_waits(&[history], &[]);
        result
    })
}

#[test]
fn after_a_frozen_gap_longer_than_the_keepalive_the_next_invocation_works() {
    let fixture = fixture();
    let name = "long-freeze";
    let task_queue = fixture.deploy_with_env(
        name,
        "build-1",
        30,
        1,
        &[("TEMPORAL_LAMBDA_IDLE_EXIT", "1s")],
    );
    assert_eq!(greet(&task_queue, "long-freeze-1"), "Hello, long-freeze-1!");
    common::wait_until("the environment is frozen", Duration::from_secs(20), || {
        fixture.lambda.in_flight(name) == 0 && !fixture.records(name).is_empty()
    });
    let frozen_at = common::epoch_ms();
    // The client pings every 30 s and gives up 15 s after an unanswered ping; a frozen process
    // does neither, so its kept connection wakes up with both overdue.
    std::thread::sleep(Duration::from_secs(50));
    assert_eq!(greet(&task_queue, "long-freeze-2"), "Hello, long-freeze-2!");
    // The invocation after the gap that ran the workflow's activity (the server may also make
    // one that finds nothing to do).
    let served = || {
        fixture
            .records(name)
            .into_iter()
            .find(|r| r.started_at_ms > frozen_at && r.activity_tasks == Some(1))
    };
    common::wait_until(
        "the invocation after the gap ended",
        Duration::from_secs(20),
        || served().is_some(),
    );
    let (first, second) = (&fixture.records(name)[0], served().unwrap());
    assert!(
        !second.cold_start,
        "the frozen environment served it: {second:?}"
    );
    assert_eq!(second.environment, first.environment);
    assert_eq!(second.outcome, Outcome::Success, "{second:?}");
    let response = second.response.as_ref().expect("a JSON response");
    // The kept connection was alive (loopback never drops it), so it passed its check.
    assert_eq!(response["connection"], "reused", "{response}");
}

/// How many of a count the test runs: the variable `name` when set (for long runs), else
/// `default`.
fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `count` approval workflows at once, each approved `signal_after(i)` after its start,
/// and returns their ids once all have completed with the right result.
async fn approval_orders(
    client: &Client,
    task_queue: &str,
    prefix: &str,
    count: usize,
    signal_after: impl Fn(usize) -> Duration,
) -> Vec<String> {
    let mut orders = Vec::new();
    for i in 0..count {
        let id = format!("{prefix}-{i}");
        let handle = client
            .start_workflow(
                ApprovalWorkflow::run,
                2_000,
                WorkflowStartOptions::new(task_queue, id.clone()).build(),
            )
            .await
            .unwrap();
        orders.push((id, handle, signal_after(i)));
    }
    let started = Instant::now();
    futures::future::join_all(orders.into_iter().map(|(id, handle, after)| async move {
        tokio::time::sleep_until((started + after).into()).await;
        handle
            .signal(ApprovalWorkflow::approve, (), Default::default())
            .await
            .unwrap();
        let result = tokio::time::timeout(
            Duration::from_secs(120),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("{id} did not complete within 120 s"))
        .unwrap();
        assert_eq!(result, 6, "{id}");
        id
    }))
    .await
}

/// No task handed to a stopping worker, read from every history. Before stops drained their
/// polls, 3 of 6 single orders lost the retry of `charge` to a stopping worker and waited 10 s.
/// The one wait a stop can still cause is a workflow task put on the sticky queue of a busy
/// worker in the instant before the server forgets the queue (4 of 250 workflows in one long
/// run): it waits the sticky schedule-to-start timeout, 2 s, which the test checks and prints.
#[test]
fn no_task_is_handed_to_a_stopping_worker_across_idle_exit_and_deadline_stops() {
    // Single orders one after the other (the retry of `charge`, 1 s after its failure, is due
    // just as the 1 s idle exit stops the worker), then bursts of orders whose signals arrive
    // spread over the moments invocations stop. STOPS_SINGLE and STOPS_WAVES lengthen the run.
    let singles = count_from_env("STOPS_SINGLE", 6);
    let waves = count_from_env("STOPS_WAVES", 4);
    const PER_WAVE: usize = 25;
    let fixture = fixture();
    let name = "stops-e2e";
    // STOPS_IDLE_EXIT sets the function's TEMPORAL_LAMBDA_IDLE_EXIT, to compare rules.
    let idle_exit = std::env::var("STOPS_IDLE_EXIT").ok();
    let env: Vec<(&str, &str)> = idle_exit
        .iter()
        .map(|v| ("TEMPORAL_LAMBDA_IDLE_EXIT", v.as_str()))
        .collect();
    // A 10 s timeout stops each invocation at most 3 s after it starts (deadline - 7 s).
    let task_queue = fixture.deploy_with_env(name, "build-1", 10, 10, &env);
    fixture.dump_on_failure(name, || {
        let (ids, sticky_waits) = fixture.run(async move {
            let client = fixture.client().await;
            let mut ids = Vec::new();
            for i in 0..singles {
                let prefix = format!("stops-single-{i}");
                ids.extend(
                    approval_orders(&client, &task_queue, &prefix, 1, |_| {
                        Duration::from_millis(2_500)
                    })
                    .await,
                );
            }
            for wave in 0..waves {
                let prefix = format!("stops-wave-{wave}");
                ids.extend(
                    approval_orders(&client, &task_queue, &prefix, PER_WAVE, |i| {
                        Duration::from_millis(300 + (i as u64 * 137) % 3_000)
                    })
                    .await,
                );
            }
            let mut histories = Vec::new();
            for id in &ids {
                histories.push(common::History::fetch(&client, id).await);
            }
            let retried = [(e2e_tests::RETRIED_ON_PURPOSE, 2)];
            (ids, common::assert_no_timeout_waits(&histories, &retried))
        });
        common::wait_until("the invocations ended", Duration::from_secs(60), || {
            fixture.lambda.in_flight(name) == 0
        });
        let records = fixture.records(name);
        let stops_by = |how: &str| {
            records
                .iter()
                .filter(|r| common::response(r, "stopped_by") == how)
                .count()
        };
        let (idle, deadline) = (stops_by("idle"), stops_by("deadline"));
        let drained = records
            .iter()
            .filter(|r| common::response(r, "polls_drained") == "true")
            .count();
        let mut drain_ms: Vec<u64> = records
            .iter()
            .filter_map(|r| common::response(r, "drain_ms").parse().ok())
            .collect();
        drain_ms.sort_unstable();
        eprintln!(
            "{} workflows, {} invocations, stopped by: idle exit {idle}, deadline {deadline}; \
             polls drained in {drained}, drain median {} ms, max {} ms; {} sticky waits{}",
            ids.len(),
            records.len(),
            drain_ms.get(drain_ms.len() / 2).unwrap_or(&0),
            drain_ms.last().unwrap_or(&0),
            sticky_waits.len(),
            sticky_waits
                .iter()
                .map(|w| format!("\n  {w}"))
                .collect::<String>()
        );
        common::assert_within_deadlines(&records, Duration::from_secs(10));
        assert!(
            idle + deadline >= 10 * waves,
            "only {} stops",
            idle + deadline
        );
    });
}

/// Runs a plain long-running worker (the SDK's defaults, no Lambda) for the approval workload on
/// `task_queue` in a thread of its own, until the returned sender is dropped.
fn plain_worker(address: &str, task_queue: &str) -> std::sync::mpsc::Sender<()> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (address, task_queue) = (address.to_owned(), task_queue.to_owned());
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio.block_on(async move {
            let runtime = temporalio_sdk::Runtime::from_current_tokio(
                temporalio_sdk::runtime::RuntimeOptions::builder()
                    .build()
                    .unwrap(),
            )
            .unwrap();
            let client = common::client(&address).await;
            let mut options = temporalio_sdk::WorkerOptions::new(task_queue).build();
            options.register_workflow::<ApprovalWorkflow>().unwrap();
            options.register_activities(e2e_tests::ApprovalActivities);
            let mut worker = temporalio_sdk::Worker::new(&runtime, client, options).unwrap();
            let shutdown = worker.shutdown_handle();
            let until_dropped = tokio::task::spawn_blocking(move || {
                let _ = stopped.recv();
            });
            tokio::select! {
                result = worker.run() => result.unwrap(),
                _ = until_dropped => {
                    shutdown();
                    worker.run().await.unwrap();
                }
            }
        });
    });
    stop
}

/// The comparison: batches of 50 approval orders through Lambda (30 s timeout, 128 MB,
/// concurrency 10, the default idle exit), each followed by the same batch on a plain
/// long-running worker; prints each batch's time on both and their ratio, and checks every
/// Lambda history for timeout waits. A measurement, not a test of speed: run it with `cargo
/// test -p e2e-tests --test worker_controller -- --ignored --nocapture batches` (BATCHES, 20 by
/// default, sets the number of batches).
#[test]
#[ignore = "a measurement (minutes), run by hand"]
fn batches_through_lambda_compared_with_a_long_running_worker() {
    const PER_BATCH: usize = 50;
    let batches = count_from_env("BATCHES", 20);
    let fixture = fixture();
    let name = "batches-e2e";
    let lambda_queue = fixture.deploy(name, "build-1", 30, 10);
    let plain_queue = "plain-batches-tq".to_owned();
    let stop_plain = plain_worker(&fixture.server.address, &plain_queue);
    fixture.dump_on_failure(name, || {
        let (times, sticky_waits) = fixture.run(async move {
            let client = fixture.client().await;
            let spread = |i: usize| Duration::from_millis(300 + (i as u64 * 137) % 3_000);
            let mut times = Vec::new();
            let mut histories = Vec::new();
            for batch in 0..batches {
                let started = Instant::now();
                let prefix = format!("batch-lambda-{batch}");
                let ids = approval_orders(&client, &lambda_queue, &prefix, PER_BATCH, spread).await;
                let lambda = started.elapsed();
                let started = Instant::now();
                let prefix = format!("batch-plain-{batch}");
                approval_orders(&client, &plain_queue, &prefix, PER_BATCH, spread).await;
                let plain = started.elapsed();
                eprintln!(
                    "batch {batch:>2}: Lambda {:>6} ms, long-running worker {:>6} ms, ratio {:.2}",
                    lambda.as_millis(),
                    plain.as_millis(),
                    lambda.as_secs_f64() / plain.as_secs_f64()
                );
                times.push((lambda, plain));
                for id in &ids {
                    histories.push(common::History::fetch(&client, id).await);
                }
            }
            let retried = [(e2e_tests::RETRIED_ON_PURPOSE, 2)];
            (times, common::assert_no_timeout_waits(&histories, &retried))
        });
        let mut ratios: Vec<f64> = times
            .iter()
            .map(|(lambda, plain)| lambda.as_secs_f64() / plain.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        eprintln!(
            "{batches} batches of {PER_BATCH}: Lambda / long-running worker median {:.2}, \
             slowest {:.2}; {} sticky waits{}",
            ratios[ratios.len() / 2],
            ratios[ratios.len() - 1],
            sticky_waits.len(),
            sticky_waits
                .iter()
                .map(|w| format!("\n  {w}"))
                .collect::<String>()
        );
    });
    drop(stop_plain);
}
