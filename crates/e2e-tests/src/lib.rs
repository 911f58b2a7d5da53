//! Workflows for the end-to-end tests, served by the `test-worker` bootstrap.

use std::time::Duration;

use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions,
    activities::{ActivityContext, ActivityError},
};
use temporalio_workflow::{WorkflowContext, WorkflowResult};

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
