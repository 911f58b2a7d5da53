//! The long-form documentation, the same texts as this crate's `docs/` folder: how an
//! invocation runs, what happens when something fails, every setup error with its fix,
//! observability and security. (Links between the pages work on GitHub; here, use the list
//! below.)

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
