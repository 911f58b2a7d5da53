//! The greeting sample: a workflow that calls one activity, served by a Lambda worker.
//!
//! - `greeting-worker` is the Lambda `bootstrap`: it registers what this module defines.
//! - `greeting-starter` starts a greeting workflow and prints its result.

use std::time::Duration;

use temporal_lambda_worker::{BoxError, Options, Version, VersioningBehavior};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions,
    activities::{ActivityContext, ActivityError},
};
use temporalio_workflow::{WorkflowContext, WorkflowContextView, WorkflowResult};

/// The Worker Deployment this sample belongs to.
pub const DEPLOYMENT_NAME: &str = "my-app";
/// This build's id. Bump it for every build you deploy as a new version.
pub const BUILD_ID: &str = "build-1";
/// The task queue, unless `TEMPORAL_TASK_QUEUE` says otherwise.
pub const TASK_QUEUE: &str = "serverless-task-queue-1";

/// The version this binary runs as.
pub fn version() -> Version {
    Version::new(DEPLOYMENT_NAME, BUILD_ID)
}

/// Greets someone by name.
#[workflow]
pub struct GreetingWorkflow {
    name: String,
}

#[workflow_methods]
impl GreetingWorkflow {
    /// Takes the name to greet.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, name: String) -> Self {
        Self { name }
    }

    /// Asks the `hello` activity for the greeting.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let name = ctx.state(|s| s.name.clone());
        let greeting = ctx
            .execute_activity(
                GreetingActivities::hello,
                name,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await?;
        Ok(greeting)
    }
}

/// The activities of the greeting sample.
pub struct GreetingActivities;

#[activities]
impl GreetingActivities {
    /// Returns `Hello, <name>!`.
    #[activity(name = "hello")]
    pub async fn hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        Ok(format!("Hello, {name}!"))
    }
}

/// Registers the sample's workflow (Pinned) and activities, and sets its task queue default.
pub fn configure(options: &mut Options) -> Result<(), BoxError> {
    if options.worker.task_queue.is_empty() {
        options.worker.task_queue = TASK_QUEUE.to_owned();
    }
    options.register_workflow_with_behavior::<GreetingWorkflow>(VersioningBehavior::Pinned)?;
    options.register_activities(GreetingActivities);
    Ok(())
}
