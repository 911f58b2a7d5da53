#![warn(missing_docs)]
//! A local AWS Lambda environment for Temporal Serverless Workers.
//!
//! It serves, on loopback, what Temporal's Worker Controller and a Lambda function talk to:
//! the Lambda `Invoke` and `GetFunction` APIs, STS `AssumeRole` (enforcing the external id), and
//! one Lambda Runtime API per execution environment; and, recorded, the X-Ray and CloudWatch Logs
//! calls an ADOT collector's exporters make. Execution environments follow Lambda's
//! lifecycle: cold start on first use, warm reuse, frozen (SIGSTOP) between invocations, killed at
//! the timeout, at most `concurrency` at once with asynchronous events queued. Each environment
//! gets its function's CPU share and memory limit, as on Lambda (cgroup v1, as root). Every invocation
//! prints a `REPORT` line and leaves an [`InvocationRecord`]; every line a function writes is kept
//! in its log ([`LocalLambda::logs`]).
//!
//! [`temporal`] starts the Temporal dev server with its Worker Controller pointed here (the
//! `lambda-local demo` command runs the greeting sample end to end with both).

mod arn;
pub mod config;
mod lambda_api;
mod limits;
pub mod logs;
mod pool;
mod record;
mod runtime_api;
mod sandbox;
mod secrets_extension;
mod server;
mod sts;
mod telemetry_apis;
pub mod temporal;

pub use config::{Config, FunctionConfig, RoleConfig};
pub use limits::{Limits, MB_PER_VCPU, cpu_share};
pub use logs::{LogLine, LogSource};
pub use pool::{Retirement, SHUTDOWN_LIMIT};
pub use record::{InvocationRecord, Outcome};
pub use server::{Error, LocalLambda};
pub use telemetry_apis::{CloudWatchLogEvent, TraceSegment};
