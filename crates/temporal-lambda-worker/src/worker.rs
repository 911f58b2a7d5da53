//! The entry points: [`run_worker`] and the [`LambdaWorker`] handler it serves.

use std::{
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use futures::{FutureExt, future::LocalBoxFuture};
use lambda_runtime::{LambdaEvent, Service};
use serde_json::Value;
use temporalio_sdk::{Runtime, runtime::RuntimeOptions};

use crate::{
    BoxError, Error, InvocationError, Options, Version,
    backend::SdkBackend,
    config,
    environment::Environment,
    error::describe,
    invocation::invoke,
    logging::init_logging,
    options::Settings,
};

/// Runs a Temporal Worker on AWS Lambda: the whole program of a Lambda `bootstrap`.
///
/// At cold start it loads the client configuration (`temporal.toml`, environment), fills
/// [`Options`] with the Lambda defaults, calls `configure` once, checks the result, then serves
/// invocations until the Lambda runtime ends. Each invocation connects, runs a fresh worker until
/// `deadline - shutdown_deadline_buffer`, stops it and runs the shutdown hooks.
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
///         Ok::<_, temporal_lambda_worker::BoxError>(())
///     })
///     .await;
/// }
/// ```
pub async fn run_worker<F, E>(version: Version, configure: F)
where
    F: FnOnce(&mut Options) -> Result<(), E>,
    E: Into<BoxError>,
{
    init_logging();
    let served = match LambdaWorker::new(version, configure) {
        Ok(worker) => worker.serve().await,
        Err(e) => Err(e),
    };
    if let Err(e) = served {
        eprintln!("temporal-lambda-worker: {e}");
        std::process::exit(1);
    }
}

/// The invocation handler: a [`tower::Service`] over [`LambdaEvent`]s.
///
/// Build it with [`LambdaWorker::new`] to add `tower` layers, drive invocations in tests, or run
/// the Lambda runtime yourself; [`LambdaWorker::serve`] runs it as [`run_worker`] does.
/// Each call serves one invocation and responds with a small JSON summary
/// (`identity`, `shutdown`, `stop_ms`). The event payload is not used.
///
/// Invocations must not overlap (Lambda never overlaps them in one execution environment).
#[derive(Clone)]
pub struct LambdaWorker {
    shared: Arc<Shared>,
}

struct Shared {
    backend: SdkBackend,
    settings: Settings,
}

impl LambdaWorker {
    /// Loads configuration from the process environment, runs `configure` and checks the
    /// result. Must be called inside a Tokio runtime.
    pub fn new<F, E>(version: Version, configure: F) -> Result<Self, Error>
    where
        F: FnOnce(&mut Options) -> Result<(), E>,
        E: Into<BoxError>,
    {
        let settings = setup(&Environment::from_process(), &version, configure)?;
        let runtime = Runtime::from_current_tokio(RuntimeOptions::default())
            .map_err(|e| Error::Runtime(describe(&e)))?;
        Ok(Self {
            shared: Arc::new(Shared {
                backend: SdkBackend { runtime },
                settings,
            }),
        })
    }

    /// Serves invocations from the Lambda Runtime API until the runtime ends.
    ///
    /// Fails at once, with [`Error::NotInLambda`], outside a Lambda execution environment.
    pub async fn serve(self) -> Result<(), Error> {
        check_lambda_environment(&Environment::from_process())?;
        lambda_runtime::run(self)
            .await
            .map_err(|e| Error::LambdaRuntime(describe(e.as_ref())))
    }
}

impl Service<LambdaEvent<Value>> for LambdaWorker {
    type Response = Value;
    type Error = InvocationError;
    type Future = LocalBoxFuture<'static, Result<Value, InvocationError>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<Value>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        async move {
            let summary = invoke(&shared.backend, &shared.settings, &event.context).await?;
            Ok(serde_json::to_value(summary).unwrap_or_default())
        }
        .boxed_local()
    }
}

/// Cold-start setup: configuration, `configure`, checks.
pub(crate) fn setup<F, E>(env: &Environment, version: &Version, configure: F) -> Result<Settings, Error>
where
    F: FnOnce(&mut Options) -> Result<(), E>,
    E: Into<BoxError>,
{
    let version = version.validate()?;
    let client_config = config::load(env)?;
    if let Some(file) = &client_config.file {
        tracing::info!(file = %file.display(), "loaded Temporal client configuration");
    }
    let task_queue = env.get("TEMPORAL_TASK_QUEUE").unwrap_or_default().to_owned();
    let mut options = Options::new(task_queue, version.clone(), client_config);
    configure(&mut options).map_err(|e| Error::Configure(e.into()))?;
    options.into_settings(&version)
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
    let memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if memory.parse::<i32>().is_err() {
        return Err(Error::InvalidOptions(format!(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is '{memory}', not a number of megabytes: Lambda sets \
             it; an emulator must set it to the function's memory size"
        )));
    }
    Ok(())
}
