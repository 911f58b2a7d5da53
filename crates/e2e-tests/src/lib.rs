//! Workflows for the end-to-end tests, served by the `test-worker` bootstrap.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions,
    activities::{ActivityContext, ActivityError},
};
use temporalio_workflow::{
    ActivityExecutionError, SyncWorkflowContext, WorkflowContext, WorkflowContextView,
    WorkflowResult,
};

/// The message of [`MisbehavingActivities::panics`], to find in histories and results.
pub const PANIC_MESSAGE: &str = "deliberate panic in an activity";

/// A workflow whose activity outlives the function timeout on its first attempt.
#[workflow]
#[derive(Default)]
pub struct OutlivesTimeoutWorkflow;

#[workflow_methods]
impl OutlivesTimeoutWorkflow {
    /// Runs the activity with a short start-to-close timeout, so its lost first attempt is
    /// retried soon after the environment running it is killed.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u32> {
        let attempt = ctx
            .execute_activity(
                SlowActivities::block_first_attempt,
                (),
                ActivityOptions::start_to_close_timeout(Duration::from_secs(8)),
            )
            .await?;
        Ok(attempt)
    }
}

/// Runs one activity that, on its first attempt, allocates more memory than a small function
/// has (`mb` megabytes), so the kernel kills the environment running it; a retry returns its
/// attempt number.
#[workflow]
#[derive(Default)]
pub struct OutOfMemoryWorkflow;

#[workflow_methods]
impl OutOfMemoryWorkflow {
    /// A short start-to-close timeout: the attempt that died with its environment is retried
    /// soon after.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, mb: u64) -> WorkflowResult<u32> {
        let attempt = ctx
            .execute_activity(
                MisbehavingActivities::allocates_on_first_attempt,
                mb,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(5)),
            )
            .await?;
        Ok(attempt)
    }
}

/// Runs `steps` activities one after the other, each sleeping `step_ms`; returns the sum of
/// their step numbers (`1 + 2 + ... + steps`), so a lost or repeated step changes the result
/// only if the history does too.
#[workflow]
pub struct StepsWorkflow {
    steps: u32,
    step_ms: u64,
}

#[workflow_methods]
impl StepsWorkflow {
    /// Takes `(steps, step_ms)`.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, (steps, step_ms): (u32, u64)) -> Self {
        Self { steps, step_ms }
    }

    /// Runs the steps.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u32> {
        let (steps, step_ms) = ctx.state(|s| (s.steps, s.step_ms));
        let mut sum = 0;
        for step in 1..=steps {
            sum += ctx
                .execute_activity(
                    SlowActivities::step,
                    (step, step_ms),
                    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                        .retry_policy(quick_retries())
                        .build(),
                )
                .await?;
        }
        Ok(sum)
    }
}

/// An activity, a durable timer of `timer_ms`, another activity; returns 1 + 2. Whether the
/// timer is waited out by the invocation that started it shows the idle exit's lookahead.
#[workflow]
#[derive(Default)]
pub struct TimerWorkflow;

#[workflow_methods]
impl TimerWorkflow {
    /// Takes the timer's length in milliseconds.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, timer_ms: u64) -> WorkflowResult<u32> {
        let step = |n: u32| {
            ctx.execute_activity(
                SlowActivities::step,
                (n, 0),
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
        };
        let first = step(1).await?;
        ctx.timer(Duration::from_millis(timer_ms)).await;
        Ok(first + step(2).await?)
    }
}

/// The workload of a new user's order flow, in which every kind of task meets the moments when
/// invocations stop: an activity, a timer, a wait for a signal, then two more activities, the
/// first of which (`charge`) fails its first attempt on purpose and is retried after the SDK's
/// default 1 s backoff. Returns the sum of the activities' results, 1 + 2 + 3.
#[workflow]
#[derive(Default)]
pub struct ApprovalWorkflow {
    approved: bool,
}

#[workflow_methods]
impl ApprovalWorkflow {
    /// Takes the timer's length in milliseconds.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, timer_ms: u64) -> WorkflowResult<u32> {
        // Start-to-close timeouts as short as the steps allow, so a task lost to a stopping
        // worker costs the test seconds, not minutes; the assertions on the histories find it.
        let options = || ActivityOptions::start_to_close_timeout(Duration::from_secs(10));
        let reserved = ctx
            .execute_activity(ApprovalActivities::reserve, (), options())
            .await?;
        ctx.timer(Duration::from_millis(timer_ms)).await;
        ctx.wait_condition(|s| s.approved).await?;
        let charged = ctx
            .execute_activity(ApprovalActivities::charge, (), options())
            .await?;
        let shipped = ctx
            .execute_activity(ApprovalActivities::ship, (), options())
            .await?;
        Ok(reserved + charged + shipped)
    }

    /// Lets the order go on.
    #[signal]
    pub fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.approved = true;
    }
}

/// The activity that [`ApprovalWorkflow`] retries on purpose: the only one whose history may
/// show a second attempt.
pub const RETRIED_ON_PURPOSE: &str = "charge";

/// Activities of [`ApprovalWorkflow`].
pub struct ApprovalActivities;

#[activities]
impl ApprovalActivities {
    /// Returns 1.
    #[activity(name = "reserve")]
    pub async fn reserve(ctx: ActivityContext) -> Result<u32, ActivityError> {
        log_attempt(&ctx, "reserve");
        Ok(1)
    }

    /// Fails its first attempt; returns 2 on the next.
    #[activity(name = "charge")]
    pub async fn charge(ctx: ActivityContext) -> Result<u32, ActivityError> {
        log_attempt(&ctx, "charge");
        if ctx.info().attempt == 1 {
            return Err(std::io::Error::other("card declined on purpose (first attempt)").into());
        }
        Ok(2)
    }

    /// Returns 3.
    #[activity(name = "ship")]
    pub async fn ship(ctx: ActivityContext) -> Result<u32, ActivityError> {
        log_attempt(&ctx, "ship");
        Ok(3)
    }
}

/// One line on the function's log per attempt, so a test that finds an attempt lost can tell
/// whether a worker ever ran it.
fn log_attempt(ctx: &ActivityContext, activity: &str) {
    let info = ctx.info();
    eprintln!(
        "activity {activity} attempt {} of {} runs",
        info.attempt,
        info.workflow_id.as_deref().unwrap_or_default()
    );
}

/// Activities of the end-to-end tests.
pub struct SlowActivities;

#[activities]
impl SlowActivities {
    /// On its first attempt, blocks the worker's only thread far past any function timeout, so
    /// the worker cannot stop in time and the environment is killed at the timeout. Later
    /// attempts return their attempt number at once.
    #[activity(name = "block_first_attempt")]
    pub async fn block_first_attempt(ctx: ActivityContext) -> Result<u32, ActivityError> {
        let attempt = ctx.info().attempt;
        if attempt == 1 {
            std::thread::sleep(Duration::from_secs(3600));
        }
        Ok(attempt)
    }

    /// Sleeps `ms` (asynchronously), then returns `step`.
    #[activity(name = "step")]
    pub async fn step(_ctx: ActivityContext, (step, ms): (u32, u64)) -> Result<u32, ActivityError> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(step)
    }
}

/// Runs one activity of each kind of misbehaviour and reports how each ended:
/// `panicked: <failure>; ignored cancellation: attempt <n>; blocked a thread: attempt <n>`.
#[workflow]
#[derive(Default)]
pub struct MisbehavingWorkflow;

#[workflow_methods]
impl MisbehavingWorkflow {
    /// The panicking activity gets one attempt, and its failure becomes part of the result.
    /// The other two misbehave on their first attempt only (their start-to-close timeout
    /// outlasts the invocation, so the worker has to stop while they run) and succeed on a retry.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let panicked = match ctx
            .execute_activity(
                MisbehavingActivities::panics,
                (),
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                    .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
                    .build(),
            )
            .await
        {
            Ok(()) => "did not fail".to_owned(),
            Err(e) => failure_chain(&e),
        };
        let misbehaving_once = || {
            ActivityOptions::with_start_to_close_timeout(Duration::from_secs(12))
                .retry_policy(quick_retries())
                .build()
        };
        let ignoring = ctx.execute_activity(
            MisbehavingActivities::ignores_cancellation,
            (),
            misbehaving_once(),
        );
        let blocking = ctx.execute_activity(
            MisbehavingActivities::blocks_a_thread,
            (),
            misbehaving_once(),
        );
        let (ignored, blocked) = temporalio_workflow::join!(ignoring, blocking);
        Ok(format!(
            "panicked: {panicked}; ignored cancellation: attempt {}; blocked a thread: attempt {}",
            ignored?, blocked?
        ))
    }
}

/// Activities that misbehave.
pub struct MisbehavingActivities;

#[activities]
impl MisbehavingActivities {
    /// Panics, every time.
    #[activity(name = "panics")]
    pub async fn panics(_ctx: ActivityContext) -> Result<(), ActivityError> {
        panic!("{PANIC_MESSAGE}");
    }

    /// On its first attempt, sleeps (asynchronously) for an hour without ever looking at
    /// cancellation; later attempts return their attempt number at once.
    #[activity(name = "ignores_cancellation")]
    pub async fn ignores_cancellation(ctx: ActivityContext) -> Result<u32, ActivityError> {
        let attempt = ctx.info().attempt;
        if attempt == 1 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(attempt)
    }

    /// On its first attempt, fills `mb` megabytes and holds them for an hour; later attempts
    /// return their attempt number at once.
    #[activity(name = "allocates_on_first_attempt")]
    pub async fn allocates_on_first_attempt(
        ctx: ActivityContext,
        mb: u64,
    ) -> Result<u32, ActivityError> {
        let attempt = ctx.info().attempt;
        if attempt == 1 {
            // Written, not just reserved, so every page is resident.
            let held = std::hint::black_box(vec![1u8; (mb as usize) << 20]);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(held);
        }
        Ok(attempt)
    }

    /// On its first attempt, blocks its thread for an hour (`std::thread::sleep` in async
    /// code); later attempts return their attempt number at once.
    #[activity(name = "blocks_a_thread")]
    pub async fn blocks_a_thread(ctx: ActivityContext) -> Result<u32, ActivityError> {
        let attempt = ctx.info().attempt;
        if attempt == 1 {
            std::thread::sleep(Duration::from_secs(3600));
        }
        Ok(attempt)
    }
}

/// Retries one second apart, without giving up.
fn quick_retries() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(1.0)
        .build()
}

/// Every message of an activity failure and its causes, outermost first.
fn failure_chain(error: &ActivityExecutionError) -> String {
    let mut messages = Vec::new();
    let mut failure = error.failure();
    while let Some(f) = failure {
        messages.push(f.message.clone());
        failure = f.cause.as_deref();
    }
    if messages.is_empty() {
        error.to_string()
    } else {
        messages.join(": ")
    }
}

/// Appends the current time, in milliseconds since the epoch, as a line to the file at `path`.
pub fn append_epoch_ms(path: &str) -> std::io::Result<()> {
    use std::io::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{now}")
}
