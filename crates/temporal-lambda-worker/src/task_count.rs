//! Counts the tasks one invocation's worker processes, so every invocation can report whether it
//! did any work (an invocation that processed nothing, again and again, is the signature of a
//! worker whose version does not match the one Temporal invokes it for).

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use temporalio_common::protos::coresdk::workflow_activation::WorkflowActivation;
use temporalio_sdk::{
    WorkerOptions,
    interceptors::{
        ActivityInboundInterceptor, ExecuteActivityInput, ExecuteActivityOutput, Next,
        WorkerInterceptor,
    },
};

/// Tasks processed by one invocation's worker.
#[derive(Debug, Default)]
pub(crate) struct TaskCount {
    workflow_tasks: AtomicU64,
    activity_tasks: AtomicU64,
}

impl TaskCount {
    /// Registers counting interceptors on `options` and returns the counter they feed.
    pub(crate) fn attach(options: &mut WorkerOptions) -> Arc<Self> {
        let count = Arc::new(Self::default());
        options.worker_interceptor(Counter(Arc::clone(&count)));
        options.activity_inbound_interceptor(Counter(Arc::clone(&count)));
        count
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
        if !activation.is_only_eviction() {
            self.0.workflow_tasks.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl ActivityInboundInterceptor for Counter {
    fn execute_activity<'a>(
        &'a self,
        input: ExecuteActivityInput,
        next: Next<'a, ExecuteActivityInput, ExecuteActivityOutput<'a>>,
    ) -> ExecuteActivityOutput<'a> {
        self.0.activity_tasks.fetch_add(1, Ordering::Relaxed);
        next.run(input)
    }
}
