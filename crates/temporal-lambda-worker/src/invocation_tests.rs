//! The invocation lifecycle, branch by branch, on a virtual clock with a scripted backend.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use super::*;
use crate::{
    BoxError, IDLE_EXIT_FIRST_TASK_WAIT, Options, POLL_DEADLINE, Version, VersioningBehavior,
    environment::Environment,
    test_support::{FakeBackend, FirstWorkflow, LogCapture, Script},
    timing::SIGTERM_BUDGET,
    worker::setup,
};

const SECOND: Duration = Duration::from_secs(1);
const MILLISECOND: Duration = Duration::from_millis(1);

fn settings_with(configure: impl FnOnce(&mut Options)) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment {
        cwd: dir.path().to_owned(),
        ..Default::default()
    }
    .with("TEMPORAL_TASK_QUEUE", "tq")
    .with("TEMPORAL_ADDRESS", "temporal.test:7233");
    setup(&env, &Version::new("app", "b1"), |options| {
        options.register_workflow_with_behavior::<FirstWorkflow>(VersioningBehavior::Pinned)?;
        // Most tests follow one invocation to its deadline; the idle exit has tests of its own.
        options.idle_exit = None;
        configure(options);
        Ok(())
    })
    .unwrap()
}

fn settings() -> Settings {
    settings_with(|_| {})
}

/// One invocation whose deadline is `deadline_in` from now.
async fn invoke_within(
    backend: &FakeBackend,
    settings: &Settings,
    deadline_in: Duration,
) -> Result<InvocationSummary, InvocationError> {
    invoke(
        backend,
        settings,
        &backend.warm,
        &backend.context(deadline_in),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn success_polls_until_deadline_minus_buffer_then_stops_then_runs_hooks() {
    let log = Arc::new(Mutex::new(Vec::<&str>::new()));
    let settings = settings_with(|options| {
        for name in ["hook 1", "hook 2"] {
            let log = Arc::clone(&log);
            options.on_shutdown(move |_| {
                log.lock().unwrap().push(name);
                async { Ok(()) }
            });
        }
    });
    let backend = FakeBackend::new(Script {
        drain: Duration::from_millis(300),
        polls_end_after: Duration::from_millis(800),
        ..Default::default()
    });
    let summary = invoke_within(&backend, &settings, 60 * SECOND)
        .await
        .unwrap();

    assert_eq!(
        backend.names(),
        [
            "connect http://temporal.test:7233/",
            "create worker on 1 as req-1@arn:aws:lambda:us-east-1:123456789012:function:f",
            "run",
            "drain polls",
            "polls ended: true",
            "stop requested",
            "stopped",
        ]
    );
    // New polls stop at deadline − buffer (60 s − 7 s), less the 1 s the last polls may
    // still need (1.5 s at the server, 0.5 s back) beyond the room the buffer leaves them
    // (2 s − 0.5 s grace − 0.5 s margins); the worker is asked to stop once its polls have
    // ended at the server.
    assert_eq!(backend.at("drain polls"), 52 * SECOND);
    assert_eq!(
        backend.at("stop requested"),
        52 * SECOND + 800 * MILLISECOND
    );
    assert!(summary.polls_drained);
    assert_eq!(summary.drain_ms, 800);
    assert_eq!(summary.shutdown, WorkerShutdown::Graceful);
    assert_eq!(summary.stop_ms, 300);
    // Hooks ran once each, in order, after the worker stopped.
    assert_eq!(*log.lock().unwrap(), ["hook 1", "hook 2"]);
    assert!(backend.elapsed() < 60 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn each_invocation_gets_a_fresh_worker_and_hooks_run_each_time() {
    let runs = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&runs);
    let settings = settings_with(move |options| {
        options.on_shutdown(move |_| {
            *counter.lock().unwrap() += 1;
            async { Ok(()) }
        });
    });
    let backend = FakeBackend::new(Script::default());
    for _ in 0..2 {
        invoke_within(&backend, &settings, 20 * SECOND)
            .await
            .unwrap();
    }
    let created = backend
        .names()
        .iter()
        .filter(|e| e.starts_with("create worker"))
        .count();
    assert_eq!(created, 2);
    assert_eq!(*runs.lock().unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_hook_is_logged_and_the_next_one_still_runs() {
    let ran = Arc::new(Mutex::new(Vec::<&str>::new()));
    let (first, second) = (Arc::clone(&ran), Arc::clone(&ran));
    let settings = settings_with(move |options| {
        options.on_shutdown(move |_| {
            first.lock().unwrap().push("failing");
            async { Err::<(), BoxError>("flush refused".into()) }
        });
        options.on_shutdown(move |_| {
            second.lock().unwrap().push("next");
            async { Ok(()) }
        });
    });
    let logs = LogCapture::start();
    let backend = FakeBackend::new(Script::default());
    invoke_within(&backend, &settings, 20 * SECOND)
        .await
        .unwrap();
    assert_eq!(*ran.lock().unwrap(), ["failing", "next"]);
    let text = logs.text();
    assert!(
        text.contains("shutdown hook failed") && text.contains("flush refused"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hook_that_hangs_is_cut_off_before_the_deadline() {
    let settings = settings_with(|options| {
        options.on_shutdown(|_| async {
            std::future::pending::<()>().await;
            Ok(())
        });
    });
    let logs = LogCapture::start();
    let backend = FakeBackend::new(Script::default());
    invoke_within(&backend, &settings, 20 * SECOND)
        .await
        .unwrap();
    assert!(backend.elapsed() < 20 * SECOND, "{:?}", backend.elapsed());
    assert!(logs.text().contains("ran out of time"));
}

#[tokio::test(start_paused = true)]
async fn connect_error_is_the_invocation_error_and_names_the_address() {
    let backend = FakeBackend::new(Script {
        connect_error: Some("connection refused".to_owned()),
        ..Default::default()
    });
    let err = invoke_within(&backend, &settings(), 30 * SECOND)
        .await
        .unwrap_err();
    assert!(matches!(err, InvocationError::Connect { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("http://temporal.test:7233/") && msg.contains("connection refused"),
        "{msg}"
    );
    assert!(
        !backend
            .names()
            .iter()
            .any(|e| e.starts_with("create worker"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_connect_that_hangs_ends_within_the_work_time() {
    let backend = FakeBackend::new(Script {
        connect_delay: 3600 * SECOND,
        ..Default::default()
    });
    let err = invoke_within(&backend, &settings(), 30 * SECOND)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no answer"), "{err}");
    assert!(backend.elapsed() <= 23 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn connect_time_is_taken_from_the_work_time_not_the_buffer() {
    // 10 s to the deadline, 7 s buffer: 3 s of work time at entry (a warning), then the
    // connection takes 2 s, up to the moment polling would stop, leaving 1 s: too little, so no
    // worker is started.
    let backend = FakeBackend::new(Script {
        connect_delay: Duration::from_millis(2000),
        ..Default::default()
    });
    let err = invoke_within(&backend, &settings(), 10 * SECOND)
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvocationError::DeadlineTooClose { .. }),
        "{err}"
    );
    assert!(
        !backend
            .names()
            .iter()
            .any(|e| e.starts_with("create worker"))
    );
}

#[tokio::test(start_paused = true)]
async fn worker_start_errors_surface() {
    for script in [
        Script {
            create_error: true,
            ..Default::default()
        },
        Script {
            start_error: true,
            ..Default::default()
        },
    ] {
        let backend = FakeBackend::new(script);
        let err = invoke_within(&backend, &settings(), 30 * SECOND)
            .await
            .unwrap_err();
        assert!(matches!(err, InvocationError::WorkerStart(_)), "{err}");
        assert!(
            backend.elapsed() < SECOND,
            "a start failure returns at once"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_stops_on_its_own_is_an_error() {
    let backend = FakeBackend::new(Script {
        stops_early: true,
        ..Default::default()
    });
    let err = invoke_within(&backend, &settings(), 30 * SECOND)
        .await
        .unwrap_err();
    let message = describe(&err);
    assert!(message.contains("before it was asked to"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn an_activity_ignoring_cancellation_is_abandoned_at_the_hard_bound() {
    let ran = Arc::new(Mutex::new(false));
    let flag = Arc::clone(&ran);
    let settings = settings_with(move |options| {
        options.on_shutdown(move |_| {
            *flag.lock().unwrap() = true;
            async { Ok(()) }
        });
    });
    let backend = FakeBackend::new(Script {
        ignores_shutdown: true,
        ..Default::default()
    });
    let summary = invoke_within(&backend, &settings, 60 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.shutdown, WorkerShutdown::Abandoned);
    // Polls stop at 52 s, stop requested at 52 s (they end at once here); stop timeout 5 s;
    // 0.5 s grace: returned at 57.5 s.
    assert_eq!(summary.stop_ms, 5500);
    assert_eq!(backend.elapsed(), Duration::from_millis(57_500));
    assert!(
        *ran.lock().unwrap(),
        "hooks still run after an abandoned stop"
    );
}

#[tokio::test(start_paused = true)]
async fn too_little_time_fails_at_once_without_connecting() {
    let logs = LogCapture::start();
    let backend = FakeBackend::new(Script::default());
    // 8 s to the deadline − 7 s buffer = 1 s of work time: refused.
    let err = invoke_within(&backend, &settings(), 8 * SECOND)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, InvocationError::DeadlineTooClose { .. }));
    assert!(msg.contains("more than 1s is needed"), "{msg}");
    assert!(msg.contains("raise the function timeout"), "{msg}");
    assert!(backend.names().is_empty(), "{:?}", backend.names());
    // Logged as a failed invocation, like every other failure.
    assert!(logs.text().contains("invocation failed"), "{}", logs.text());
}

#[tokio::test(start_paused = true)]
async fn a_past_deadline_fails_at_once() {
    let backend = FakeBackend::new(Script::default());
    let mut context = backend.context(SECOND);
    context.deadline = 0;
    assert!(
        invoke(&backend, &settings(), &backend.warm, &context)
            .await
            .is_err()
    );
    assert!(backend.names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn little_time_warns_but_works() {
    let logs = LogCapture::start();
    let backend = FakeBackend::new(Script::default());
    // 11 s − 7 s = 4 s of work time: under 5 s.
    invoke_within(&backend, &settings(), 11 * SECOND)
        .await
        .unwrap();
    assert_eq!(
        logs.text().matches("little work time").count(),
        1,
        "once per invocation: {}",
        logs.text()
    );
    let logs = LogCapture::start();
    let backend = FakeBackend::new(Script::default());
    invoke_within(&backend, &settings(), 13 * SECOND)
        .await
        .unwrap();
    assert!(!logs.text().contains("little work time"));
}

#[tokio::test(start_paused = true)]
async fn identity_comes_from_the_context_unless_the_user_set_one() {
    let backend = FakeBackend::new(Script::default());
    let mut context = backend.context(20 * SECOND);
    context.request_id.clear();
    context.invoked_function_arn.clear();
    let summary = invoke(&backend, &settings(), &backend.warm, &context)
        .await
        .unwrap();
    assert_eq!(summary.identity, "unknown@unknown");
    assert!(
        backend
            .names()
            .contains(&"create worker on 1 as unknown@unknown".to_owned())
    );

    let settings = settings_with(|options| {
        options.worker.client_identity_override = Some("mine".to_owned());
    });
    let backend = FakeBackend::new(Script::default());
    let summary = invoke_within(&backend, &settings, 20 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.identity, "mine");
    assert!(
        backend
            .names()
            .contains(&"create worker on 1 as mine".to_owned())
    );
}

#[test]
fn identity_joins_request_id_and_function_arn() {
    let mut context = Context::default();
    context.request_id = "abc".to_owned();
    assert_eq!(identity(&context), "abc@unknown");
    context.invoked_function_arn = "arn:x".to_owned();
    assert_eq!(identity(&context), "abc@arn:x");
}

fn idle_settings(idle: Duration) -> Settings {
    settings_with(|options| options.idle_exit = Some(idle))
}

#[tokio::test(start_paused = true)]
async fn without_idle_exit_an_idle_worker_polls_until_the_deadline() {
    let backend = FakeBackend::new(Script::default());
    let summary = invoke_within(&backend, &settings(), 60 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Deadline);
    assert_eq!(backend.at("stop requested"), 52 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn idle_exit_ends_the_invocation_once_nothing_happened_for_the_period() {
    let backend = FakeBackend::new(Script {
        tasks: vec![(Duration::ZERO, SECOND)],
        ..Default::default()
    });
    let summary = invoke_within(&backend, &idle_settings(2 * SECOND), 60 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Idle);
    // One second of work, then two idle seconds.
    assert_eq!(backend.at("stop requested"), 3 * SECOND);
    assert_eq!(summary.activity_tasks, 1);
}

#[tokio::test(start_paused = true)]
async fn before_its_first_task_an_idle_exit_waits_longer() {
    let backend = FakeBackend::new(Script::default());
    let summary = invoke_within(&backend, &idle_settings(2 * SECOND), 60 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Idle);
    assert_eq!(backend.at("stop requested"), IDLE_EXIT_FIRST_TASK_WAIT);
    // A task at 4 s: from then on, the idle period alone counts.
    let backend = FakeBackend::new(Script {
        tasks: vec![(4 * SECOND, SECOND)],
        ..Default::default()
    });
    invoke_within(&backend, &idle_settings(2 * SECOND), 60 * SECOND)
        .await
        .unwrap();
    assert_eq!(backend.at("stop requested"), 7 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn idle_exit_waits_for_a_long_task_and_for_tasks_arriving_in_between() {
    let backend = FakeBackend::new(Script {
        // A 10 s task, then a short one 1.5 s after it ended.
        tasks: vec![
            (Duration::ZERO, 10 * SECOND),
            (Duration::from_millis(11_500), SECOND),
        ],
        ..Default::default()
    });
    let summary = invoke_within(&backend, &idle_settings(2 * SECOND), 60 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Idle);
    let stopped = backend.at("stop requested");
    // The last task ended at 12.5 s; two idle seconds later (checked every 100 ms).
    assert!(
        stopped >= Duration::from_millis(14_500) && stopped <= Duration::from_millis(14_600),
        "{stopped:?}"
    );
    assert_eq!(summary.activity_tasks, 2);
}

#[tokio::test(start_paused = true)]
async fn an_idle_worker_stays_for_work_due_within_the_lookahead() {
    // Each task makes work due 3 s after it ends; the second one comes, the third never does.
    let script = Script {
        tasks: vec![(Duration::ZERO, SECOND), (4 * SECOND, SECOND)],
        due_after_each_task: Some(3 * SECOND),
        ..Default::default()
    };
    let looking = settings_with(|options| {
        options.idle_exit = Some(SECOND);
        options.idle_exit_lookahead = Some(5 * SECOND);
    });
    let backend = FakeBackend::new(script.clone());
    let summary = invoke_within(&backend, &looking, 60 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Idle);
    assert_eq!(summary.activity_tasks, 2);
    // The last task ended at 5 s; what it made due (8 s) did not come within the idle period.
    assert_eq!(backend.at("stop requested"), 9 * SECOND);

    // Without the lookahead, or with one shorter than the wait (due at 4 s, seen idle at 2 s),
    // the first idle second ends it.
    for lookahead in [None, Some(SECOND)] {
        let backend = FakeBackend::new(script.clone());
        let settings = settings_with(|options| {
            options.idle_exit = Some(SECOND);
            options.idle_exit_lookahead = lookahead;
        });
        let summary = invoke_within(&backend, &settings, 60 * SECOND)
            .await
            .unwrap();
        assert_eq!(summary.activity_tasks, 1, "{lookahead:?}");
        assert_eq!(backend.at("stop requested"), 2 * SECOND, "{lookahead:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_still_wins_over_a_busy_worker_with_idle_exit() {
    let busy: Vec<_> = (0..60).map(|i| (i * SECOND, SECOND)).collect();
    let backend = FakeBackend::new(Script {
        tasks: busy,
        ..Default::default()
    });
    let summary = invoke_within(&backend, &idle_settings(2 * SECOND), 30 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Deadline);
    assert_eq!(backend.at("stop requested"), 22 * SECOND);
}

fn hanging_hook(options: &mut Options) {
    options.on_shutdown(|_| async {
        std::future::pending::<()>().await;
        Ok(())
    });
}

/// Invokes twice with a 20 s deadline each; the summaries and the events of the second.
async fn two_invocations(
    backend: &FakeBackend,
    settings: &Settings,
) -> (InvocationSummary, InvocationSummary, Vec<String>) {
    let first = invoke_within(backend, settings, 20 * SECOND).await;
    let before = backend.names().len();
    let second = invoke_within(backend, settings, 20 * SECOND).await;
    (
        first.unwrap(),
        second.unwrap(),
        backend.names()[before..].to_vec(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_kept_connection_is_checked_then_reused() {
    let backend = FakeBackend::new(Script::default());
    let (first, second, events) = two_invocations(&backend, &settings()).await;
    assert_eq!(
        (first.connection, second.connection),
        (Connection::New, Connection::Reused)
    );
    assert_eq!(
        events[..2],
        [
            "check 1",
            "create worker on 1 as req-1@arn:aws:lambda:us-east-1:123456789012:function:f"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn ready_ms_is_the_time_to_get_a_connection_before_polling() {
    let backend = FakeBackend::new(Script {
        connect_delay: Duration::from_millis(300),
        check_delay: Duration::from_millis(20),
        ..Default::default()
    });
    let (first, second, _) = two_invocations(&backend, &settings()).await;
    assert_eq!((first.connection, first.ready_ms), (Connection::New, 300));
    assert_eq!(
        (second.connection, second.ready_ms),
        (Connection::Reused, 20)
    );
}

#[tokio::test(start_paused = true)]
async fn a_kept_connection_that_fails_its_check_is_replaced() {
    let backend = FakeBackend::new(Script {
        check_error: Some("transport error".to_owned()),
        ..Default::default()
    });
    let (_, second, events) = two_invocations(&backend, &settings()).await;
    assert_eq!(second.connection, Connection::New);
    assert_eq!(
        events[..2],
        ["check 1", "connect http://temporal.test:7233/"]
    );
    assert!(events[2].starts_with("create worker on 2 "), "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn a_kept_connection_that_does_not_answer_costs_at_most_the_check_timeout() {
    let backend = FakeBackend::new(Script {
        check_delay: 60 * SECOND,
        ..Default::default()
    });
    let settings = settings();
    invoke_within(&backend, &settings, 20 * SECOND)
        .await
        .unwrap();
    let second_started = backend.elapsed();
    let summary = invoke_within(&backend, &settings, 20 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.connection, Connection::New);
    let reconnected = backend
        .events
        .borrow()
        .iter()
        .rev()
        .find(|(_, e)| e.starts_with("connect"))
        .unwrap()
        .0;
    assert_eq!(reconnected - second_started, REUSE_CHECK_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn without_reuse_every_invocation_connects() {
    let backend = FakeBackend::new(Script::default());
    let settings = settings_with(|options| options.reuse_connection = false);
    let (_, second, events) = two_invocations(&backend, &settings).await;
    assert_eq!(second.connection, Connection::New);
    assert_eq!(events[0], "connect http://temporal.test:7233/");
    assert!(!backend.names().iter().any(|e| e.starts_with("check")));
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_worker_does_not_leave_its_connection_behind() {
    let backend = FakeBackend::new(Script {
        ignores_shutdown: true,
        ..Default::default()
    });
    let (first, second, events) = two_invocations(&backend, &settings()).await;
    assert_eq!(
        (first.shutdown, second.connection),
        (WorkerShutdown::Abandoned, Connection::New)
    );
    assert_eq!(events[0], "connect http://temporal.test:7233/");
}

#[tokio::test(start_paused = true)]
async fn sigterm_stops_the_worker_and_bounds_drain_and_hooks_to_lambdas_limit() {
    let settings = settings_with(hanging_hook);
    let backend = FakeBackend::new(Script {
        drain: 3 * SECOND,
        ..Default::default()
    });
    let signal = async {
        tokio::time::sleep(10 * SECOND).await;
        backend.sigterm.send_replace(Some(Instant::now()));
    };
    let context = backend.context(60 * SECOND);
    let (summary, ()) = tokio::join!(invoke(&backend, &settings, &backend.warm, &context), signal);
    let summary = summary.unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Sigterm);
    // No time to end the polls at the server first.
    assert!(!backend.names().contains(&"drain polls".to_owned()));
    assert!(!summary.polls_drained);
    assert_eq!(backend.at("stop requested"), 10 * SECOND);
    // The drain is cut 200 ms after the signal, the hanging hook 400 ms after it.
    assert_eq!(
        (summary.shutdown, summary.stop_ms),
        (WorkerShutdown::Abandoned, 200)
    );
    assert_eq!(backend.elapsed(), 10 * SECOND + SIGTERM_BUDGET);
}

#[tokio::test(start_paused = true)]
async fn sigterm_while_hooks_run_cuts_them_short() {
    let settings = settings_with(hanging_hook);
    let backend = FakeBackend::new(Script::default());
    // Polling stops at 53 s; the hook would otherwise hang until 59.75 s.
    let signal = async {
        tokio::time::sleep(54 * SECOND).await;
        backend.sigterm.send_replace(Some(Instant::now()));
    };
    let context = backend.context(60 * SECOND);
    let (summary, ()) = tokio::join!(invoke(&backend, &settings, &backend.warm, &context), signal);
    assert_eq!(summary.unwrap().stopped_by, StoppedBy::Deadline);
    assert_eq!(backend.elapsed(), 54 * SECOND + SIGTERM_BUDGET);
}

#[tokio::test(start_paused = true)]
async fn polls_that_do_not_end_in_time_still_let_the_worker_stop() {
    let settings = settings_with(|_| {});
    let backend = FakeBackend::new(Script {
        polls_end_after: 60 * SECOND,
        ..Default::default()
    });
    let summary = invoke_within(&backend, &settings, 20 * SECOND)
        .await
        .unwrap();
    assert!(!summary.polls_drained);
    // A deadline stop keeps the whole stop timeout (5 s), its grace and the return margins
    // (1 s) before the deadline: polls stop at 12 s, the worker is stopped at 14 s at the
    // latest.
    assert_eq!(backend.at("stop requested"), 14 * SECOND);
    assert_eq!(summary.drain_ms, 2000);

    // An idle exit, far from the deadline, waits as long as a poll can last.
    let backend = FakeBackend::new(Script {
        polls_end_after: 60 * SECOND,
        ..Default::default()
    });
    let summary = invoke_within(&backend, &idle_settings(SECOND), 60 * SECOND)
        .await
        .unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Idle);
    assert!(!summary.polls_drained);
    assert_eq!(
        backend.at("stop requested"),
        IDLE_EXIT_FIRST_TASK_WAIT + POLL_DEADLINE
    );
}

#[tokio::test(start_paused = true)]
async fn sigterm_while_polls_end_stops_the_worker_at_once() {
    let settings = settings_with(|_| {});
    let backend = FakeBackend::new(Script {
        polls_end_after: 2 * SECOND,
        ..Default::default()
    });
    let signal = async {
        tokio::time::sleep(13 * SECOND + 500 * MILLISECOND).await;
        backend.sigterm.send_replace(Some(Instant::now()));
    };
    let context = backend.context(20 * SECOND);
    let (summary, ()) = tokio::join!(invoke(&backend, &settings, &backend.warm, &context), signal);
    let summary = summary.unwrap();
    assert_eq!(summary.stopped_by, StoppedBy::Deadline);
    assert!(!summary.polls_drained);
    assert_eq!(
        backend.at("stop requested"),
        13 * SECOND + 500 * MILLISECOND
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_arriving_while_the_polls_end_is_processed_by_the_running_worker() {
    // Polls stop at 12 s and end at the server 800 ms later; one of them brings a task at
    // 12.5 s, which the worker, still running, processes (the stop then drains it).
    let backend = FakeBackend::new(Script {
        polls_end_after: 800 * MILLISECOND,
        tasks: vec![(12 * SECOND + 500 * MILLISECOND, 2 * SECOND)],
        ..Default::default()
    });
    let summary = invoke_within(&backend, &settings_with(|_| {}), 20 * SECOND)
        .await
        .unwrap();
    assert!(summary.polls_drained);
    assert_eq!(summary.activity_tasks, 1);
    assert_eq!(
        backend.at("stop requested"),
        12 * SECOND + 800 * MILLISECOND
    );
}

#[tokio::test(start_paused = true)]
async fn hooks_are_told_why_the_worker_stopped_and_how_long_they_have() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let settings = settings_with(move |options| {
        options.on_shutdown(move |shutdown| {
            record
                .lock()
                .unwrap()
                .push((shutdown.stopped_by, shutdown.time_left()));
            async { Ok(()) }
        });
    });
    for (script, stopped_by) in [
        (Script::default(), Some(StoppedBy::Deadline)),
        (
            Script {
                connect_error: Some("refused".to_owned()),
                ..Default::default()
            },
            None,
        ),
    ] {
        let backend = FakeBackend::new(script);
        let _ = invoke_within(&backend, &settings, 60 * SECOND).await;
        let (told, left) = seen.lock().unwrap().pop().unwrap();
        assert_eq!(told, stopped_by);
        // Hooks are cut off 250 ms before the deadline; nothing else ran after this one. (The
        // deadline arrives in whole milliseconds since the epoch.)
        let expected = 60 * SECOND - 250 * MILLISECOND - backend.elapsed();
        assert!(
            left.abs_diff(expected) < MILLISECOND,
            "{left:?} {expected:?}"
        );
    }
}
