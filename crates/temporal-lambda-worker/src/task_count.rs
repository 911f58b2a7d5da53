//! Watches the tasks one invocation's worker processes: how many (so every invocation can report
//! whether it did any work: an invocation that processed nothing, again and again, is the
//! signature of a worker whose version does not match the one Temporal invokes it for), whether
//! any is in flight and since when nothing happened (for the idle exit), and what work is known
//! to be due (for the idle exit's lookahead): the timers its cached workflows started and the
//! retries of the activities it ran that failed.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use futures::FutureExt;
use temporalio_client::RetryPolicy;
use temporalio_common::protos::coresdk::{
    workflow_activation::{WorkflowActivation, workflow_activation_job},
    workflow_commands::workflow_command,
    workflow_completion::{WorkflowActivationCompletion, workflow_activation_completion},
};
use temporalio_sdk::{
    WorkerOptions,
    activities::ActivityError,
    interceptors::{
        ActivityInboundInterceptor, ExecuteActivityInput, ExecuteActivityOutput, Next,
        WorkerInterceptor,
    },
};
use tokio::{sync::watch, time::Instant};

/// Tasks seen by one invocation's worker.
#[derive(Debug)]
pub(crate) struct TaskCount {
    workflow_tasks: AtomicU64,
    activity_tasks: AtomicU64,
    in_flight: AtomicI64,
    /// When a task last started or finished; watchers wake on every change.
    last_change: watch::Sender<Instant>,
    due: Mutex<Due>,
}

/// Work the server will hand out at a known time, unless something else happens first.
#[derive(Debug, Default)]
struct Due {
    /// Each cached run's workflow time of its current activation (when its task started).
    activation_time: HashMap<String, SystemTime>,
    /// Started timers by run and sequence number: when each fires.
    timers: HashMap<(String, u32), Instant>,
    /// When the retries of failed activity attempts are scheduled.
    retries: Vec<Instant>,
}

impl Default for TaskCount {
    fn default() -> Self {
        Self {
            workflow_tasks: AtomicU64::default(),
            activity_tasks: AtomicU64::default(),
            in_flight: AtomicI64::default(),
            last_change: watch::Sender::new(Instant::now()),
            due: Mutex::default(),
        }
    }
}

/// What kind of task started.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Task {
    /// A workflow activation with work in it.
    Workflow,
    /// A workflow activation that only evicts a run from the cache: not a task, but in flight.
    Eviction,
    /// An activity execution.
    Activity,
}

impl TaskCount {
    /// Registers interceptors on `options` that feed a new counter, and returns it.
    pub(crate) fn attach(options: &mut WorkerOptions) -> Arc<Self> {
        let count = Arc::new(Self::default());
        options.worker_interceptor(Counter(Arc::clone(&count)));
        options.activity_inbound_interceptor(Counter(Arc::clone(&count)));
        count
    }

    pub(crate) fn started(&self, task: Task) {
        match task {
            Task::Workflow => self.workflow_tasks.fetch_add(1, Ordering::Relaxed),
            Task::Activity => self.activity_tasks.fetch_add(1, Ordering::Relaxed),
            Task::Eviction => 0,
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    pub(crate) fn finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    fn touch(&self) {
        self.last_change.send_replace(Instant::now());
    }

    /// A receiver that sees every start and finish of a task from now on.
    pub(crate) fn changes(&self) -> watch::Receiver<Instant> {
        self.last_change.subscribe()
    }

    /// How long nothing has been in flight; `None` while something is.
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(self.last_change.borrow().elapsed())
    }

    /// The earliest moment known work is due that is not more than `grace` in the past: a
    /// timer of a cached workflow firing, or a failed activity's retry. Work due longer ago than
    /// `grace` went to another worker (or was cancelled) and no longer counts.
    pub(crate) fn next_due(&self, grace: Duration) -> Option<Instant> {
        let now = Instant::now();
        let due = self.due();
        due.timers
            .values()
            .chain(&due.retries)
            .copied()
            .filter(|&at| at + grace > now)
            .min()
    }

    fn due(&self) -> std::sync::MutexGuard<'_, Due> {
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads an activation: fired timers are no longer due, an evicted run's timers go to
    /// whichever worker replays it.
    pub(crate) fn activation(&self, activation: &WorkflowActivation) {
        use workflow_activation_job::Variant;
        let run = &activation.run_id;
        let mut due = self.due();
        if let Some(time) = activation
            .timestamp
            .and_then(|t| SystemTime::try_from(t).ok())
        {
            due.activation_time.insert(run.clone(), time);
        }
        for job in activation.jobs.iter().filter_map(|j| j.variant.as_ref()) {
            match job {
                Variant::FireTimer(timer) => {
                    due.timers.remove(&(run.clone(), timer.seq));
                }
                Variant::RemoveFromCache(_) => due.forget(run),
                _ => {}
            }
        }
    }

    /// Reads a completion: the timers it starts are due at the workflow time of the activation
    /// plus their duration; the ones it cancels are not; a finished run has none.
    pub(crate) fn completion(&self, completion: &WorkflowActivationCompletion) {
        use workflow_command::Variant;
        let Some(workflow_activation_completion::Status::Successful(success)) = &completion.status
        else {
            return;
        };
        let run = &completion.run_id;
        let mut due = self.due();
        let since = due.activation_time.get(run).copied();
        for command in success.commands.iter().filter_map(|c| c.variant.as_ref()) {
            match command {
                Variant::StartTimer(timer) => {
                    let length = timer
                        .start_to_fire_timeout
                        .and_then(|d| Duration::try_from(d).ok())
                        .unwrap_or_default();
                    due.timers
                        .insert((run.clone(), timer.seq), instant_after(since, length));
                }
                Variant::CancelTimer(timer) => {
                    due.timers.remove(&(run.clone(), timer.seq));
                }
                Variant::CompleteWorkflowExecution(_)
                | Variant::FailWorkflowExecution(_)
                | Variant::ContinueAsNewWorkflowExecution(_)
                | Variant::CancelWorkflowExecution(_) => due.forget(run),
                _ => {}
            }
        }
    }

    /// Notes that a failed activity attempt will be retried `after` from now.
    pub(crate) fn retry_after(&self, after: Duration) {
        let mut due = self.due();
        let now = Instant::now();
        due.retries.retain(|&at| at > now);
        due.retries.push(now + after);
    }

    /// Workflow activations that carried work (cache evictions are not tasks).
    pub(crate) fn workflow_tasks(&self) -> u64 {
        self.workflow_tasks.load(Ordering::Relaxed)
    }

    /// Activity executions started.
    pub(crate) fn activity_tasks(&self) -> u64 {
        self.activity_tasks.load(Ordering::Relaxed)
    }
}

impl Due {
    fn forget(&mut self, run: &str) {
        self.activation_time.remove(run);
        self.timers.retain(|(timer_run, _), _| timer_run != run);
    }
}

/// `length` after `since` (a workflow time), as an instant; from now when `since` is unknown.
fn instant_after(since: Option<SystemTime>, length: Duration) -> Instant {
    let now = Instant::now();
    let Some(since) = since else {
        return now + length;
    };
    let at = since + length;
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) => now + ahead,
        Err(past) => now.checked_sub(past.duration()).unwrap_or(now),
    }
}

/// How long after the failure of its attempt `attempt` the server schedules the next attempt of
/// an activity with this retry policy; `None` when no attempt follows.
fn retry_delay(
    attempt: u32,
    policy: Option<&RetryPolicy>,
    error: &ActivityError,
) -> Option<Duration> {
    let ActivityError::Application(failure) = error else {
        return None;
    };
    let policy = policy?;
    let max_attempts = policy.maximum_attempts();
    let last_attempt = max_attempts > 0 && attempt >= max_attempts;
    let not_retried = failure
        .type_name()
        .is_some_and(|name| policy.non_retryable_error_types().iter().any(|t| t == name));
    if failure.is_non_retryable() || last_attempt || not_retried {
        return None;
    }
    if let Some(delay) = failure.next_retry_delay() {
        return Some(delay);
    }
    let initial = policy.initial_interval();
    // The server's defaults: a coefficient of 2, at most 100 times the initial interval.
    let coefficient = if policy.backoff_coefficient() >= 1.0 {
        policy.backoff_coefficient()
    } else {
        2.0
    };
    let exponent = attempt.saturating_sub(1).min(60) as i32;
    let maximum = policy.maximum_interval().unwrap_or(initial * 100);
    Some(
        initial
            .mul_f64(coefficient.powi(exponent).min(1e6))
            .min(maximum),
    )
}

struct Counter(Arc<TaskCount>);

#[async_trait::async_trait(?Send)]
impl WorkerInterceptor for Counter {
    async fn on_workflow_activation(
        &self,
        activation: &WorkflowActivation,
    ) -> Result<(), anyhow::Error> {
        self.0.activation(activation);
        self.0.started(if activation.is_only_eviction() {
            Task::Eviction
        } else {
            Task::Workflow
        });
        Ok(())
    }

    async fn on_workflow_activation_completion(&self, completion: &WorkflowActivationCompletion) {
        self.0.completion(completion);
        self.0.finished();
    }
}

impl ActivityInboundInterceptor for Counter {
    fn execute_activity<'a>(
        &'a self,
        input: ExecuteActivityInput,
        next: Next<'a, ExecuteActivityInput, ExecuteActivityOutput<'a>>,
    ) -> ExecuteActivityOutput<'a> {
        self.0.started(Task::Activity);
        let info = input.activity_info();
        let (attempt, policy) = (info.attempt, info.retry_policy.clone());
        let count = Arc::clone(&self.0);
        // Finished when the execution ends or is dropped (cancelled, abandoned).
        let done = Finished(Arc::clone(&self.0));
        next.run(input)
            .map(move |result| {
                if let Some(after) = result
                    .as_ref()
                    .err()
                    .and_then(|e| retry_delay(attempt, policy.as_ref(), e))
                {
                    count.retry_after(after);
                }
                drop(done);
                result
            })
            .boxed()
    }
}

struct Finished(Arc<TaskCount>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finished();
    }
}

#[cfg(test)]
mod tests {
    use temporalio_common::protos::coresdk::{
        workflow_activation::{FireTimer, RemoveFromCache, WorkflowActivationJob},
        workflow_commands::{CancelTimer, CompleteWorkflowExecution, StartTimer, WorkflowCommand},
        workflow_completion::Success,
    };

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn activation(
        run: &str,
        time: SystemTime,
        jobs: Vec<workflow_activation_job::Variant>,
    ) -> WorkflowActivation {
        WorkflowActivation {
            run_id: run.to_owned(),
            timestamp: Some(time.into()),
            jobs: jobs
                .into_iter()
                .map(|variant| WorkflowActivationJob {
                    variant: Some(variant),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn completion(
        run: &str,
        commands: Vec<workflow_command::Variant>,
    ) -> WorkflowActivationCompletion {
        WorkflowActivationCompletion {
            run_id: run.to_owned(),
            status: Some(workflow_activation_completion::Status::Successful(
                Success {
                    commands: commands
                        .into_iter()
                        .map(|variant| WorkflowCommand {
                            variant: Some(variant),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    fn start_timer(seq: u32, length: Duration) -> workflow_command::Variant {
        workflow_command::Variant::StartTimer(StartTimer {
            seq,
            start_to_fire_timeout: Some(length.try_into().unwrap()),
        })
    }

    fn close_to(at: Option<Instant>, expected: Instant) -> bool {
        at.is_some_and(|at| at.max(expected) - at.min(expected) < Duration::from_millis(50))
    }

    #[tokio::test]
    async fn timers_are_due_from_the_workflow_time_of_their_activation_until_they_fire() {
        let count = TaskCount::default();
        let now = Instant::now();
        // The activation's workflow time was 1 s ago (its task started then): a 3 s timer it
        // starts fires 2 s from now.
        let task_time = SystemTime::now() - SECOND;
        count.activation(&activation("r1", task_time, vec![]));
        count.completion(&completion("r1", vec![start_timer(1, 3 * SECOND)]));
        assert!(close_to(count.next_due(SECOND), now + 2 * SECOND));

        // A second run's shorter timer is the next one due.
        count.activation(&activation("r2", SystemTime::now(), vec![]));
        count.completion(&completion("r2", vec![start_timer(7, SECOND)]));
        assert!(close_to(count.next_due(SECOND), now + SECOND));

        // Fired, it is no longer due; r1's timer is again the next one.
        let fired = workflow_activation_job::Variant::FireTimer(FireTimer { seq: 7 });
        count.activation(&activation("r2", SystemTime::now(), vec![fired]));
        assert!(close_to(count.next_due(SECOND), now + 2 * SECOND));

        // Cancelled, or its run finished or evicted: nothing is due.
        let cancel = workflow_command::Variant::CancelTimer(CancelTimer { seq: 1 });
        count.completion(&completion("r1", vec![cancel]));
        assert_eq!(count.next_due(SECOND), None);
        count.completion(&completion("r1", vec![start_timer(2, SECOND)]));
        let done = workflow_command::Variant::CompleteWorkflowExecution(
            CompleteWorkflowExecution::default(),
        );
        count.completion(&completion("r1", vec![done]));
        assert_eq!(count.next_due(SECOND), None);
        count.completion(&completion("r2", vec![start_timer(8, SECOND)]));
        let evict = workflow_activation_job::Variant::RemoveFromCache(RemoveFromCache::default());
        count.activation(&activation("r2", SystemTime::now(), vec![evict]));
        assert_eq!(count.next_due(SECOND), None);
    }

    #[tokio::test(start_paused = true)]
    async fn work_due_longer_ago_than_the_grace_no_longer_counts() {
        let count = TaskCount::default();
        let now = Instant::now();
        count.retry_after(2 * SECOND);
        assert_eq!(count.next_due(SECOND), Some(now + 2 * SECOND));
        tokio::time::advance(2 * SECOND + Duration::from_millis(500)).await;
        assert_eq!(count.next_due(SECOND), Some(now + 2 * SECOND));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(count.next_due(SECOND), None);
    }

    #[test]
    fn retries_follow_the_failure_and_the_retry_policy() {
        use temporalio_sdk::ApplicationFailure;
        let failed = || ActivityError::from(anyhow::anyhow!("boom"));
        // Without a policy nothing is known.
        assert_eq!(retry_delay(3, None, &failed()), None);
        let mut policy = RetryPolicy::default();
        policy
            .set_initial_interval(SECOND)
            .set_backoff_coefficient(2.0)
            .set_maximum_interval(Some(3 * SECOND))
            .set_maximum_attempts(5);
        let policy = Some(&policy);
        // 1 s × 2² = 4 s, capped at 3 s.
        assert_eq!(retry_delay(3, policy, &failed()), Some(3 * SECOND));
        assert_eq!(retry_delay(1, policy, &failed()), Some(SECOND));
        // A delay the failure asks for wins; non-retryable failures, the last attempt and
        // cancellations are not retried.
        let asked = ApplicationFailure::builder(anyhow::anyhow!("later").into_boxed_dyn_error())
            .next_retry_delay(Duration::from_millis(300))
            .build();
        assert_eq!(
            retry_delay(1, policy, &ActivityError::application(asked)),
            Some(Duration::from_millis(300))
        );
        let fatal =
            ApplicationFailure::non_retryable(anyhow::anyhow!("fatal").into_boxed_dyn_error());
        assert_eq!(
            retry_delay(1, policy, &ActivityError::application(fatal)),
            None
        );
        assert_eq!(retry_delay(1, policy, &ActivityError::cancelled()), None);
        assert_eq!(retry_delay(5, policy, &failed()), None);
    }
}
