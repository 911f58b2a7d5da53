//! A Temporal Worker that runs on AWS Lambda: the Lambda `bootstrap` of this crate.
//!
//! Temporal invokes the function when tasks arrive on the task queue of the Worker Deployment
//! Version it is attached to; each invocation polls as that version until its work is done or
//! shortly before the invocation deadline. Build, deploy and attach it with
//! `examples/greeting/deploy/package.sh` and `deploy.sh` (see docs/DEPLOYMENT.md):
//!
//! ```sh
//! examples/greeting/deploy/deploy.sh --crate-dir templates/new-worker --bin my-worker \
//!   --function-name my-worker --deployment-name my-worker --build-id build-1 \
//!   --task-queue my-worker-tq --external-id "$EXTERNAL_ID"
//! ```

use std::time::Duration;

use temporal_lambda_worker::{BoxError, Options, Version, VersioningBehavior, run_worker};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions,
    activities::{ActivityContext, ActivityError},
};
use temporalio_workflow::{WorkflowContext, WorkflowContextView, WorkflowResult};

/// The Worker Deployment: `deploy.sh --deployment-name`.
const DEPLOYMENT_NAME: &str = "my-worker";
/// This build. Change it for every build you deploy (and pass the same `deploy.sh --build-id`):
/// Temporal routes each version's tasks to the function version attached to it, and a worker
/// polling as another build than the one it is invoked for never gets them.
const BUILD_ID: &str = "build-1";
/// Used when the function has no `TEMPORAL_TASK_QUEUE` (`deploy.sh --task-queue` sets it).
const TASK_QUEUE: &str = "my-worker-tq";

/// Says hello. Replace with your workflow.
#[workflow]
pub struct HelloWorkflow {
    name: String,
}

#[workflow_methods]
impl HelloWorkflow {
    /// Takes the name to greet.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, name: String) -> Self {
        Self { name }
    }

    /// Runs the `say_hello` activity. Keep activity timeouts below the function timeout minus
    /// the shutdown buffer (7 s by default), or an attempt can never finish in one invocation.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let name = ctx.state(|s| s.name.clone());
        let greeting = ctx
            .execute_activity(
                HelloActivities::say_hello,
                name,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(30)),
            )
            .await?;
        Ok(greeting)
    }
}

/// The activities. Replace with yours.
pub struct HelloActivities;

#[activities]
impl HelloActivities {
    /// Returns `Hello, <name>!`.
    #[activity(name = "say_hello")]
    pub async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        Ok(format!("Hello, {name}!"))
    }
}

/// Called once per execution environment, at cold start, with the Lambda defaults filled in.
fn configure(options: &mut Options) -> Result<(), BoxError> {
    if options.worker.task_queue.is_empty() {
        options.worker.task_queue = TASK_QUEUE.to_owned();
    }
    // Pinned: a workflow finishes on the build it started on; a new current version only gets
    // new workflows. AutoUpgrade moves running workflows to the current version (their code
    // must then stay replay-compatible). A workflow can have its own: see
    // `Options::register_workflow_with_behavior`.
    options.default_versioning_behavior(VersioningBehavior::Pinned);
    options.register_workflow::<HelloWorkflow>()?;
    options.register_activities(HelloActivities);
    Ok(())
}

#[tokio::main]
async fn main() {
    run_worker(Version::new(DEPLOYMENT_NAME, BUILD_ID), configure).await;
}
