//! The three workloads, the same in every implementation (bench/rust-worker/src/workloads.rs and
//! bench/peers/*): what each workflow is started with, what it must return, and the signal the
//! approval workflow waits for.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

/// One of the workflows every implementation registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// One activity.
    Greeting,
    /// An activity, a 3 s timer, a signal sent 5 s after the start, an activity, and an activity
    /// that fails its first attempt and is retried after 1 s.
    Approval,
    /// Twenty activities started at once, their results summed.
    Fanout,
}

/// Activities the fan-out workflow starts.
const FAN_OUT: i64 = 20;
/// When the approval signal is sent, after the workflow's start: 2 s after its 3 s timer.
pub const APPROVAL_SIGNAL_AFTER: Duration = Duration::from_secs(5);
/// Who approves.
const APPROVER: &str = "approver";

impl Workload {
    /// Its name in results and workflow ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::Greeting => "greeting",
            Self::Approval => "approval",
            Self::Fanout => "fanout",
        }
    }

    /// The workflow type.
    pub fn workflow_type(self) -> &'static str {
        match self {
            Self::Greeting => "GreetingWorkflow",
            Self::Approval => "ApprovalWorkflow",
            Self::Fanout => "FanOutWorkflow",
        }
    }

    /// The input of the workflow `workflow_id` (ids are distinct, so results are checkable).
    pub fn input(self, workflow_id: &str) -> Value {
        match self {
            Self::Greeting | Self::Approval => json!(workflow_id),
            Self::Fanout => json!(FAN_OUT),
        }
    }

    /// What the workflow `workflow_id` must return.
    pub fn expected(self, workflow_id: &str) -> Value {
        match self {
            Self::Greeting => json!(format!("Hello, {workflow_id}!")),
            Self::Approval => json!(format!(
                "Hello, {workflow_id}! Hello, {APPROVER}! Approved, {workflow_id}!"
            )),
            Self::Fanout => json!((1..=FAN_OUT).map(|i| i * i).sum::<i64>()),
        }
    }

    /// The signal to send, when and with what: `(after the start, name, argument)`.
    pub fn signal(self) -> Option<(Duration, &'static str, Value)> {
        (self == Self::Approval).then(|| (APPROVAL_SIGNAL_AFTER, "approve", json!(APPROVER)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_results_match_the_workflows_definitions() {
        assert_eq!(Workload::Fanout.expected("x"), json!(2870));
        assert_eq!(
            Workload::Approval.expected("a-1"),
            json!("Hello, a-1! Hello, approver! Approved, a-1!")
        );
        assert_eq!(Workload::Greeting.input("g"), json!("g"));
    }
}
