//! Watches the tasks one invocation's worker processes: how many (so every invocation can report
//! whether it did any work: an invocation that processed nothing, again and again, is the
//! signature of a worker whose version does not match the one Temporal invokes it for), and
//! whether any is in flight and since when nothing happened (for the idle exit).

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::FutureExt;
use temporalio_common::protos::coresdk::{
    workflow_activation::WorkflowActivation, workflow_completion::WorkflowActivationCompletion,
};
use temporalio_sdk::{
    WorkerOptions,
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
}

impl Default for TaskCount {
    fn default() -> Self {
        Self {
            workflow_tasks: AtomicU64::default(),
            activity_tasks: AtomicU64::default(),
            in_flight: AtomicI64::default(),
            last_change: watch::Sender::new(Instant::now()),
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

    /// Workflow activations that carried work (cache evictions are not tasks).
    pub(crate) fn workflow_tasks(&self) -> u64 {
        self.workflow_tasks.load(Ordering::Relaxed)
    }

    /// Activity executions started.
    pub(crate) fn activity_tasks(&self) -> u64 {
        self.activity_tasks.load(Ordering::Relaxed)
    }
}

struct Counter(Arc<TaskCount>);

#[async_trait::async_trait(?Send)]
impl WorkerInterceptor for Counter {
    async fn on_workflow_activation(
        &self,
        activation: &WorkflowActivation,
    ) -> Result<(), anyhow::Error> {
        self.0.started(if activation.is_only_eviction() {
            Task::Eviction
        } else {
            Task::Workflow
        });
        Ok(())
    }

    async fn on_workflow_activation_completion(&self, _completion: &WorkflowActivationCompletion) {
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
        // Finished when the execution ends or is dropped (cancelled, abandoned).
        let done = Finished(Arc::clone(&self.0));
        next.run(input)
            .map(move |result| {
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
