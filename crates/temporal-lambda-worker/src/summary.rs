//! What an invocation reports back: the response Lambda records for each invocation.

use serde::Serialize;

/// The response of one invocation (serialised as a JSON object with these field names).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvocationSummary {
    /// The worker identity used for this invocation.
    pub identity: String,
    /// Why polling ended.
    pub stopped_by: StoppedBy,
    /// Which connection the worker used.
    pub connection: Connection,
    /// Time from the invocation's start until its worker began polling: getting the
    /// connection (made, or kept and checked) and creating the worker.
    pub ready_ms: u64,
    /// Whether the worker's polls had all ended at the server before it was stopped, so no
    /// task could be handed to it while stopping (false after SIGTERM, which leaves no time).
    pub polls_drained: bool,
    /// Time spent ending the polls at the server, before the worker was asked to stop.
    pub drain_ms: u64,
    /// How the worker stopped.
    pub shutdown: WorkerShutdown,
    /// Time from asking the worker to stop until it stopped or was abandoned.
    pub stop_ms: u64,
    /// Workflow tasks (activations with work) this invocation processed.
    pub workflow_tasks: u64,
    /// Activity tasks this invocation started.
    pub activity_tasks: u64,
}

/// Why an invocation's worker stopped polling.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoppedBy {
    /// The work time ran out: polling ended before `deadline - buffer`, early enough for the
    /// last polls to end inside the buffer.
    Deadline,
    /// The idle exit: no task had been in flight for the idle period.
    Idle,
    /// Lambda began shutting the execution environment down.
    Sigterm,
}

/// Which connection to Temporal an invocation used.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Connection {
    /// Made by this invocation.
    New,
    /// Kept from the previous invocation in this execution environment, and checked.
    Reused,
}

/// How an invocation's worker stopped.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WorkerShutdown {
    /// Its tasks finished (or were cancelled and stopped) within the stop timeout.
    Graceful,
    /// Tasks that ignored cancellation were left behind at the hard stop; Temporal retries
    /// them after their timeouts.
    Abandoned,
}

impl StoppedBy {
    /// The name used in the response and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Idle => "idle",
            Self::Sigterm => "sigterm",
        }
    }
}

impl Connection {
    /// The name used in the response and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Reused => "reused",
        }
    }
}

impl WorkerShutdown {
    /// The name used in the response and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Graceful => "graceful",
            Self::Abandoned => "abandoned",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_is_the_json_object_lambda_local_and_users_read() {
        let summary = InvocationSummary {
            identity: "req@arn".to_owned(),
            stopped_by: StoppedBy::Idle,
            connection: Connection::Reused,
            ready_ms: 3,
            polls_drained: true,
            drain_ms: 400,
            shutdown: WorkerShutdown::Graceful,
            stop_ms: 5,
            workflow_tasks: 2,
            activity_tasks: 1,
        };
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            serde_json::json!({
                "identity": "req@arn", "stopped_by": "idle", "connection": "reused",
                "ready_ms": 3, "polls_drained": true, "drain_ms": 400, "shutdown": "graceful",
                "stop_ms": 5, "workflow_tasks": 2, "activity_tasks": 1
            })
        );
        for (value, name) in [
            (StoppedBy::Deadline, "deadline"),
            (StoppedBy::Sigterm, "sigterm"),
        ] {
            assert_eq!(serde_json::to_value(value).unwrap(), name);
            assert_eq!(value.as_str(), name);
        }
        assert_eq!(serde_json::to_value(Connection::New).unwrap(), "new");
        assert_eq!(
            serde_json::to_value(WorkerShutdown::Abandoned).unwrap(),
            WorkerShutdown::Abandoned.as_str()
        );
    }
}
