//! Clean stops: every gRPC call of the worker's connection passes through here, unchanged but
//! for one thing, so that a stopping worker can leave Temporal with no poll of its own.
//!
//! The SDK stops a worker by cancelling its outstanding long polls. A poll cancelled while the
//! server is matching it with a task (in particular while the server forwards it from one task
//! queue partition to another) can leave that task recorded as started by the stopped worker,
//! and it then waits for its timeout (10 s for a workflow task, the start-to-close timeout for an
//! activity). The same holds when the server cancels the polls itself at `ShutdownWorker`. The
//! only safe end of a poll is its deadline, or the task it brings. So before the SDK is asked to
//! stop, the [`PollGate`] is closed: polls the worker starts from then on are held here and never
//! sent, and the ones already at the server end there at their deadline (every poll is sent with
//! one of at most [`POLL_DEADLINE`], and the server answers a poll that found no task a second
//! before it). A task that such a poll still brings reaches a worker that is running, and is
//! processed. Only then does the SDK stop the worker; it has nothing left to cancel.
//!
//! The one change to a call: a poll's deadline is capped at [`POLL_DEADLINE`] (the SDK asks for
//! 70 s). Everything else (headers such as the API key, TLS, compression, deadlines of other
//! calls, errors with their details) passes through as it is.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use temporalio_client::{
    ConnectionOptions, GrpcCompression,
    callback_based::{CallbackBasedGrpcService, GrpcRequest, GrpcSuccessResponse},
    tonic::{
        self, Status,
        client::Grpc,
        codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder},
        codegen::{Bytes, http::uri::PathAndQuery},
        metadata::MetadataMap,
        transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
    },
};
use temporalio_common::protos::temporal::api::{
    enums::v1::TaskQueueKind,
    workflowservice::v1::{
        PollActivityTaskQueueResponse, PollWorkflowTaskQueueRequest, PollWorkflowTaskQueueResponse,
    },
};
use tokio::{sync::watch, time::Instant};
use tracing::debug;

use crate::versioning::BehaviorOverrides;

/// The longest deadline a poll is sent with. The server refuses long polls with less than 2 s
/// left when they arrive (half a second is kept for the way there) and answers one that found no
/// task a second before its deadline, so a stopping worker waits at most 1.5 s for its last poll
/// to end.
pub const POLL_DEADLINE: Duration = Duration::from_millis(2_500);

/// How long a poll may still wait at the server once no new one is sent: the server answers a
/// poll that found no task a second before its deadline.
pub(crate) const LAST_POLL_WAIT: Duration = Duration::from_millis(1_500);

/// Time for the last poll's way to the server and its answer's way back into the worker. On a
/// small function this is not network time but CPU time: a 128 MB function gets 7 % of a CPU,
/// in slices every 100 ms, so a throttled worker can take a few hundred milliseconds to send a
/// poll it decided on or to see an answer; a drain planned without this lost tasks at 128 MB.
pub(crate) const LAST_POLL_RETURN: Duration = Duration::from_millis(500);

/// Methods that long-poll for tasks.
const POLL_METHODS: [&str; 3] = [
    "PollWorkflowTaskQueue",
    "PollActivityTaskQueue",
    "PollNexusTaskQueue",
];

/// Headers that describe how one hop frames its messages, not the call itself.
const FRAMING_HEADERS: [&str; 3] = ["content-type", "grpc-encoding", "grpc-accept-encoding"];

/// Methods that answer a workflow task handed to the worker.
const ANSWER_METHODS: [&str; 3] = [
    "RespondWorkflowTaskCompleted",
    "RespondWorkflowTaskFailed",
    "RespondQueryTaskCompleted",
];

/// Largest message accepted from the server, as the SDK's own connection has it.
const MAX_DECODING_MESSAGE_SIZE: usize = 128 * 1024 * 1024;

/// What happens to a poll the worker starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// Sent to the server.
    Open,
    /// Held here, unsent, while the polls at the server end.
    Holding,
    /// Answered here at once with no task, so a stopping worker waits for none (the SDK waits
    /// for its polls to return on servers that complete a stopping worker's polls).
    Answering,
}

/// Whether the worker's polls may reach the server, and how many are there now.
#[derive(Debug)]
pub(crate) struct PollGate {
    state: watch::Sender<Gate>,
    /// Polls at the server, and workflow tasks handed to the worker and not yet answered.
    pending: watch::Sender<Pending>,
    /// Polls answered with an activity task, since the gate last opened.
    activity_tasks_brought: AtomicU64,
    /// The worker's sticky task queue, learned from its polls, for the server to forget.
    sticky_queue: Mutex<Option<String>>,
}

impl Default for PollGate {
    fn default() -> Self {
        Self {
            state: watch::Sender::new(Gate::Open),
            pending: watch::Sender::new(Pending::default()),
            activity_tasks_brought: AtomicU64::new(0),
            sticky_queue: Mutex::new(None),
        }
    }
}

impl PollGate {
    /// Lets polls through, for a new worker.
    pub(crate) fn open(&self) {
        *lock(&self.sticky_queue) = None;
        self.activity_tasks_brought.store(0, Ordering::Relaxed);
        self.pending.send_modify(|p| p.workflow_tasks = 0);
        self.state.send_replace(Gate::Open);
    }

    /// Holds every poll started from now on.
    pub(crate) fn close(&self) {
        self.state.send_replace(Gate::Holding);
    }

    /// Answers every held poll, and every later one, with no task, for a worker that stops.
    pub(crate) fn answer_empty(&self) {
        self.state.send_replace(Gate::Answering);
    }

    /// Returns true once no poll of this connection is at the server and the worker has answered
    /// every workflow task handed to it (one still in the SDK's buffer would be dropped by a
    /// stopping worker), or false at `by`.
    pub(crate) async fn settled(&self, by: Instant) -> bool {
        let mut pending = self.pending.subscribe();
        let settled = |p: &Pending| p.polls == 0 && p.workflow_tasks <= 0;
        tokio::time::timeout_at(by, pending.wait_for(settled))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// How many polls were answered with an activity task since the gate last opened: the
    /// worker must have started each before it is asked to stop, or the SDK may drop one still
    /// in its buffer.
    pub(crate) fn activity_tasks_brought(&self) -> u64 {
        self.activity_tasks_brought.load(Ordering::Relaxed)
    }

    /// The sticky task queue the worker has polled, if any.
    pub(crate) fn sticky_queue(&self) -> Option<String> {
        lock(&self.sticky_queue).clone()
    }

    /// Waits while polls are held; then counts one at the server until the guard drops, or
    /// returns `None` when the poll is to be answered here with no task.
    async fn enter(self: &Arc<Self>) -> Option<AtServer> {
        let mut state = self.state.subscribe();
        // The sender lives as long as the gate; a closed channel cannot happen while we hold it.
        let gate = state
            .wait_for(|gate| *gate != Gate::Holding)
            .await
            .map_or(Gate::Answering, |gate| *gate);
        if gate == Gate::Answering {
            return None;
        }
        self.pending.send_modify(|p| p.polls += 1);
        Some(AtServer(Arc::clone(self)))
    }

    /// Counts the tasks a response hands to the worker: a poll's task, or the next workflow task
    /// that the server may return with a completion.
    fn count_tasks(&self, rpc: &str, response: &[u8]) {
        match rpc {
            "PollWorkflowTaskQueue" if carries_task(response) => {
                self.pending.send_modify(|p| p.workflow_tasks += 1);
            }
            "RespondWorkflowTaskCompleted" if returns_workflow_task(response) => {
                self.pending.send_modify(|p| p.workflow_tasks += 1);
            }
            "PollActivityTaskQueue" if carries_task(response) => {
                self.activity_tasks_brought.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Keeps the name of the worker's sticky queue when `request` polls it, for the server to
    /// forget it.
    fn learn_sticky_queue(&self, request: &GrpcRequest) {
        if request.rpc != "PollWorkflowTaskQueue" {
            return;
        }
        let Ok(poll) =
            <PollWorkflowTaskQueueRequest as prost::Message>::decode(request.proto.clone())
        else {
            return;
        };
        if let Some(queue) = poll.task_queue
            && queue.kind() == TaskQueueKind::Sticky
        {
            *lock(&self.sticky_queue) = Some(queue.name);
        }
    }
}

/// What a stopping worker waits for.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    polls: usize,
    workflow_tasks: i64,
}

/// A poll counted as at the server, until dropped (answered, failed or cancelled).
struct AtServer(Arc<PollGate>);

impl Drop for AtServer {
    fn drop(&mut self) {
        self.0
            .pending
            .send_modify(|p| p.polls = p.polls.saturating_sub(1));
    }
}

/// The value behind `mutex`, also after a panic elsewhere (every update here is one assignment).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connection the worker's calls really travel on, and the gate in front of its polls.
#[derive(Clone, Debug)]
pub(crate) struct Forwarder {
    channel: Channel,
    gate: Arc<PollGate>,
    compression: Option<CompressionEncoding>,
    /// Per-workflow versioning behaviours the SDK cannot send (usually none).
    behaviors: Arc<BehaviorOverrides>,
}

impl Forwarder {
    /// Connects to the server as the SDK would with `options` (TLS, client certificate, keep-alive,
    /// origin, proxy, connect timeout), at once, so an unreachable server fails here.
    pub(crate) async fn connect(
        options: &ConnectionOptions,
        behaviors: Arc<BehaviorOverrides>,
    ) -> Result<Self, tonic::transport::Error> {
        let mut endpoint = Endpoint::from_shared(options.target.to_string())?;
        if let Some(timeout) = options.connect_timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        if let Some(tls) = &options.tls_options {
            if let Some(domain) = &tls.domain {
                // SNI and :authority, as the SDK sets them.
                let origin = Endpoint::from_shared(format!("https://{domain}"))?;
                endpoint = endpoint.origin(origin.uri().clone());
            }
            let mut config = ClientTlsConfig::new();
            if tls.server_cert_verifier.is_none() {
                config = match &tls.server_root_ca_cert {
                    Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
                    None => config.with_native_roots(),
                };
            }
            if let Some(domain) = &tls.domain {
                config = config.domain_name(domain);
            }
            if let Some(client) = &tls.client_tls_options {
                config = config.identity(Identity::from_pem(
                    &client.client_cert,
                    &client.client_private_key,
                ));
            }
            endpoint = match &tls.server_cert_verifier {
                Some(verifier) => endpoint.tls_config_with_verifier(config, verifier.clone())?,
                None => endpoint.tls_config(config)?,
            };
        }
        if let Some(keep_alive) = &options.keep_alive {
            endpoint = endpoint
                .keep_alive_while_idle(true)
                .http2_keep_alive_interval(keep_alive.interval)
                .keep_alive_timeout(keep_alive.timeout);
        }
        if let Some(origin) = &options.override_origin {
            endpoint = endpoint.origin(origin.clone());
        }
        let channel = match &options.http_connect_proxy {
            Some(proxy) => proxy.connect_endpoint(&endpoint).await?,
            None => endpoint.connect().await?,
        };
        Ok(Self {
            channel,
            gate: Arc::default(),
            behaviors,
            compression: match options.grpc_compression {
                GrpcCompression::Gzip => Some(CompressionEncoding::Gzip),
                _ => None,
            },
        })
    }

    /// The gate in front of this connection's polls.
    pub(crate) fn gate(&self) -> Arc<PollGate> {
        Arc::clone(&self.gate)
    }

    /// `options` with every call routed through this forwarder.
    pub(crate) fn route(&self, options: &ConnectionOptions) -> ConnectionOptions {
        let mut routed = options.clone();
        let forwarder = self.clone();
        routed.service_override = Some(CallbackBasedGrpcService {
            callback: Arc::new(move |request| forwarder.clone().call(request)),
        });
        // Load balancing and the proxy belong to the connection made above.
        routed.dns_load_balancing = None;
        routed.http_connect_proxy = None;
        routed
    }

    fn call(self, request: GrpcRequest) -> BoxFuture<'static, Result<GrpcSuccessResponse, Status>> {
        async move {
            let poll = POLL_METHODS.contains(&request.rpc.as_str());
            let _at_server = if poll {
                self.gate.learn_sticky_queue(&request);
                match self.gate.enter().await {
                    Some(at_server) => Some(at_server),
                    // An empty message is a poll response with no task.
                    None => {
                        return Ok(GrpcSuccessResponse {
                            headers: Default::default(),
                            proto: Vec::new(),
                        });
                    }
                }
            } else {
                None
            };
            self.forward(request, poll).await
        }
        .boxed()
    }

    async fn forward(
        &self,
        request: GrpcRequest,
        poll: bool,
    ) -> Result<GrpcSuccessResponse, Status> {
        let rpc = request.rpc;
        let path = PathAndQuery::try_from(format!("/{}/{rpc}", request.service))
            .map_err(|e| Status::internal(format!("invalid method path: {e}")))?;
        let mut headers = request.headers;
        // Set again by the client that sends the call.
        for name in FRAMING_HEADERS.iter().chain(&["user-agent", "te"]) {
            headers.remove(*name);
        }
        let mut call = tonic::Request::from_parts(
            MetadataMap::from_headers(headers),
            Default::default(),
            self.behaviors.apply(&rpc, request.proto),
        );
        if poll {
            let asked = call
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_grpc_timeout);
            call.set_timeout(asked.map_or(POLL_DEADLINE, |asked| asked.min(POLL_DEADLINE)));
        }
        let mut grpc = Grpc::new(self.channel.clone())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
            .max_encoding_message_size(usize::MAX);
        if let Some(encoding) = self.compression {
            grpc = grpc.send_compressed(encoding).accept_compressed(encoding);
        }
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
        let response = grpc.unary(call, path, RawCodec).await;
        if ANSWER_METHODS.contains(&rpc.as_str()) {
            self.gate.pending.send_modify(|p| p.workflow_tasks -= 1);
        }
        let response = match response {
            Ok(response) => response,
            Err(status) => {
                if poll {
                    debug!(rpc, code = ?status.code(), "a poll ended with an error");
                }
                return Err(status);
            }
        };
        let (metadata, proto, _) = response.into_parts();
        if poll && tracing::enabled!(tracing::Level::DEBUG) {
            log_poll_result(&rpc, &proto);
        }
        self.gate.count_tasks(&rpc, &proto);
        self.behaviors.learn(&rpc, &proto);
        let mut headers = metadata.into_headers();
        // The message is handed on decompressed, and the service override sets its own type.
        for name in FRAMING_HEADERS {
            headers.remove(name);
        }
        Ok(GrpcSuccessResponse {
            headers,
            proto: proto.to_vec(),
        })
    }
}

/// Which task a poll brought, for following a task from the server to the worker.
fn log_poll_result(rpc: &str, response: &[u8]) {
    match rpc {
        "PollActivityTaskQueue" => {
            match <PollActivityTaskQueueResponse as prost::Message>::decode(response) {
                Ok(task) if !task.task_token.is_empty() => debug!(
                    workflow_id = task
                        .workflow_execution
                        .map(|e| e.workflow_id)
                        .unwrap_or_default(),
                    activity_type = task.activity_type.map(|t| t.name).unwrap_or_default(),
                    attempt = task.attempt,
                    "a poll brought an activity task"
                ),
                _ => debug!(rpc, "a poll ended with no task"),
            }
        }
        "PollWorkflowTaskQueue" => {
            match <PollWorkflowTaskQueueResponse as prost::Message>::decode(response) {
                Ok(task) if !task.task_token.is_empty() => debug!(
                    workflow_id = task
                        .workflow_execution
                        .map(|e| e.workflow_id)
                        .unwrap_or_default(),
                    started_event_id = task.started_event_id,
                    "a poll brought a workflow task"
                ),
                _ => debug!(rpc, "a poll ended with no task"),
            }
        }
        _ => debug!(rpc, "a poll ended"),
    }
}

/// The one field that every poll response with a task has (`task_token`, field 1 of the
/// workflow, activity and Nexus poll responses); the rest of the message is skipped unread.
#[derive(Clone, PartialEq, prost::Message)]
struct TaskToken {
    #[prost(bytes = "vec", tag = "1")]
    task_token: Vec<u8>,
}

/// Whether an encoded poll response carries a task (an empty one answers a poll that found none).
fn carries_task(response: &[u8]) -> bool {
    <TaskToken as prost::Message>::decode(response).is_ok_and(|t| !t.task_token.is_empty())
}

/// The next workflow task a completion's response may carry (`workflow_task`, field 1).
#[derive(Clone, PartialEq, prost::Message)]
struct NextWorkflowTask {
    #[prost(message, optional, tag = "1")]
    workflow_task: Option<TaskToken>,
}

/// Whether an encoded `RespondWorkflowTaskCompletedResponse` hands the worker its next task.
fn returns_workflow_task(response: &[u8]) -> bool {
    <NextWorkflowTask as prost::Message>::decode(response)
        .is_ok_and(|r| r.workflow_task.is_some_and(|t| !t.task_token.is_empty()))
}

/// A gRPC `grpc-timeout` header value (`<digits><unit>`, unit one of `HMSmun`).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Passes encoded messages through as bytes.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes::BufMut;
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("70S"), Some(Duration::from_secs(70)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "12", "12x", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_poll_response_with_a_task_token_carries_a_task() {
        use temporalio_common::protos::temporal::api::workflowservice::v1::{
            PollActivityTaskQueueResponse, PollWorkflowTaskQueueResponse,
        };
        let encode = |m: &dyn Fn() -> Vec<u8>| m();
        let with_task = encode(&|| {
            prost::Message::encode_to_vec(&PollWorkflowTaskQueueResponse {
                task_token: b"token".to_vec(),
                attempt: 1,
                ..Default::default()
            })
        });
        let activity = prost::Message::encode_to_vec(&PollActivityTaskQueueResponse {
            task_token: b"token".to_vec(),
            activity_id: "a".to_owned(),
            ..Default::default()
        });
        let empty = prost::Message::encode_to_vec(&PollWorkflowTaskQueueResponse {
            attempt: 0,
            ..Default::default()
        });
        assert!(carries_task(&with_task));
        assert!(carries_task(&activity));
        assert!(!carries_task(&empty));
        assert!(!carries_task(b""));
    }

    #[tokio::test]
    async fn a_closed_gate_holds_new_polls_and_reports_when_none_is_at_the_server() {
        let gate = Arc::new(PollGate::default());
        let first = gate.enter().await;
        assert!(first.is_some());
        gate.close();
        let held = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.enter().await }
        });
        tokio::task::yield_now().await;
        assert!(!held.is_finished(), "a poll after close waits");
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(!gate.settled(soon).await, "one still at the server");
        drop(first);
        assert!(gate.settled(Instant::now() + Duration::from_secs(1)).await);
        gate.open();
        let second = tokio::time::timeout(Duration::from_secs(1), held)
            .await
            .expect("released when the gate opens")
            .unwrap();
        assert!(second.is_some(), "sent to the server");
        assert!(!gate.settled(Instant::now()).await);
        drop(second);
    }

    #[tokio::test]
    async fn a_workflow_task_handed_to_the_worker_is_pending_until_answered() {
        use temporalio_common::protos::temporal::api::workflowservice::v1::{
            PollWorkflowTaskQueueResponse, RespondWorkflowTaskCompletedResponse,
        };
        let task = PollWorkflowTaskQueueResponse {
            task_token: b"token".to_vec(),
            ..Default::default()
        };
        let gate = PollGate::default();
        let now = || Instant::now();
        gate.count_tasks(
            "PollWorkflowTaskQueue",
            &prost::Message::encode_to_vec(&task),
        );
        assert!(!gate.settled(now()).await, "handed over, not answered");
        // The completion's response hands over the next one.
        let next = RespondWorkflowTaskCompletedResponse {
            workflow_task: Some(task.clone()),
            ..Default::default()
        };
        gate.pending.send_modify(|p| p.workflow_tasks -= 1);
        gate.count_tasks(
            "RespondWorkflowTaskCompleted",
            &prost::Message::encode_to_vec(&next),
        );
        assert!(!gate.settled(now()).await, "the next one is pending");
        gate.pending.send_modify(|p| p.workflow_tasks -= 1);
        gate.count_tasks(
            "RespondWorkflowTaskCompleted",
            &prost::Message::encode_to_vec(&RespondWorkflowTaskCompletedResponse::default()),
        );
        assert!(gate.settled(now()).await);
        // An activity task is counted for the worker to start.
        gate.count_tasks(
            "PollActivityTaskQueue",
            &prost::Message::encode_to_vec(&task),
        );
        assert_eq!(gate.activity_tasks_brought(), 1);
        gate.open();
        assert_eq!(gate.activity_tasks_brought(), 0);
    }

    #[tokio::test]
    async fn a_stopping_worker_gets_held_and_later_polls_answered_with_no_task() {
        let gate = Arc::new(PollGate::default());
        gate.close();
        let held = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.enter().await.is_none() }
        });
        tokio::task::yield_now().await;
        gate.answer_empty();
        assert!(held.await.unwrap(), "the held poll is answered here");
        assert!(gate.enter().await.is_none(), "so is a later one");
        assert!(gate.settled(Instant::now()).await);
    }
}
