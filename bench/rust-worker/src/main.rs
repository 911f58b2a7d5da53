//! The Lambda `bootstrap` the benchmark deploys for the Rust implementation: `greeting-worker`
//! plus the approval and fan-out workloads ([`workloads`]), with one difference, the same as in
//! every peer: `BENCH_DEPLOYMENT` and `BENCH_BUILD_ID` name the Worker Deployment Version, so the
//! harness can give each implementation (and each variant of ours, such as one with idle exit
//! switched on through the environment) its own.
//!
//! `BENCH_BEHAVIORS=mixed` (the `rust-mixed` variant) measures what per-workflow versioning
//! behaviours cost: the worker default becomes AutoUpgrade while the greeting workflow stays
//! Pinned, so every one of its workflow tasks goes through the override (its poll response read,
//! its completion rewritten) and the histories are those of the default run.

use temporal_lambda_worker::{Version, VersioningBehavior, run_worker};

mod workloads;

#[tokio::main]
async fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // An empty part is refused by run_worker with a clear message, as a missing one should be.
    let version = Version::new(var("BENCH_DEPLOYMENT"), var("BENCH_BUILD_ID"));
    let mixed = match var("BENCH_BEHAVIORS").as_str() {
        "" => false,
        "mixed" => true,
        other => {
            eprintln!("bench-rust-worker: BENCH_BEHAVIORS={other}: use mixed, or leave it unset");
            std::process::exit(2);
        }
    };
    run_worker(version, move |options| {
        greeting::configure(options)?;
        workloads::configure(options)?;
        if mixed {
            options.default_versioning_behavior(VersioningBehavior::AutoUpgrade);
        }
        Ok::<_, temporal_lambda_worker::BoxError>(())
    })
    .await;
}
