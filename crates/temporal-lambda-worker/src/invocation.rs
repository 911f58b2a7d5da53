//! One Lambda invocation: check the time budget, connect (or reuse the previous invocation's
//! connection), run a fresh worker until it is idle or its work time ends, let its last polls
//! end, stop it within a hard bound, then run the shutdown hooks. Lambda's SIGTERM cuts every
//! phase short. When each phase ends is decided in [`crate::timing`]; this module only waits.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use lambda_runtime::Context;
use tokio::{
    sync::watch,
    time::{Instant, sleep_until, timeout_at},
};
use tracing::{Instrument, error, info, info_span, warn};

use crate::{
    InvocationError,
    backend::{Backend, PollingWorker},
    error::describe,
    options::{Settings, ShutdownContext, ShutdownHook},
    summary::{Connection, InvocationSummary, StoppedBy, WorkerShutdown},
    task_count::TaskCount,
    timing::{LOW_WORK_TIME, Phase, Plan, REUSE_CHECK_TIMEOUT, Timing},
};

/// What an execution environment keeps from one invocation to the next.
pub(crate) struct Warm<C> {
    /// The connection kept for the next invocation, when reuse is on.
    client: Mutex<Option<C>>,
    /// The moment Lambda's SIGTERM arrived, once it has.
    sigterm: watch::Receiver<Option<Instant>>,
}

impl<C> Warm<C> {
    pub(crate) fn new(sigterm: watch::Receiver<Option<Instant>>) -> Self {
        Self {
            client: Mutex::new(None),
            sigterm,
        }
    }

    fn take_client(&self) -> Option<C> {
        self.client.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn keep_client(&self, client: C) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
    }
}

/// Serves one invocation.
pub(crate) async fn invoke<B: Backend>(
    backend: &B,
    settings: &Settings,
    warm: &Warm<B::Client>,
    context: &Context,
) -> Result<InvocationSummary, InvocationError> {
    let deadline = deadline_instant(backend.now(), context.deadline);
    let identity = settings
        .worker
        .client_identity_override
        .clone()
        .unwrap_or_else(|| identity(context));
    let span = info_span!("invocation", request_id = %context.request_id, identity = %identity);
    async {
        // Too little time is refused before anything starts, so no hook runs either.
        let plan = settings.timing.plan(deadline);
        let outcome = match plan.work_time(Instant::now()) {
            Err(e) => Err(e),
            Ok(work_time) => {
                let work_time_ms = work_time.as_millis() as u64;
                if work_time < LOW_WORK_TIME {
                    warn!(
                        work_time_ms,
                        low_below_ms = LOW_WORK_TIME.as_millis() as u64,
                        "little work time in this invocation: raise the function timeout (a few \
                         minutes is typical) so each invocation can do more than start and stop"
                    );
                }
                info!(work_time_ms, "invocation started");
                let outcome = work(backend, settings, warm, &plan, identity).await;
                let stopped_by = outcome.as_ref().ok().map(|summary| summary.stopped_by);
                run_hooks(&settings.hooks, stopped_by, plan.hooks_end, &warm.sigterm).await;
                outcome
            }
        };
        match &outcome {
            Ok(summary) => info!(
                stopped_by = summary.stopped_by.as_str(),
                connection = summary.connection.as_str(),
                ready_ms = summary.ready_ms,
                polls_drained = summary.polls_drained,
                drain_ms = summary.drain_ms,
                shutdown = summary.shutdown.as_str(),
                stop_ms = summary.stop_ms,
                workflow_tasks = summary.workflow_tasks,
                activity_tasks = summary.activity_tasks,
                "invocation finished"
            ),
            Err(e) => error!(error = %describe(e), "invocation failed"),
        }
        outcome
    }
    .instrument(span)
    .await
}

async fn work<B: Backend>(
    backend: &B,
    settings: &Settings,
    warm: &Warm<B::Client>,
    plan: &Plan,
    identity: String,
) -> Result<InvocationSummary, InvocationError> {
    let started = Instant::now();
    // A kept connection is given back only after a clean stop (below); any error drops it.
    let (client, connection) = client(backend, settings, warm, plan.stop_polling).await?;
    // Connecting took time; what is left must still be worth polling for.
    plan.work_time(Instant::now())?;

    let mut options = settings.worker.clone();
    options.client_identity_override = Some(identity.clone());
    let mut worker = backend.create_worker(client.clone(), options)?;
    let tasks = worker.tasks();
    let drain_polls = worker.drain_handle();
    let shutdown = worker.shutdown_handle();
    let ready_ms = started.elapsed().as_millis() as u64;
    let run = worker.run();
    tokio::pin!(run);
    let stopped_early =
        || InvocationError::WorkerFailed("it stopped polling before it was asked to".into());
    let timing = settings.timing;
    let stopped_by = tokio::select! {
        result = &mut run => return Err(result.err().unwrap_or_else(stopped_early)),
        () = sleep_until(plan.stop_polling) => StoppedBy::Deadline,
        () = idle(&tasks, &timing, plan.stop_polling), if timing.idle_exit.is_some() => {
            StoppedBy::Idle
        }
        () = sigterm(&warm.sigterm) => StoppedBy::Sigterm,
    };

    // The worker keeps running while its polls end at the server, so a task one of them still
    // brings is processed instead of waiting for its timeout (see `polls`). After SIGTERM there
    // is no time for it.
    let drain_started = Instant::now();
    let polls_drained = if stopped_by == StoppedBy::Sigterm {
        false
    } else {
        let drain_by = plan.drain_by(drain_started);
        let drain = async {
            let drained = drain_polls(drain_by).await;
            // An activity task the last polls brought may still sit in the SDK's buffer, which
            // a stopping worker drops: wait until the worker has started every one (workflow
            // tasks are waited for in `drain_polls`, until answered).
            drained.settled && taken_in(&tasks, drained.activity_tasks_brought, drain_by).await
        };
        tokio::select! {
            result = &mut run => return Err(result.err().unwrap_or_else(stopped_early)),
            drained = drain => drained,
            () = sigterm(&warm.sigterm) => false,
        }
    };
    let drain_ms = drain_started.elapsed().as_millis() as u64;
    if !polls_drained && stopped_by != StoppedBy::Sigterm {
        info!(
            drain_ms,
            "a poll was still at the server when the worker was stopped"
        );
    }

    shutdown();
    let stop_started = Instant::now();
    let stopped = tokio::select! {
        result = run => Some(result),
        () = cutoff(plan.hard_stop(stop_started), Phase::Stop, &warm.sigterm) => None,
    };
    let shutdown = match stopped {
        Some(Ok(())) => WorkerShutdown::Graceful,
        Some(Err(e)) => {
            // The tasks were processed; a failure while stopping is worth a log line, not a
            // function error (Lambda retries failed asynchronous invocations).
            warn!(error = %e, "the worker reported an error while stopping");
            WorkerShutdown::Graceful
        }
        None => {
            warn!(
                stop_timeout_ms = timing.stop_timeout.as_millis() as u64,
                "tasks still running at the hard stop were abandoned; they ignored cancellation \
                 and will be retried by Temporal after their timeouts"
            );
            WorkerShutdown::Abandoned
        }
    };
    // An abandoned worker may still hold on to the connection's worker registry; start afresh.
    if settings.reuse_connection && shutdown == WorkerShutdown::Graceful {
        warm.keep_client(client);
    }
    Ok(InvocationSummary {
        identity,
        stopped_by,
        connection,
        ready_ms,
        polls_drained,
        drain_ms,
        shutdown,
        stop_ms: stop_started.elapsed().as_millis() as u64,
        workflow_tasks: tasks.workflow_tasks(),
        activity_tasks: tasks.activity_tasks(),
    })
}

/// The previous invocation's client when it still answers, otherwise a new connection.
async fn client<B: Backend>(
    backend: &B,
    settings: &Settings,
    warm: &Warm<B::Client>,
    stop_polling: Instant,
) -> Result<(B::Client, Connection), InvocationError> {
    if let Some(kept) = warm.take_client() {
        let check_by = stop_polling.min(Instant::now() + REUSE_CHECK_TIMEOUT);
        match timeout_at(check_by, backend.check(&kept)).await {
            Ok(Ok(())) => return Ok((kept, Connection::Reused)),
            Ok(Err(reason)) => info!(%reason, "the kept connection failed its check; reconnecting"),
            Err(_) => info!("the kept connection did not answer its check in time; reconnecting"),
        }
    }
    let address = settings.connection.target.to_string();
    let connect = backend.connect(settings.connection.clone(), settings.client.clone());
    match timeout_at(stop_polling, connect).await {
        Ok(Ok(client)) => Ok((client, Connection::New)),
        Ok(Err(reason)) => Err(InvocationError::Connect { address, reason }),
        Err(_) => Err(InvocationError::Connect {
            address,
            reason: "no answer before the work time ran out".to_owned(),
        }),
    }
}

/// Returns once Lambda's SIGTERM has arrived.
async fn sigterm(sigterm: &watch::Receiver<Option<Instant>>) {
    let mut sigterm = sigterm.clone();
    if sigterm.wait_for(Option::is_some).await.is_err() {
        // No signal handler (a handler driven by tests or layers): never.
        std::future::pending::<()>().await;
    }
}

/// Returns at `end`, or earlier when Lambda's SIGTERM cuts `phase` short.
async fn cutoff(end: Instant, phase: Phase, sigterm: &watch::Receiver<Option<Instant>>) {
    let mut sigterm = sigterm.clone();
    loop {
        let at = phase.cut_by_sigterm(end, *sigterm.borrow_and_update());
        tokio::select! {
            () = sleep_until(at) => return,
            changed = sigterm.changed() => if changed.is_err() {
                sleep_until(at).await;
                return;
            },
        }
    }
}

/// Returns true once the worker has started the `brought` activity tasks, or false at `by`.
async fn taken_in(tasks: &TaskCount, brought: u64, by: Instant) -> bool {
    let mut changes = tasks.changes();
    let started = || tasks.activity_tasks() >= brought;
    timeout_at(by, async {
        while !started() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
    .await
    .is_ok()
        && started()
}

/// Returns once nothing has been in flight for the idle period ([`Timing::idle_period`]) and no
/// known work is due soon ([`Timing::stay_for_due_work`]).
async fn idle(tasks: &TaskCount, timing: &Timing, stop_polling: Instant) {
    let mut changes = tasks.changes();
    loop {
        // Marked seen before reading, so a change from here on wakes the wait below.
        changes.borrow_and_update();
        let any_task_seen = tasks.workflow_tasks() + tasks.activity_tasks() > 0;
        let Some(required) = timing.idle_period(any_task_seen) else {
            return std::future::pending().await;
        };
        let wait = match tasks.idle_for() {
            Some(idle_for) if idle_for >= required => {
                let now = Instant::now();
                let due = tasks.next_due(required);
                match timing.stay_for_due_work(due, required, now, stop_polling) {
                    Some(until) => Some(until - now),
                    None => return,
                }
            }
            Some(idle_for) => Some(required - idle_for),
            // Something is in flight: only a change can make the worker idle.
            None => None,
        };
        tokio::select! {
            () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
            changed = changes.changed() => if changed.is_err() {
                // The count outlives this wait (the caller holds it); never here.
                std::future::pending::<()>().await;
            },
        }
    }
}

/// Runs the hooks in order, each bounded by `end` (or SIGTERM's budget); a failure is logged
/// and the next one runs.
async fn run_hooks(
    hooks: &[ShutdownHook],
    stopped_by: Option<StoppedBy>,
    end: Instant,
    sigterm: &watch::Receiver<Option<Instant>>,
) {
    for (index, hook) in hooks.iter().enumerate() {
        let shutdown = ShutdownContext {
            stopped_by,
            cut_off_at: Phase::Hooks.cut_by_sigterm(end, *sigterm.borrow()),
        };
        let finished = tokio::select! {
            result = hook(shutdown) => Some(result),
            () = cutoff(end, Phase::Hooks, sigterm) => None,
        };
        match finished {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                error!(hook = index, error = %describe(e.as_ref()), "shutdown hook failed")
            }
            None => error!(
                hook = index,
                "shutdown hook ran out of time before the deadline"
            ),
        }
    }
}

/// Lambda's deadline (milliseconds since the epoch) on the monotonic clock.
fn deadline_instant(now: SystemTime, deadline_ms: u64) -> Instant {
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    Instant::now() + deadline.duration_since(now).unwrap_or_default()
}

/// `<request id>@<invoked function arn>`, with `unknown` for a part Lambda left empty.
pub(crate) fn identity(context: &Context) -> String {
    let or_unknown = |s: &str| {
        if s.is_empty() {
            "unknown".to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "{}@{}",
        or_unknown(&context.request_id),
        or_unknown(&context.invoked_function_arn)
    )
}

#[cfg(test)]
#[path = "invocation_tests.rs"]
mod tests;
