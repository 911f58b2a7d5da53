//! The seam between the invocation lifecycle and its side effects: the clock, connecting to
//! Temporal, and creating and running a Worker. [`SdkBackend`] is the real one; the unit tests
//! substitute a scripted one to reach every branch of the lifecycle without a server.

use std::{future::Future, sync::Arc, time::SystemTime};

use futures::{FutureExt, future::LocalBoxFuture};
use temporalio_client::{
    Client, ClientOptions, ConnectionOptions, NamespacedClient, errors::ClientConnectError, tonic,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    GetSystemInfoRequest, ShutdownWorkerRequest,
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions, WorkerRunError};
use tokio::time::Instant;
use tracing::debug;

use crate::{
    InvocationError,
    error::describe,
    polls::{Forwarder, PollGate},
    task_count::TaskCount,
    versioning::BehaviorOverrides,
};

/// Side effects of one invocation.
pub(crate) trait Backend {
    /// A connected, namespace-bound client; clones share the connection.
    type Client: Clone;
    /// A worker that polls until told to stop.
    type Worker: PollingWorker;

    /// Wall-clock time, against which Lambda's epoch-millisecond deadline is read.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Connects to the Temporal server. The error is a human-readable reason.
    fn connect(
        &self,
        connection: ConnectionOptions,
        client: ClientOptions,
    ) -> impl Future<Output = Result<Self::Client, String>>;

    /// Checks with one short request that a client kept from an earlier invocation still
    /// reaches the server.
    fn check(&self, client: &Self::Client) -> impl Future<Output = Result<(), String>>;

    /// Creates a fresh worker on `client`.
    fn create_worker(
        &self,
        client: Self::Client,
        options: WorkerOptions,
    ) -> Result<Self::Worker, InvocationError>;
}

/// Ends a worker's polls at the server before it stops (see [`crate::polls`]): no poll it starts
/// from then on is sent, and the call returns once none of its polls is at the server, or at the
/// given instant. Tasks those polls still bring are processed meanwhile.
pub(crate) type DrainPolls = Box<dyn Fn(Instant) -> LocalBoxFuture<'static, Drained>>;

/// How ending the polls went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Drained {
    /// No poll of the worker is at the server, and it has answered every workflow task.
    pub(crate) settled: bool,
    /// Polls answered with an activity task over the worker's life, all of which it must have
    /// started.
    pub(crate) activity_tasks_brought: u64,
}

/// What the lifecycle needs of a worker.
pub(crate) trait PollingWorker {
    /// The tasks this worker has seen so far.
    fn tasks(&self) -> Arc<TaskCount>;
    /// A function that ends the worker's polls at the server while it keeps running.
    fn drain_handle(&self) -> DrainPolls;
    /// A function that asks the worker to stop polling and drain.
    fn shutdown_handle(&self) -> Box<dyn Fn()>;
    /// Polls and processes tasks until stopped, or fails.
    fn run(&mut self) -> impl Future<Output = Result<(), InvocationError>>;
}

/// The real backend: the Temporal Rust SDK, on one SDK runtime shared by all invocations.
pub(crate) struct SdkBackend {
    pub(crate) runtime: Runtime,
    /// Per-workflow versioning behaviours, set on the way to the server.
    pub(crate) behaviors: Arc<BehaviorOverrides>,
}

/// A client whose calls travel through a [`Forwarder`], with the gate in front of its polls.
#[derive(Clone)]
pub(crate) struct GatedClient {
    client: Client,
    gate: Arc<PollGate>,
}

/// An SDK worker with interceptors that count its tasks.
pub(crate) struct SdkWorker {
    worker: Worker,
    tasks: Arc<TaskCount>,
    client: GatedClient,
    /// Who asks the server to forget this worker's sticky queue (the queue is learned later).
    shutdown_request: ShutdownWorkerRequest,
}

impl Backend for SdkBackend {
    type Client = GatedClient;
    type Worker = SdkWorker;

    async fn connect(
        &self,
        connection: ConnectionOptions,
        client: ClientOptions,
    ) -> Result<GatedClient, String> {
        let forwarder = Forwarder::connect(&connection, Arc::clone(&self.behaviors))
            .await
            .map_err(|e| connect_failure(&ClientConnectError::TonicTransportError(e)))?;
        let client = Client::connect(forwarder.route(&connection), client)
            .await
            .map_err(|e| connect_failure(&e))?;
        Ok(GatedClient {
            client,
            gate: forwarder.gate(),
        })
    }

    async fn check(&self, client: &GatedClient) -> Result<(), String> {
        let request = tonic::Request::new(GetSystemInfoRequest::default());
        client
            .client
            .connection()
            .workflow_service()
            .get_system_info(request)
            .await
            .map(drop)
            .map_err(|status| status.message().to_owned())
    }

    fn create_worker(
        &self,
        client: GatedClient,
        mut options: WorkerOptions,
    ) -> Result<SdkWorker, InvocationError> {
        let tasks = TaskCount::attach(&mut options);
        let shutdown_request = ShutdownWorkerRequest {
            namespace: client.client.namespace(),
            identity: options.client_identity_override.clone().unwrap_or_default(),
            reason: "the Lambda invocation is ending".to_owned(),
            ..Default::default()
        };
        let worker = Worker::new(&self.runtime, client.client.clone(), options)
            .map_err(|e| InvocationError::WorkerStart(e.into()))?;
        client.gate.open();
        Ok(SdkWorker {
            shutdown_request,
            worker,
            tasks,
            client,
        })
    }
}

/// Why connecting failed, on one line without the SDK's debug dumps (which also carry the
/// response's metadata), with a hint at the usual cause.
fn connect_failure(error: &ClientConnectError) -> String {
    let reason = match error {
        ClientConnectError::SystemInfoCallError(status) => {
            let mut reason = format!("{:?}: {}", status.code(), status.message());
            if let Some(source) = std::error::Error::source(status) {
                reason.push_str(": ");
                reason.push_str(&describe(source));
            }
            reason
        }
        ClientConnectError::TonicTransportError(transport) => describe(transport),
        other => describe(other),
    };
    let hint = if reason.contains("Unauthenticated") || reason.contains("PermissionDenied") {
        Some("check the API key (api_key, TEMPORAL_API_KEY) or the client certificate")
    } else if reason.contains("certificate") {
        Some(
            "the server's certificate is not trusted for this address: set tls.server_ca_cert \
             (TEMPORAL_TLS_SERVER_CA_CERT_PATH) to its CA, or tls.server_name to the name it \
             was issued for",
        )
    } else if reason.contains("onnection refused") {
        Some("nothing listens there: check TEMPORAL_ADDRESS (host:port)")
    } else {
        None
    };
    match hint {
        Some(hint) => format!("{reason}: {hint}"),
        None => reason,
    }
}

/// Tells the server to forget the worker's sticky queue, so that workflow tasks go to the normal
/// queue from now on instead of waiting there for a worker that stops (the server unloads the
/// queue before it answers, which also ends the sticky poll waiting there).
///
/// The request names no task queue and no worker instance key on purpose: with them, a server
/// that completes a stopping worker's polls (`frontend.enableCancelWorkerPollsOnShutdown`)
/// cancels them, and a poll cancelled while the server forwards it between task queue partitions
/// can lose the task it was being matched with (recorded as started, never delivered: Temporal
/// Server 1.32). The polls end at their own short deadline instead.
async fn forget_sticky_queue(
    client: &GatedClient,
    request: &ShutdownWorkerRequest,
    sticky_queue: &str,
    by: Instant,
) {
    let request = ShutdownWorkerRequest {
        sticky_task_queue: sticky_queue.to_owned(),
        ..request.clone()
    };
    let mut service = client.client.connection().workflow_service();
    let told = service.shutdown_worker(tonic::Request::new(request));
    match tokio::time::timeout_at(by, told).await {
        Ok(Ok(_)) => debug!("the server forgot the sticky queue"),
        Ok(Err(status)) => debug!(%status, "the server did not forget the sticky queue"),
        Err(_) => debug!("no answer in time about the sticky queue"),
    }
}

impl PollingWorker for SdkWorker {
    fn tasks(&self) -> Arc<TaskCount> {
        Arc::clone(&self.tasks)
    }

    fn drain_handle(&self) -> DrainPolls {
        let client = self.client.clone();
        let request = self.shutdown_request.clone();
        Box::new(move |by| {
            let (client, request) = (client.clone(), request.clone());
            async move {
                client.gate.close();
                let sticky_queue = client.gate.sticky_queue();
                if let Some(sticky_queue) = &sticky_queue {
                    forget_sticky_queue(&client, &request, sticky_queue, by).await;
                }
                let settled = client.gate.settled(by).await;
                debug!(settled, "the polls at the server ended");
                // A sticky poll that reached the server after it forgot the queue made it
                // remember the queue again; now that none is left there, forget it for good.
                if let Some(sticky_queue) = &sticky_queue {
                    forget_sticky_queue(&client, &request, sticky_queue, by).await;
                }
                Drained {
                    settled,
                    activity_tasks_brought: client.gate.activity_tasks_brought(),
                }
            }
            .boxed_local()
        })
    }

    fn shutdown_handle(&self) -> Box<dyn Fn()> {
        let (gate, shutdown) = (Arc::clone(&self.client.gate), self.worker.shutdown_handle());
        Box::new(move || {
            // Polls held while the others ended must not keep the stopping worker waiting.
            gate.answer_empty();
            shutdown();
        })
    }

    async fn run(&mut self) -> Result<(), InvocationError> {
        self.worker.run().await.map_err(|e| match e {
            // Validation is the worker's check-in with the namespace before it polls.
            e @ WorkerRunError::Validation(_) => InvocationError::WorkerStart(e.into()),
            e => InvocationError::WorkerFailed(e.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_are_named_with_the_fix_and_no_metadata() {
        let mut status = tonic::Status::unauthenticated("missing or wrong API key");
        status
            .metadata_mut()
            .insert("x-secret-echo", "do-not-print".parse().unwrap());
        let message = connect_failure(&ClientConnectError::SystemInfoCallError(status));
        assert!(
            message.starts_with("Unauthenticated: missing or wrong API key: check the API key"),
            "{message}"
        );
        assert!(!message.contains("do-not-print"), "{message}");
    }

    #[test]
    fn other_failures_keep_their_reason() {
        let status = tonic::Status::unavailable("the server is draining");
        let message = connect_failure(&ClientConnectError::SystemInfoCallError(status));
        assert_eq!(message, "Unavailable: the server is draining");
    }
}
