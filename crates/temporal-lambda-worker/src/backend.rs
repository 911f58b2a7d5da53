//! The seam between the invocation lifecycle and its side effects: the clock, connecting to
//! Temporal, and creating and running a Worker. [`SdkBackend`] is the real one; the unit tests
//! substitute a scripted one to reach every branch of the lifecycle without a server.

use std::{future::Future, sync::Arc, time::SystemTime};

use temporalio_client::{Client, ClientOptions, ConnectionOptions, tonic};
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
            .map_err(|e| describe(&e))
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
