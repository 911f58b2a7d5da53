//! A Lambda bootstrap for the end-to-end tests: the greeting sample's registrations plus the
//! test workflows.
//!
//! `TEST_WORKER_DEPLOYMENT` and `TEST_WORKER_BUILD_ID` choose the version it runs as; with
//! `TEST_WORKER_HOOK_FILE` set, a shutdown hook appends the time it ran (epoch milliseconds) to
//! that file. `TEST_WORKER_MISCONFIGURE=no-task-queue` makes a mistake a user could make (no task
//! queue in code or the environment), for the bad-input tests. `TEST_WORKER_BEHAVIORS=mixed`
//! registers the approval workflow as AutoUpgrade and every other one as Pinned (by default all
//! are Pinned). Built with the crate's `otel` feature, it exports traces and metrics (the
//! library's `otel::apply_defaults`) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! `TEST_WORKER_RUNTIME` chooses the Tokio runtime: `current_thread` (the default, so a
//! blocking activity blocks the whole worker) or `multi_thread` (4 worker threads, as
//! `#[tokio::main]` gives on a machine with 4 cores).

use e2e_tests::{
    ApprovalActivities, ApprovalWorkflow, MisbehavingActivities, MisbehavingWorkflow,
    OutOfMemoryWorkflow, OutlivesTimeoutWorkflow, SlowActivities, StepsWorkflow, TimerWorkflow,
};
use temporal_lambda_worker::{Version, VersioningBehavior, run_worker};

fn main() {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let runtime = match var("TEST_WORKER_RUNTIME", "current_thread").as_str() {
        "current_thread" => tokio::runtime::Builder::new_current_thread(),
        "multi_thread" => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(4);
            builder
        }
        other => {
            eprintln!(
                "test-worker: TEST_WORKER_RUNTIME={other}: use current_thread or multi_thread"
            );
            std::process::exit(1);
        }
    }
    .enable_all()
    .build()
    .expect("a Tokio runtime");
    let version = Version::new(
        var("TEST_WORKER_DEPLOYMENT", greeting::DEPLOYMENT_NAME),
        var("TEST_WORKER_BUILD_ID", greeting::BUILD_ID),
    );
    runtime.block_on(run_worker(version, |options| {
        greeting::configure(options)?;
        let mistake = std::env::var("TEST_WORKER_MISCONFIGURE").unwrap_or_default();
        if mistake == "no-task-queue" {
            options.worker.task_queue.clear();
        }
        // The greeting workflow is Pinned, and so is every other but, when mixed, the approval.
        let pinned = VersioningBehavior::Pinned;
        let approval = if std::env::var("TEST_WORKER_BEHAVIORS").as_deref() == Ok("mixed") {
            VersioningBehavior::AutoUpgrade
        } else {
            pinned
        };
        options.register_workflow_with_behavior::<OutlivesTimeoutWorkflow>(pinned)?;
        options.register_workflow_with_behavior::<StepsWorkflow>(pinned)?;
        options.register_workflow_with_behavior::<TimerWorkflow>(pinned)?;
        options.register_workflow_with_behavior::<MisbehavingWorkflow>(pinned)?;
        options.register_workflow_with_behavior::<ApprovalWorkflow>(approval)?;
        options.register_workflow_with_behavior::<OutOfMemoryWorkflow>(pinned)?;
        options.register_activities(SlowActivities);
        options.register_activities(MisbehavingActivities);
        options.register_activities(ApprovalActivities);
        // Built with the `otel` feature (scripts/test), it exports where deployments point it.
        #[cfg(feature = "otel")]
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            temporal_lambda_worker::otel::apply_defaults(options, Default::default())?;
        }
        if let Ok(path) = std::env::var("TEST_WORKER_HOOK_FILE") {
            options.on_shutdown(move |_| {
                let path = path.clone();
                async move { Ok(e2e_tests::append_epoch_ms(&path)?) }
            });
        }
        Ok::<_, temporal_lambda_worker::BoxError>(())
    }));
}
