#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! Run [Temporal](https://temporal.io) Workers on AWS Lambda.
//!
//! Temporal's Serverless Workers: when tasks arrive on a task queue with no poller, Temporal
//! invokes a Lambda function. Each invocation of a function built with this crate starts a
//! Worker, polls until its work is done (1 s with nothing in flight, the idle exit) or shortly
//! before the invocation deadline, stops the Worker gracefully and returns in time. It is the
//! Rust counterpart of the Go SDK's `lambdaworker`.
//!
//! ```no_run
//! use temporal_lambda_worker::{Version, VersioningBehavior, run_worker};
//!
//! #[tokio::main]
//! async fn main() {
//!     run_worker(Version::new("my-app", "build-1"), |options| {
//!         options.default_versioning_behavior(VersioningBehavior::Pinned);
//!         // options.register_workflow::<MyWorkflow>()?;
//!         // options.register_activities(MyActivities);
//!         options.on_shutdown(|_| async { Ok(()) });
//!         Ok(())
//!     })
//!     .await;
//! }
//! ```
//!
//! - Configuration: [`Options`] arrives pre-filled with the Lambda [`defaults`], the task queue
//!   from `TEMPORAL_TASK_QUEUE`, and the client configuration from `temporal.toml` and
//!   Temporal's `TEMPORAL_*` environment variables ([`CONFIG_FILE_NAME`] says where it is found).
//! - Versioning is always on: every workflow needs Pinned or AutoUpgrade
//!   ([`Options::register_workflow_with_behavior`], [`Options::default_versioning_behavior`]).
//! - Deadlines: polling stops at `deadline - shutdown_deadline_buffer`; the worker then drains
//!   for at most its stop timeout, and a hard bound returns the invocation before its deadline
//!   even when an activity ignores cancellation. Shutdown hooks run last.
//! - Warm invocations keep the connection (checked before each reuse); SIGTERM stops an
//!   invocation in progress within Lambda's 500 ms; an idle exit can end an invocation early.
//!   `TEMPORAL_LAMBDA_*` variables ([`SHUTDOWN_BUFFER_VAR`], [`STOP_TIMEOUT_VAR`],
//!   [`IDLE_EXIT_VAR`], [`IDLE_LOOKAHEAD_VAR`], [`REUSE_CONNECTION_VAR`]) tune these without a
//!   rebuild. The rules and their trade-offs: [`guide::lifecycle`].
//! - [`LambdaWorker`] is the handler as a `tower::Service`, for layers and tests.
//! - The long-form documentation is in [`guide`]; the timing rules in [`timing`].
//!
//! # Dependencies of a worker crate
//!
//! The SDK's macros expand to paths in `temporalio_sdk`, `temporalio_common`,
//! `temporalio_workflow` and `futures`, so a crate that defines workflows or activities depends
//! on those directly, alongside `temporalio-macros` and `tokio`. The greeting sample's
//! `Cargo.toml` is the minimal list.
//!
//! # Cargo features
//!
//! - `otel`: OpenTelemetry metrics and traces over OTLP/gRPC for the AWS Distro for
//!   OpenTelemetry layer (module `otel`). Off by default; it adds nothing to builds without it.

mod backend;
mod config;
pub mod defaults;
mod env_settings;
mod environment;
mod error;
pub mod guide;
mod invocation;
mod logging;
mod options;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;
mod polls;
mod secrets;
mod summary;
mod task_count;
#[cfg(test)]
mod test_support;
pub mod timing;
mod versioning;
mod worker;

pub use config::CONFIG_FILE_NAME;
pub use env_settings::{
    IDLE_EXIT_VAR, IDLE_LOOKAHEAD_VAR, REUSE_CONNECTION_VAR, SHUTDOWN_BUFFER_VAR, STOP_TIMEOUT_VAR,
};
pub use error::{BoxError, Error, InvocationError};

pub use logging::init_logging;
pub use options::{Options, ShutdownContext, Version, VersioningBehavior};
pub use polls::POLL_DEADLINE;
pub use summary::{Connection, InvocationSummary, StoppedBy, WorkerShutdown};
pub use timing::{IDLE_EXIT_FIRST_TASK_WAIT, LOW_WORK_TIME, MIN_WORK_TIME};
pub use worker::{LambdaWorker, run_worker};

/// The Lambda runtime this crate serves through, re-exported for its `Context` and `LambdaEvent`.
pub use lambda_runtime;
/// The Temporal client crate, re-exported for the types in [`Options`].
pub use temporalio_client as client;
/// The Temporal SDK crate, re-exported for the types in [`Options`].
pub use temporalio_sdk as sdk;
