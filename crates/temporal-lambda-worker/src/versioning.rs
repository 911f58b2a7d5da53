//! Per-workflow versioning behaviours on one worker.
//!
//! The Temporal Rust SDK 1.1.1 sends no behaviour of its own for a workflow; its core then sends
//! the worker's default with every completed workflow task. When the registered workflows mix
//! Pinned and AutoUpgrade, the worker default is the behaviour most of them chose, and the
//! others are set here, on the way to the server: every call already passes through our
//! forwarder ([`crate::polls`]), which learns each handed-out task's workflow type from the poll
//! response (by task token, reading only those two fields) and sets `versioning_behavior` on that
//! task's `RespondWorkflowTaskCompleted` by appending the field to the encoded request (protobuf
//! takes the last value of a field), so every other byte goes out as the SDK wrote it. A worker
//! without a mix has no overrides, and this does nothing at all (not even read a message).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use prost::Message;
use temporalio_client::tonic::codegen::Bytes;
use temporalio_common::{
    protos::temporal::api::{
        common::v1::WorkflowType, enums::v1::VersioningBehavior as WireBehavior,
    },
    worker::VersioningBehavior,
};

/// How many handed-out tasks are remembered at most. A task is forgotten when it is answered;
/// one that never is (its worker died) stays until this many have piled up, then all are
/// forgotten (their workflows' next tasks are learned afresh).
const REMEMBERED_TASKS: usize = 10_000;

/// `versioning_behavior` is field 16 of `RespondWorkflowTaskCompletedRequest`, a varint: its key,
/// `16 << 3 | 0`, encoded as a varint.
const VERSIONING_BEHAVIOR_KEY: [u8; 2] = [0x80, 0x01];

/// The two fields of a handed-out workflow task this reads (`task_token` 1 and `workflow_type`
/// 3 of `PollWorkflowTaskQueueResponse`); the rest, the history above all, is skipped unread.
#[derive(Clone, PartialEq, prost::Message)]
struct HandedTask {
    #[prost(bytes = "vec", tag = "1")]
    task_token: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    workflow_type: Option<WorkflowType>,
}

/// The next task a completion may hand over (`workflow_task`, field 1 of
/// `RespondWorkflowTaskCompletedResponse`).
#[derive(Clone, PartialEq, prost::Message)]
struct NextTask {
    #[prost(message, optional, tag = "1")]
    workflow_task: Option<HandedTask>,
}

/// The task an answer is for: `task_token` is field 1 of every answer to a workflow task.
#[derive(Clone, PartialEq, prost::Message)]
struct AnsweredTask {
    #[prost(bytes = "vec", tag = "1")]
    task_token: Vec<u8>,
}

/// The behaviours that differ from the worker default, by workflow type, and the tasks in
/// flight whose workflow has one.
#[derive(Debug, Default)]
pub(crate) struct BehaviorOverrides {
    by_type: BTreeMap<String, WireBehavior>,
    tasks: Mutex<HashMap<Vec<u8>, WireBehavior>>,
}

impl BehaviorOverrides {
    /// Overrides for the workflow types in `by_type` (none: a worker without a mix).
    pub(crate) fn new(by_type: &BTreeMap<String, VersioningBehavior>) -> Self {
        let by_type = by_type
            .iter()
            .filter_map(|(name, behavior)| Some((name.clone(), wire(*behavior)?)))
            .collect();
        Self {
            by_type,
            tasks: Mutex::default(),
        }
    }

    /// Learns, from the response of `rpc`, which task (if any) the worker was handed and
    /// whether its workflow type has an override.
    pub(crate) fn learn(&self, rpc: &str, response: &[u8]) {
        if self.by_type.is_empty() {
            return;
        }
        let task = match rpc {
            "PollWorkflowTaskQueue" => HandedTask::decode(response).ok(),
            // A completion can hand the worker its next task at once.
            "RespondWorkflowTaskCompleted" => NextTask::decode(response)
                .ok()
                .and_then(|r| r.workflow_task),
            _ => None,
        };
        let Some(task) = task.filter(|t| !t.task_token.is_empty()) else {
            return;
        };
        let Some(behavior) = task
            .workflow_type
            .as_ref()
            .and_then(|t| self.by_type.get(&t.name))
        else {
            return;
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if tasks.len() >= REMEMBERED_TASKS {
            tasks.clear();
        }
        tasks.insert(task.task_token, *behavior);
    }

    /// The request of `rpc` as it goes to the server: a completed workflow task whose workflow
    /// has an override carries that behaviour; any other request is passed on untouched. An
    /// answered task is forgotten.
    pub(crate) fn apply(&self, rpc: &str, request: Bytes) -> Bytes {
        if self.by_type.is_empty() || !ANSWERS.contains(&rpc) {
            return request;
        }
        let Ok(answered) = AnsweredTask::decode(request.clone()) else {
            return request;
        };
        match self.forget(&answered.task_token) {
            Some(behavior) if rpc == "RespondWorkflowTaskCompleted" => {
                let mut overridden = Vec::with_capacity(request.len() + 3);
                overridden.extend_from_slice(&request);
                overridden.extend_from_slice(&VERSIONING_BEHAVIOR_KEY);
                overridden.push(behavior as u8);
                Bytes::from(overridden)
            }
            _ => request,
        }
    }

    fn forget(&self, task_token: &[u8]) -> Option<WireBehavior> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.remove(task_token)
    }

    /// Tasks remembered right now (for tests).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.tasks.lock().unwrap().len()
    }
}

/// The answers to a workflow task, after which its token is forgotten.
const ANSWERS: [&str; 3] = [
    "RespondWorkflowTaskCompleted",
    "RespondWorkflowTaskFailed",
    "RespondQueryTaskCompleted",
];

fn wire(behavior: VersioningBehavior) -> Option<WireBehavior> {
    match behavior {
        VersioningBehavior::Pinned => Some(WireBehavior::Pinned),
        VersioningBehavior::AutoUpgrade => Some(WireBehavior::AutoUpgrade),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use temporalio_common::protos::temporal::api::workflowservice::v1::{
        PollWorkflowTaskQueueResponse, RespondWorkflowTaskCompletedRequest,
        RespondWorkflowTaskCompletedResponse, RespondWorkflowTaskFailedRequest,
    };

    use super::*;

    fn overrides() -> BehaviorOverrides {
        BehaviorOverrides::new(&BTreeMap::from([(
            "Entity".to_owned(),
            VersioningBehavior::AutoUpgrade,
        )]))
    }

    fn task(token: &[u8], workflow_type: &str) -> PollWorkflowTaskQueueResponse {
        PollWorkflowTaskQueueResponse {
            task_token: token.to_vec(),
            workflow_type: Some(WorkflowType {
                name: workflow_type.to_owned(),
            }),
            ..Default::default()
        }
    }

    fn completed(token: &[u8]) -> Bytes {
        Bytes::from(
            RespondWorkflowTaskCompletedRequest {
                task_token: token.to_vec(),
                versioning_behavior: WireBehavior::Pinned.into(),
                identity: "worker".to_owned(),
                ..Default::default()
            }
            .encode_to_vec(),
        )
    }

    fn behavior(request: &Bytes) -> WireBehavior {
        RespondWorkflowTaskCompletedRequest::decode(request.clone())
            .unwrap()
            .versioning_behavior()
    }

    #[test]
    fn a_task_of_an_overridden_workflow_completes_with_its_behaviour_and_is_forgotten() {
        let overrides = overrides();
        overrides.learn(
            "PollWorkflowTaskQueue",
            &task(b"t1", "Entity").encode_to_vec(),
        );
        overrides.learn(
            "PollWorkflowTaskQueue",
            &task(b"t2", "Order").encode_to_vec(),
        );
        assert_eq!(overrides.remembered(), 1, "only the overridden type");
        let original = completed(b"t1");
        let sent = overrides.apply("RespondWorkflowTaskCompleted", original.clone());
        assert_eq!(behavior(&sent), WireBehavior::AutoUpgrade);
        // Everything else in the request is as the SDK wrote it: the original bytes, then the
        // field.
        assert!(sent.starts_with(&original));
        let mut decoded = RespondWorkflowTaskCompletedRequest::decode(sent).unwrap();
        decoded.versioning_behavior = WireBehavior::Pinned.into();
        assert_eq!(
            decoded,
            RespondWorkflowTaskCompletedRequest::decode(original).unwrap()
        );
        assert_eq!(overrides.remembered(), 0);
        // The other workflow's completion goes out byte for byte as it came.
        let original = completed(b"t2");
        assert_eq!(
            overrides.apply("RespondWorkflowTaskCompleted", original.clone()),
            original
        );
    }

    #[test]
    fn the_next_task_handed_with_a_completion_is_learned_too_and_a_failure_forgets() {
        let overrides = overrides();
        let response = RespondWorkflowTaskCompletedResponse {
            workflow_task: Some(task(b"t3", "Entity")),
            ..Default::default()
        };
        overrides.learn("RespondWorkflowTaskCompleted", &response.encode_to_vec());
        assert_eq!(overrides.remembered(), 1);
        let failed = RespondWorkflowTaskFailedRequest {
            task_token: b"t3".to_vec(),
            ..Default::default()
        };
        let request = Bytes::from(failed.encode_to_vec());
        assert_eq!(
            overrides.apply("RespondWorkflowTaskFailed", request.clone()),
            request
        );
        assert_eq!(overrides.remembered(), 0);
    }

    #[test]
    fn without_overrides_nothing_is_decoded_or_changed() {
        let none = BehaviorOverrides::new(&BTreeMap::new());
        none.learn(
            "PollWorkflowTaskQueue",
            &task(b"t1", "Entity").encode_to_vec(),
        );
        assert_eq!(none.remembered(), 0);
        let request = completed(b"t1");
        assert_eq!(
            none.apply("RespondWorkflowTaskCompleted", request.clone()),
            request
        );
        // Not even a message that is not one: it would not be decoded.
        let garbage = Bytes::from_static(b"\xff\xff");
        assert_eq!(
            none.apply("RespondWorkflowTaskCompleted", garbage.clone()),
            garbage
        );
    }

    #[test]
    fn the_memory_is_bounded() {
        let overrides = overrides();
        for i in 0..REMEMBERED_TASKS + 5 {
            let token = format!("t{i}");
            overrides.learn(
                "PollWorkflowTaskQueue",
                &task(token.as_bytes(), "Entity").encode_to_vec(),
            );
        }
        assert!(overrides.remembered() <= REMEMBERED_TASKS);
    }
}
