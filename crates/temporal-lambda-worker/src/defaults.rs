//! The Lambda-tuned defaults, in one place.
//!
//! A Lambda execution environment has little CPU, is billed by the millisecond and lives one
//! invocation at a time, so the worker polls with few pollers and keeps few tasks in flight.
//! [`crate::Options`] is pre-filled with these values before `configure` runs; anything the user
//! sets in `configure` wins, except eager activities (see [`EAGER_ACTIVITY_RESERVATIONS`]).

use std::time::Duration;

use temporalio_common::worker::{WorkerDeploymentOptions, WorkerDeploymentVersion};
use temporalio_sdk::{
    WorkerOptions,
    runtime::{
        PollerBehavior,
        worker_tuner::{FixedSizeSlotSupplier, TunerHolder},
    },
};

/// Activities executing at once.
pub const MAX_CONCURRENT_ACTIVITIES: usize = 2;
/// Workflow tasks processed at once.
pub const MAX_CONCURRENT_WORKFLOW_TASKS: usize = 10;
/// Local activities executing at once.
pub const MAX_CONCURRENT_LOCAL_ACTIVITIES: usize = 2;
/// Nexus tasks at once (the SDK 1.1.1 cannot host Nexus handlers; kept for parity).
pub const MAX_CONCURRENT_NEXUS_TASKS: usize = 5;
/// Concurrent activity task polls.
pub const ACTIVITY_TASK_POLLERS: usize = 1;
/// Concurrent workflow task polls (the SDK requires at least 2 while the sticky cache is on).
pub const WORKFLOW_TASK_POLLERS: usize = 2;
/// Concurrent Nexus task polls.
pub const NEXUS_TASK_POLLERS: usize = 1;
/// How long a stopping worker lets in-flight tasks finish before cancelling activities.
pub const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Workflows kept in the sticky cache.
pub const STICKY_CACHE_SIZE: usize = 100;
/// How long a workflow task may wait on a worker's sticky queue before the server moves it to
/// the normal queue (the SDK's default is 10 s). A Lambda worker's sticky queue lives one
/// invocation: a task put there as the invocation ends (in the instant before the server forgets
/// the queue, or when the invocation is killed) waits this long instead of 10 s, while a worker
/// that runs picks its sticky tasks up in milliseconds.
pub const STICKY_SCHEDULE_TO_START_TIMEOUT: Duration = Duration::from_secs(2);
/// Eager activity slots per workflow task. Always 0: an eagerly started activity is bound to
/// this invocation, which may be about to end, so the server must dispatch activities through
/// the task queue where any invocation can pick them up.
pub const EAGER_ACTIVITY_RESERVATIONS: usize = 0;
/// The shutdown deadline buffer, unless set: the worker stop timeout plus this (7 s with the
/// default stop timeout), time for the last polls to end, the hard stop and the hooks.
pub const SHUTDOWN_DEADLINE_BUFFER_BEYOND_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a worker may have no task in flight before its invocation ends early
/// ([`crate::Options::idle_exit`]). Chosen from the benchmark's follow-up scenario (the run of
/// 2026-12-02, since replaced by the approval workload): for two workflows a few seconds apart it
/// bills about a tenth of what polling the whole window does, and the second workflow waits only
/// tens of milliseconds longer, because Temporal invokes the function again at once and a warm
/// start takes milliseconds.
pub const IDLE_EXIT: Duration = Duration::from_secs(1);

/// How far ahead an idle worker looks for work that is due: a timer of a workflow in its cache,
/// or the retry of an activity attempt it ran that failed. Work due within this keeps the
/// invocation (and its cache) until it has come ([`crate::Options::idle_exit_lookahead`]).
///
/// Chosen from the benchmark's approval workload (`bench/BENCHMARKS.md`, "Idle exit
/// lookahead"): leaving and being invoked again costs about 1.5 s of billed time (the idle
/// period and the last polls, then the next invocation's own), so waiting for work due within
/// 2 s is cheaper than leaving and serves it at once, while staying for a 3 s timer bills more
/// than it saves.
pub const IDLE_EXIT_LOOKAHEAD: Duration = Duration::from_secs(2);

/// Worker options carrying every Lambda default, for `task_queue` and `version`, with
/// Worker Deployment Versioning on.
pub(crate) fn worker_options(
    task_queue: String,
    version: WorkerDeploymentVersion,
) -> WorkerOptions {
    WorkerOptions::new(task_queue)
        // Setting the deployment options here also spares the SDK from hashing the executable
        // for a default build id at every worker creation.
        .deployment_options(
            WorkerDeploymentOptions::new(version)
                .use_worker_versioning(true)
                .build(),
        )
        .tuner(
            TunerHolder::builder()
                .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(
                    MAX_CONCURRENT_WORKFLOW_TASKS,
                ))
                .activity_task_slot_supplier(FixedSizeSlotSupplier::new(MAX_CONCURRENT_ACTIVITIES))
                .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(
                    MAX_CONCURRENT_LOCAL_ACTIVITIES,
                ))
                .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(MAX_CONCURRENT_NEXUS_TASKS))
                .build(),
        )
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(WORKFLOW_TASK_POLLERS))
        .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(ACTIVITY_TASK_POLLERS))
        .nexus_task_poller_behavior(PollerBehavior::SimpleMaximum(NEXUS_TASK_POLLERS))
        .graceful_shutdown_period(WORKER_STOP_TIMEOUT)
        .max_cached_workflows(STICKY_CACHE_SIZE)
        .sticky_queue_schedule_to_start_timeout(STICKY_SCHEDULE_TO_START_TIMEOUT)
        .max_eager_activity_reservations_per_workflow_task(EAGER_ACTIVITY_RESERVATIONS)
        .build()
}
