//! The benchmark's two workloads beyond the greeting, written the same way in every language
//! (bench/peers/*): `ApprovalWorkflow` waits on a timer and a signal and retries an activity,
//! `FanOutWorkflow` runs activities side by side. Their names, inputs and results are what the
//! harness starts and checks.

use std::time::Duration;

use futures::future::join_all;
use greeting::GreetingActivities;
use temporal_lambda_worker::{BoxError, Options, VersioningBehavior};
use temporalio_client::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, SyncWorkflowContext,
    activities::{ActivityContext, ActivityError},
};
use temporalio_workflow::{WorkflowContext, WorkflowContextView, WorkflowResult};

/// How long each activity may run.
const ACTIVITY_TIMEOUT: Duration = Duration::from_secs(10);

/// An activity, a 3 s timer, an approval signal, then two more activities; the second fails its
/// first attempt and is retried after 1 s.
#[workflow]
pub struct ApprovalWorkflow {
    name: String,
    approver: Option<String>,
}

#[workflow_methods]
impl ApprovalWorkflow {
    /// Takes the name of what is to be approved.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, name: String) -> Self {
        Self {
            name,
            approver: None,
        }
    }

    /// Returns the three activities' results, joined by spaces.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let name = ctx.state(|s| s.name.clone());
        let options = ActivityOptions::start_to_close_timeout(ACTIVITY_TIMEOUT);
        let asked = ctx
            .execute_activity(GreetingActivities::hello, name.clone(), options.clone())
            .await?;
        ctx.timer(Duration::from_secs(3)).await;
        ctx.wait_condition(|s| s.approver.is_some()).await?;
        let approver = ctx.state(|s| s.approver.clone().unwrap_or_default());
        let thanked = ctx
            .execute_activity(GreetingActivities::hello, approver, options)
            .await?;
        let retry_policy = RetryPolicy::builder()
            .initial_interval(Duration::from_secs(1))
            .backoff_coefficient(2.0)
            .maximum_attempts(3)
            .build();
        let retried = ActivityOptions::with_start_to_close_timeout(ACTIVITY_TIMEOUT)
            .retry_policy(retry_policy)
            .build();
        let approved = ctx
            .execute_activity(WorkloadActivities::approved, name, retried)
            .await?;
        Ok(format!("{asked} {thanked} {approved}"))
    }

    /// Approves; the first approver counts.
    #[signal]
    pub fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>, approver: String) {
        self.approver.get_or_insert(approver);
    }
}

/// Squares 1..=count in as many activities, all started at once, and sums the squares.
#[workflow]
pub struct FanOutWorkflow {
    count: i64,
}

#[workflow_methods]
impl FanOutWorkflow {
    /// Takes how many activities to run.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, count: i64) -> Self {
        Self { count }
    }

    /// Returns the sum of the squares.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<i64> {
        let count = ctx.state(|s| s.count);
        let squares = (1..=count).map(|i| {
            let options = ActivityOptions::start_to_close_timeout(ACTIVITY_TIMEOUT);
            ctx.execute_activity(WorkloadActivities::square, i, options)
        });
        let mut sum = 0;
        for square in join_all(squares).await {
            sum += square?;
        }
        Ok(sum)
    }
}

/// The workloads' own activities (`hello` is the greeting's).
pub struct WorkloadActivities;

#[activities]
impl WorkloadActivities {
    /// Fails its first attempt on purpose; returns `Approved, <name>!` on a retry.
    #[activity(name = "approved")]
    pub async fn approved(ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        if ctx.info().attempt == 1 {
            return Err(anyhow::anyhow!("first attempt fails on purpose").into());
        }
        Ok(format!("Approved, {name}!"))
    }

    /// Returns `i * i`.
    #[activity(name = "square")]
    pub async fn square(_ctx: ActivityContext, i: i64) -> Result<i64, ActivityError> {
        Ok(i * i)
    }
}

/// Registers both workflows (Pinned, like the greeting) and their activities.
pub fn configure(options: &mut Options) -> Result<(), BoxError> {
    options.register_workflow_with_behavior::<ApprovalWorkflow>(VersioningBehavior::Pinned)?;
    options.register_workflow_with_behavior::<FanOutWorkflow>(VersioningBehavior::Pinned)?;
    options.register_activities(WorkloadActivities);
    Ok(())
}
