//! The Lambda `bootstrap` the benchmark deploys for the Rust implementation: `greeting-worker`
//! with one difference, the same as in every peer: `BENCH_DEPLOYMENT` and `BENCH_BUILD_ID` name
//! the Worker Deployment Version, so the harness can give each implementation (and each variant
//! of ours, such as one with idle exit switched on through the environment) its own.

use temporal_lambda_worker::{Version, run_worker};

#[tokio::main]
async fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // An empty part is refused by run_worker with a clear message, as a missing one should be.
    let version = Version::new(var("BENCH_DEPLOYMENT"), var("BENCH_BUILD_ID"));
    run_worker(version, greeting::configure).await;
}
