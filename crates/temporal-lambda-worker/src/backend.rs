//! The seam between the invocation lifecycle and its side effects: the clock, connecting to
//! Temporal, and creating and running a Worker. [`SdkBackend`] is the real one; the unit tests
//! substitute a scripted one to reach every branch of the lifecycle without a server.

use std::{future::Future, sync::Arc, time::SystemTime};

use temporalio_client::{
    Client, ClientOptions, ConnectionOptions, errors::ClientConnectError, tonic,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::GetSystemInfoRequest;
use temporalio_sdk::{Runtime, Worker, WorkerOptions, WorkerRunError};

use crate::{InvocationError, error::describe, task_count::TaskCount};

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

/// What the lifecycle needs of a worker.
pub(crate) trait PollingWorker {
    /// The tasks this worker has seen so far.
    fn tasks(&self) -> Arc<TaskCount>;
    /// A function that asks the worker to stop polling and drain.
    fn shutdown_handle(&self) -> Box<dyn Fn()>;
    /// Polls and processes tasks until stopped, or fails.
    fn run(&mut self) -> impl Future<Output = Result<(), InvocationError>>;
}

/// The real backend: the Temporal Rust SDK, on one SDK runtime shared by all invocations.
pub(crate) struct SdkBackend {
    pub(crate) runtime: Runtime,
}

/// An SDK worker with interceptors that count its tasks.
pub(crate) struct SdkWorker {
    worker: Worker,
    tasks: Arc<TaskCount>,
}

impl Backend for SdkBackend {
    type Client = Client;
    type Worker = SdkWorker;

    async fn connect(
        &self,
        connection: ConnectionOptions,
        client: ClientOptions,
    ) -> Result<Client, String> {
        Client::connect(connection, client)
            .await
            .map_err(|e| connect_failure(&e))
    }

    async fn check(&self, client: &Client) -> Result<(), String> {
        let request = tonic::Request::new(GetSystemInfoRequest::default());
        client
            .connection()
            .workflow_service()
            .get_system_info(request)
            .await
            .map(drop)
            .map_err(|status| status.message().to_owned())
    }

    fn create_worker(
        &self,
        client: Client,
        mut options: WorkerOptions,
    ) -> Result<SdkWorker, InvocationError> {
        let tasks = TaskCount::attach(&mut options);
        let worker = Worker::new(&self.runtime, client, options)
            .map_err(|e| InvocationError::WorkerStart(describe(&e)))?;
        Ok(SdkWorker { worker, tasks })
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

impl PollingWorker for SdkWorker {
    fn tasks(&self) -> Arc<TaskCount> {
        Arc::clone(&self.tasks)
    }

    fn shutdown_handle(&self) -> Box<dyn Fn()> {
        Box::new(self.worker.shutdown_handle())
    }

    async fn run(&mut self) -> Result<(), InvocationError> {
        self.worker.run().await.map_err(|e| match e {
            // Validation is the worker's check-in with the namespace before it polls.
            e @ WorkerRunError::Validation(_) => InvocationError::WorkerStart(describe(&e)),
            e => InvocationError::WorkerFailed(describe(&e)),
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
