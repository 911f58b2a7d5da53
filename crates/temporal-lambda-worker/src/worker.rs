//! The entry points: [`run_worker`] and the [`LambdaWorker`] handler it serves.

use std::{
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use futures::{FutureExt, future::LocalBoxFuture};
use lambda_runtime::{LambdaEvent, LambdaInvocation, Service, layers::TracingLayer};
use serde_json::Value;
use temporalio_common::telemetry::TelemetryOptions;
use temporalio_sdk::{Runtime, runtime::RuntimeOptions};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
    time::Instant,
};

use crate::{
    BoxError, Error, InvocationError, InvocationSummary, Options, Version,
    backend::{GatedClient, SdkBackend},
    config, env_settings,
    environment::Environment,
    error::describe,
    invocation::{Warm, invoke},
    logging::init_logging,
    options::Settings,
    secrets,
    timing::SIGTERM_EXIT,
    versioning::BehaviorOverrides,
};

/// Runs a Temporal Worker on AWS Lambda: the whole program of a Lambda `bootstrap`.
///
/// At cold start it loads the client configuration (`temporal.toml`, environment), fills
/// [`Options`] with the Lambda defaults and the `TEMPORAL_LAMBDA_*` variables, calls `configure`
/// once, checks the result, then serves invocations until the Lambda runtime ends. Each
/// invocation connects (or reuses the previous invocation's connection), runs a fresh worker
/// until it is idle ([`Options::idle_exit`]) or `deadline - shutdown_deadline_buffer`, stops
/// it and runs the shutdown hooks.
///
/// A setup error (no task queue, incomplete version, bad config file, not inside Lambda...) is
/// printed to stderr as one line and the process exits with status 1, before any invocation.
///
/// ```no_run
/// use temporal_lambda_worker::{Version, VersioningBehavior, run_worker};
/// # struct Greeting;
/// #[tokio::main]
/// async fn main() {
///     run_worker(Version::new("my-app", "build-1"), |options| {
///         options.default_versioning_behavior(VersioningBehavior::Pinned);
///         // options.register_workflow::<GreetingWorkflow>()?;
///         // options.register_activities(GreetingActivities);
///         Ok(())
///     })
///     .await;
/// }
/// ```
pub async fn run_worker<F>(version: Version, configure: F)
where
    F: FnOnce(&mut Options) -> Result<(), BoxError>,
{
    init_logging();
    let served = match LambdaWorker::new(version, configure) {
        Ok(worker) => worker.serve().await,
        Err(e) => {
            report_init_error(&e).await;
            Err(e)
        }
    };
    if let Err(e) = served {
        eprintln!("temporal-lambda-worker: {}", describe(&e));
        std::process::exit(1);
    }
}

/// The invocation handler: a [`tower::Service`] over [`LambdaEvent`]s.
///
/// Build it with [`LambdaWorker::new`] to add `tower` layers, drive invocations in tests, or run
/// the Lambda runtime yourself; [`LambdaWorker::serve`] runs it as [`run_worker`] does.
/// Each call serves one invocation and responds with an [`InvocationSummary`] (Lambda records it
/// as a JSON object with the same field names): why polling stopped, which connection was used,
/// whether the polls had ended at the server before the worker stopped, how the worker stopped,
/// and the tasks it processed. The event payload is not used.
///
/// Invocations must not overlap (Lambda never overlaps them in one execution environment).
#[derive(Clone)]
pub struct LambdaWorker {
    shared: Arc<Shared>,
}

/// The settings the handler runs with (as [`Options`] shows them: no secrets).
impl std::fmt::Debug for LambdaWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = &self.shared.settings;
        let version = &settings.worker.deployment_options.version;
        f.debug_struct("LambdaWorker")
            .field("task_queue", &settings.worker.task_queue)
            .field("deployment", &version.deployment_name)
            .field("build_id", &version.build_id)
            .field("address", &settings.connection.target.as_str())
            .field("namespace", &settings.client.namespace)
            .field("stop_timeout", &settings.timing.stop_timeout)
            .field("shutdown_deadline_buffer", &settings.timing.buffer)
            .field("idle_exit", &settings.timing.idle_exit)
            .field("reuse_connection", &settings.reuse_connection)
            .finish_non_exhaustive()
    }
}

struct Shared {
    backend: SdkBackend,
    settings: Settings,
    warm: Warm<GatedClient>,
    /// Set when Lambda's SIGTERM arrives (by the listener [`LambdaWorker::serve`] starts).
    sigterm: watch::Sender<Option<Instant>>,
    /// Whether an invocation is being served and not yet answered, so SIGTERM can let it
    /// finish its hooks and post its response ([`UntilAnswered`] keeps it).
    busy: watch::Sender<bool>,
}

impl LambdaWorker {
    /// Loads configuration from the process environment, runs `configure` and checks the
    /// result. Must be called inside a Tokio runtime.
    pub fn new<F>(version: Version, configure: F) -> Result<Self, Error>
    where
        F: FnOnce(&mut Options) -> Result<(), BoxError>,
    {
        let settings = setup(&Environment::from_process(), &version, configure)?;
        let telemetry = TelemetryOptions::builder()
            .maybe_metrics(settings.core_meter.clone())
            .build();
        let runtime_options = RuntimeOptions::builder()
            .telemetry_options(telemetry)
            .build()
            .map_err(|e| Error::Runtime(e.into()))?;
        let runtime =
            Runtime::from_current_tokio(runtime_options).map_err(|e| Error::Runtime(e.into()))?;
        let (sigterm, sigterm_received) = watch::channel(None);
        Ok(Self {
            shared: Arc::new(Shared {
                backend: SdkBackend {
                    runtime,
                    behaviors: Arc::new(BehaviorOverrides::new(&settings.behavior_overrides)),
                },
                settings,
                warm: Warm::new(sigterm_received),
                sigterm,
                busy: watch::Sender::new(false),
            }),
        })
    }

    /// Serves invocations from the Lambda Runtime API until the runtime ends.
    ///
    /// Fails at once, with [`Error::NotInLambda`], outside a Lambda execution environment.
    /// On SIGTERM (Lambda shutting the execution environment down) an invocation in progress
    /// stops its worker at once, runs its shutdown hooks within Lambda's 500 ms, and the process
    /// exits.
    pub async fn serve(self) -> Result<(), Error> {
        check_lambda_environment(&Environment::from_process())?;
        if let Err(e) = self.listen_for_sigterm() {
            report_init_error(&e).await;
            return Err(e);
        }
        let shared = Arc::clone(&self.shared);
        lambda_runtime::Runtime::new(self)
            .layer(TracingLayer::new())
            .layer(tower::layer::layer_fn(move |inner| UntilAnswered {
                inner,
                shared: Arc::clone(&shared),
            }))
            .run()
            .await
            .map_err(Error::LambdaRuntime)
    }
}

impl LambdaWorker {
    fn listen_for_sigterm(&self) -> Result<(), Error> {
        let mut signal = signal(SignalKind::terminate()).map_err(Error::Sigterm)?;
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            signal.recv().await;
            tracing::info!("SIGTERM: Lambda is shutting this execution environment down");
            shared.sigterm.send_replace(Some(Instant::now()));
            let mut busy = shared.busy.subscribe();
            // The invocation cuts its stop and hooks short; the rest of this is for posting its
            // response.
            let answered = busy.wait_for(|busy| !busy);
            let _ = tokio::time::timeout(SIGTERM_EXIT, answered).await;
            std::process::exit(0);
        });
        Ok(())
    }
}

impl Service<LambdaEvent<Value>> for LambdaWorker {
    type Response = InvocationSummary;
    type Error = InvocationError;
    type Future = LocalBoxFuture<'static, Result<InvocationSummary, InvocationError>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<Value>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        async move {
            invoke(
                &shared.backend,
                &shared.settings,
                &shared.warm,
                &event.context,
            )
            .await
        }
        .boxed_local()
    }
}

/// The Lambda runtime's whole service stack around [`LambdaWorker`], holding `busy` from the
/// moment an invocation arrives until its response has been posted: on SIGTERM the process
/// exits once Lambda has the answer, however long posting it takes on a loaded machine.
struct UntilAnswered<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<LambdaInvocation> for UntilAnswered<S>
where
    S: Service<LambdaInvocation, Response = (), Error = lambda_runtime::Error>,
    S::Future: 'static,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    type Future = LocalBoxFuture<'static, Result<(), lambda_runtime::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        invocation.body = payload_or_null(invocation.body);
        self.shared.busy.send_replace(true);
        let answered = self.inner.call(invocation);
        let shared = Arc::clone(&self.shared);
        async move {
            let result = answered.await;
            shared.busy.send_replace(false);
            result
        }
        .boxed_local()
    }
}

/// The payload is not used, so an invoke without one must not fail: Lambda delivers `{}` for
/// it, but AWS's Runtime Interface Emulator delivers an empty body, which is not JSON.
fn payload_or_null(body: bytes::Bytes) -> bytes::Bytes {
    if body.iter().all(u8::is_ascii_whitespace) {
        bytes::Bytes::from_static(b"null")
    } else {
        body
    }
}

/// How long telling Lambda why the cold start failed may take; the process exits next anyway.
const INIT_ERROR_REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Tells Lambda why the cold start failed (`/runtime/init/error`), so that invoking a
/// misconfigured function answers with the reason instead of only "Runtime exited with error".
/// Best effort: without a Runtime API, or when it does not answer in time, the one line on
/// stderr is all there is.
async fn report_init_error(error: &Error) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let Ok(endpoint) = format!("http://{api}").try_into() else {
        return;
    };
    let client = lambda_runtime_api_client::PooledClient::builder()
        .with_endpoint(endpoint)
        .build();
    let body = serde_json::json!({
        "errorType": error.error_type(),
        "errorMessage": describe(error),
    });
    let Ok(request) = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", error.error_type())
        .body(body.to_string().into())
    else {
        return;
    };
    match tokio::time::timeout(INIT_ERROR_REPORT_TIMEOUT, client.call(request)).await {
        Ok(Ok(response)) if response.status().is_success() => {}
        Ok(Ok(response)) => tracing::warn!(
            status = response.status().as_u16(),
            "the Runtime API refused the init error report"
        ),
        Ok(Err(e)) => tracing::warn!(error = %describe(e.as_ref()), "cannot report the init error"),
        Err(_) => tracing::warn!("the Runtime API did not take the init error report in time"),
    }
}

/// Cold-start setup: configuration, `configure`, checks.
pub(crate) fn setup<F>(
    env: &Environment,
    version: &Version,
    configure: F,
) -> Result<Settings, Error>
where
    F: FnOnce(&mut Options) -> Result<(), BoxError>,
{
    let version = version.validate()?;
    let env = &secrets::resolve(env)?;
    let client_config = config::load(env)?;
    if let Some(file) = &client_config.file {
        tracing::info!(file = %file.display(), "loaded Temporal client configuration");
    }
    let task_queue = env
        .get("TEMPORAL_TASK_QUEUE")
        .unwrap_or_default()
        .to_owned();
    let mut options = Options::new(task_queue, version.clone(), client_config);
    env_settings::apply(env, &mut options)?;
    configure(&mut options).map_err(Error::Configure)?;
    let settings = options.into_settings(&version)?;
    // The first thing to compare when Temporal invokes the function but its tasks never arrive:
    // the version the worker polls as must be the one the function is attached to.
    tracing::info!(
        deployment = %version.deployment_name,
        build_id = %version.build_id,
        task_queue = %settings.worker.task_queue,
        "polling as this Worker Deployment Version"
    );
    Ok(settings)
}

/// The variables without which the Lambda runtime cannot start (it would panic on them).
const LAMBDA_VARIABLES: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

fn check_lambda_environment(env: &Environment) -> Result<(), Error> {
    if let Some(missing) = LAMBDA_VARIABLES.into_iter().find(|v| env.get(v).is_none()) {
        return Err(Error::NotInLambda { missing });
    }
    let memory = env
        .get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .unwrap_or_default();
    if memory.parse::<i32>().is_err() {
        return Err(Error::InvalidOptions(format!(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is '{memory}', not a number of megabytes: Lambda sets \
             it; an emulator must set it to the function's memory size"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use temporalio_sdk::runtime::{
        PollerBehavior,
        worker_tuner::{FixedSizeSlotSupplier, SlotSupplier, TunerHolder, WorkerTuner},
    };

    use super::*;
    use crate::{
        VersioningBehavior, defaults,
        test_support::{FirstWorkflow, SampleActivities, SecondWorkflow},
    };

    #[test]
    fn an_invoke_without_payload_is_read_as_null_and_any_other_is_kept() {
        for empty in ["", " \n"] {
            let body = payload_or_null(bytes::Bytes::from(empty));
            assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), Value::Null);
        }
        let body = payload_or_null(bytes::Bytes::from_static(b"[1, \"two\"]"));
        assert_eq!(&body[..], b"[1, \"two\"]");
    }

    fn env() -> (tempfile::TempDir, Environment) {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment {
            cwd: dir.path().to_owned(),
            ..Default::default()
        }
        .with("TEMPORAL_TASK_QUEUE", "from-env");
        (dir, env)
    }

    fn version() -> Version {
        Version::new("app", "b1")
    }

    fn pinned(options: &mut Options) -> Result<(), BoxError> {
        options.register_workflow_with_behavior::<FirstWorkflow>(VersioningBehavior::Pinned)?;
        options.register_activities(SampleActivities);
        Ok(())
    }

    fn setup_err(
        env: &Environment,
        version: &Version,
        configure: impl FnOnce(&mut Options) -> Result<(), BoxError>,
    ) -> Error {
        match setup(env, version, configure) {
            Err(e) => e,
            Ok(_) => panic!("expected a setup error"),
        }
    }

    fn slots(tuner: &WorkerTuner) -> [usize; 4] {
        let WorkerTuner::TunerHolder(holder) = tuner else {
            panic!("expected fixed-size slots")
        };
        let fixed = |supplier: &SlotSupplier| match supplier {
            SlotSupplier::FixedSize(FixedSizeSlotSupplier { num_slots, .. }) => *num_slots,
            other => panic!("expected a fixed-size supplier, got {other:?}"),
        };
        [
            fixed(&holder.workflow_task_slot_supplier),
            fixed(&holder.activity_task_slot_supplier),
            fixed(&holder.local_activity_task_slot_supplier),
            fixed(&holder.nexus_task_slot_supplier),
        ]
    }

    #[test]
    fn every_lambda_default_is_applied() {
        let (_dir, env) = env();
        let settings = setup(&env, &version(), pinned).unwrap();
        let worker = &settings.worker;
        // workflow tasks, activities, local activities, Nexus tasks
        assert_eq!(slots(&worker.tuner), [10, 2, 2, 5]);
        assert_eq!(
            worker.workflow_task_poller_behavior,
            Some(PollerBehavior::SimpleMaximum(2))
        );
        assert_eq!(
            worker.activity_task_poller_behavior,
            Some(PollerBehavior::SimpleMaximum(1))
        );
        assert_eq!(
            worker.nexus_task_poller_behavior,
            Some(PollerBehavior::SimpleMaximum(1))
        );
        assert_eq!(
            worker.graceful_shutdown_period,
            Some(Duration::from_secs(5))
        );
        assert_eq!(settings.timing.stop_timeout, Duration::from_secs(5));
        assert_eq!(worker.max_eager_activity_reservations_per_workflow_task, 0);
        assert_eq!(worker.max_cached_workflows, 100);
        assert_eq!(
            worker.sticky_queue_schedule_to_start_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(settings.timing.buffer, Duration::from_secs(7));
        assert_eq!(settings.timing.idle_exit, Some(Duration::from_secs(1)));
        assert!(settings.reuse_connection);
        assert!(worker.deployment_options.use_worker_versioning);
        assert_eq!(worker.deployment_options.version.deployment_name, "app");
        assert_eq!(worker.deployment_options.version.build_id, "b1");
        assert_eq!(
            worker.deployment_options.default_versioning_behavior,
            Some(VersioningBehavior::Pinned)
        );
        assert_eq!(worker.task_queue, "from-env");
        assert_eq!(worker.client_identity_override, None);
    }

    #[test]
    fn debug_output_shows_the_settings_but_never_the_api_key() {
        let (_dir, env) = env();
        let env = env.with("TEMPORAL_API_KEY", "secret-key-123");
        let mut shown = String::new();
        setup(&env, &version(), |options| {
            pinned(options)?;
            shown = format!("{options:?}");
            Ok::<_, BoxError>(())
        })
        .unwrap();
        assert!(shown.contains("task_queue: \"from-env\""), "{shown}");
        assert!(shown.contains("api_key: Some(\"<set>\")"), "{shown}");
        assert!(!shown.contains("secret-key-123"), "{shown}");
    }

    #[test]
    fn user_values_win_except_eager_activities() {
        let (_dir, env) = env();
        let settings = setup(&env, &version(), |options| {
            pinned(options)?;
            options.task_queue("from-code");
            options.worker.max_cached_workflows = 7;
            options.worker.tuner = TunerHolder::builder()
                .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(3))
                .activity_task_slot_supplier(FixedSizeSlotSupplier::new(4))
                .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(5))
                .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(6))
                .build()
                .into();
            options.worker.activity_task_poller_behavior = Some(PollerBehavior::SimpleMaximum(3));
            options.worker.graceful_shutdown_period = Some(Duration::from_secs(20));
            options.shutdown_deadline_buffer = Some(Duration::from_secs(25));
            options
                .worker
                .max_eager_activity_reservations_per_workflow_task = 3;
            options.client.namespace = "from-code".to_owned();
            Ok::<_, BoxError>(())
        })
        .unwrap();
        assert_eq!(settings.worker.task_queue, "from-code");
        assert_eq!(settings.worker.max_cached_workflows, 7);
        assert_eq!(slots(&settings.worker.tuner), [3, 4, 5, 6]);
        assert_eq!(
            settings.worker.activity_task_poller_behavior,
            Some(PollerBehavior::SimpleMaximum(3))
        );
        assert_eq!(settings.timing.stop_timeout, Duration::from_secs(20));
        assert_eq!(settings.timing.buffer, Duration::from_secs(25));
        assert_eq!(settings.client.namespace, "from-code");
        assert_eq!(
            settings
                .worker
                .max_eager_activity_reservations_per_workflow_task,
            defaults::EAGER_ACTIVITY_RESERVATIONS
        );
    }

    #[test]
    fn missing_task_queue_is_a_setup_error() {
        let (_dir, mut env) = env();
        env.vars.remove("TEMPORAL_TASK_QUEUE");
        let err = setup_err(&env, &version(), pinned);
        assert!(matches!(err, Error::MissingTaskQueue));
        assert!(err.to_string().contains("TEMPORAL_TASK_QUEUE"));
    }

    #[test]
    fn missing_or_partial_version_is_a_setup_error() {
        let (_dir, env) = env();
        for version in [
            Version::new("", ""),
            Version::new("app", ""),
            Version::new("", "b1"),
        ] {
            assert!(matches!(
                setup_err(&env, &version, pinned),
                Error::InvalidVersion(_)
            ));
        }
    }

    #[test]
    fn the_version_and_versioning_cannot_be_changed_in_configure() {
        let (_dir, env) = env();
        let err = setup_err(&env, &version(), |options| {
            pinned(options)?;
            options.worker.deployment_options.version.build_id = "other".to_owned();
            Ok(())
        });
        assert!(err.to_string().contains("passed to run_worker"), "{err}");
        let err = setup_err(&env, &version(), |options| {
            pinned(options)?;
            options.worker.deployment_options.use_worker_versioning = false;
            Ok(())
        });
        assert!(err.to_string().contains("always versioned"), "{err}");
    }

    #[test]
    fn configure_errors_are_reported() {
        let (_dir, env) = env();
        let err = setup_err(&env, &version(), |_| Err("database URL missing".into()));
        assert!(matches!(err, Error::Configure(_)));
        assert_eq!(describe(&err), "configure failed: database URL missing");
        // A registration error returned with `?` from configure, too.
        let err = setup_err(&env, &version(), |options| {
            options.register_workflow::<FirstWorkflow>()?;
            options.register_workflow::<FirstWorkflow>()?;
            Ok(())
        });
        let message = describe(&err);
        assert!(message.contains("FirstWorkflow"), "{message}");
    }

    #[test]
    fn config_load_errors_stop_setup_before_configure() {
        let (dir, env) = env();
        std::fs::write(dir.path().join("temporal.toml"), "not = [toml").unwrap();
        let mut called = false;
        let err = match setup(&env, &version(), |_| {
            called = true;
            Ok::<_, BoxError>(())
        }) {
            Err(e) => e,
            Ok(_) => panic!("expected a config error"),
        };
        assert!(matches!(err, Error::ConfigFile { .. }), "{err}");
        assert!(!called);
    }

    #[test]
    fn versioning_behaviours_are_checked_at_setup() {
        let (_dir, env) = env();
        let err = setup_err(&env, &version(), |options| {
            options.register_workflow::<FirstWorkflow>()?;
            Ok(())
        });
        assert!(matches!(err, Error::Versioning(_)), "{err}");
        // A mix: Pinned (the tie's default) for the worker, AutoUpgrade set for the other.
        let settings = setup(&env, &version(), |options| {
            options.register_workflow_with_behavior::<FirstWorkflow>(VersioningBehavior::Pinned)?;
            options.register_workflow_with_behavior::<SecondWorkflow>(
                VersioningBehavior::AutoUpgrade,
            )?;
            Ok::<_, BoxError>(())
        })
        .unwrap();
        let default_of = |settings: &Settings| {
            settings
                .worker
                .deployment_options
                .default_versioning_behavior
        };
        assert_eq!(default_of(&settings), Some(VersioningBehavior::Pinned));
        assert_eq!(
            settings.behavior_overrides.values().collect::<Vec<_>>(),
            [&VersioningBehavior::AutoUpgrade]
        );
        // A workflow registered on the SDK options directly is covered by the default.
        let settings = setup(&env, &version(), |options| {
            options.worker.register_workflow::<SecondWorkflow>()?;
            options.default_versioning_behavior(VersioningBehavior::AutoUpgrade);
            Ok::<_, BoxError>(())
        })
        .unwrap();
        assert_eq!(default_of(&settings), Some(VersioningBehavior::AutoUpgrade));
    }

    #[test]
    fn buffer_must_leave_room_beyond_the_stop_timeout() {
        let (_dir, env) = env();
        for (stop, buffer) in [(5, 5), (5, 3), (10, 7), (0, 0)] {
            let err = setup_err(&env, &version(), |options| {
                pinned(options)?;
                options.worker.graceful_shutdown_period = Some(Duration::from_secs(stop));
                options.shutdown_deadline_buffer = Some(Duration::from_secs(buffer));
                Ok(())
            });
            assert!(
                err.to_string().contains("shutdown_deadline_buffer"),
                "{err}"
            );
        }
        let err = setup_err(&env, &version(), |options| {
            pinned(options)?;
            options.worker.graceful_shutdown_period = None;
            Ok(())
        });
        assert!(
            err.to_string().contains("graceful_shutdown_period"),
            "{err}"
        );
    }

    #[test]
    fn outside_lambda_the_missing_variable_is_named() {
        let (_dir, env) = env();
        let err = check_lambda_environment(&env).unwrap_err();
        assert!(matches!(
            err,
            Error::NotInLambda {
                missing: "AWS_LAMBDA_RUNTIME_API"
            }
        ));
        assert!(err.to_string().contains("lambda-local"), "{err}");
        let env = env
            .with("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
            .with("AWS_LAMBDA_FUNCTION_NAME", "f")
            .with("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots");
        assert!(
            check_lambda_environment(&env)
                .unwrap_err()
                .to_string()
                .contains("'lots'")
        );
        let env = env.with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
        assert!(check_lambda_environment(&env).is_ok());
    }
}
