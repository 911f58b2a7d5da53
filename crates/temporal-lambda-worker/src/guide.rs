//! The long-form documentation: the pages of this crate's `docs/` folder, one module each.
//!
//! - [`lifecycle`]: deadlines, the buffer, long activities, warm invocations, the idle exit,
//!   SIGTERM;
//! - [`failures`]: what a stop guarantees, what happens when the server, the network, an
//!   activity or the environment fails, and the load figures;
//! - [`troubleshooting`]: every setup error, the line it prints, and the fix;
//! - [`observability`]: logs, and metrics and traces with the `otel` feature;
//! - [`security`]: TLS, API keys, mTLS, secrets in logs, dependency checks;
//! - [`api`]: the API in one page, and what each invocation answers.
//!
//! The pages refer to each other by name ("the lifecycle page", "the failure behaviour page").

#[doc = include_str!("../docs/LIFECYCLE.md")]
pub mod lifecycle {}

#[doc = include_str!("../docs/FAILURES.md")]
pub mod failures {}

#[doc = include_str!("../docs/TROUBLESHOOTING.md")]
pub mod troubleshooting {}

#[doc = include_str!("../docs/OBSERVABILITY.md")]
pub mod observability {}

#[doc = include_str!("../docs/SECURITY.md")]
pub mod security {}

#[doc = include_str!("../docs/API.md")]
pub mod api {}
