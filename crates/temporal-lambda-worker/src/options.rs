//! What `configure` receives: [`Options`], pre-filled with the Lambda defaults, and the checks
//! that turn it into the settings every invocation uses.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;

use futures::{FutureExt, future::LocalBoxFuture};
use temporalio_client::{ClientOptions, ConnectionOptions};
use temporalio_common::{
    WorkflowDefinition, telemetry::metrics::CoreMeter, worker::WorkerDeploymentVersion,
};
use temporalio_sdk::{WorkerOptions, WorkflowRegistrationError, activities::ActivityImplementer};
use temporalio_workflow::workflows::WorkflowImplementation;

use crate::{BoxError, Error, StoppedBy, config::ClientConfig, defaults, timing::Timing};

pub use temporalio_common::worker::VersioningBehavior;

/// The Worker Deployment Version this binary runs as: the deployment's name and this build's id.
///
/// Both must be non-empty. Temporal routes tasks, and invokes the function, per version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The Worker Deployment's name, for example `my-app`.
    pub deployment_name: String,
    /// This build's id, for example `build-1` or a git commit.
    pub build_id: String,
}

impl Version {
    /// A version from a deployment name and a build id.
    pub fn new(deployment_name: impl Into<String>, build_id: impl Into<String>) -> Self {
        Self {
            deployment_name: deployment_name.into(),
            build_id: build_id.into(),
        }
    }

    pub(crate) fn validate(&self) -> Result<WorkerDeploymentVersion, Error> {
        let missing = match (
            self.deployment_name.trim().is_empty(),
            self.build_id.trim().is_empty(),
        ) {
            (false, false) => None,
            (true, false) => Some("the deployment name is empty"),
            (false, true) => Some("the build id is empty"),
            (true, true) => Some("the deployment name and the build id are empty"),
        };
        if let Some(missing) = missing {
            return Err(Error::InvalidVersion(format!(
                "{missing}: pass both to run_worker, for example Version::new(\"my-app\", \"build-1\")"
            )));
        }
        Ok(WorkerDeploymentVersion::builder()
            .deployment_name(self.deployment_name.clone())
            .build_id(self.build_id.clone())
            .build())
    }
}

type HookFuture = LocalBoxFuture<'static, Result<(), BoxError>>;
pub(crate) type ShutdownHook = Arc<dyn Fn(ShutdownContext) -> HookFuture + Send + Sync>;

/// What a shutdown hook ([`Options::on_shutdown`]) is told about the invocation that is ending.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ShutdownContext {
    /// Why the worker stopped polling; `None` when the invocation failed before or while
    /// polling (for example, Temporal could not be reached).
    pub stopped_by: Option<StoppedBy>,
    /// When the hook is cut off: shortly before the invocation's deadline, or sooner once
    /// Lambda's SIGTERM has arrived (as it was when the hook started).
    pub cut_off_at: Instant,
}

impl ShutdownContext {
    /// The time this hook has left before it is cut off.
    pub fn time_left(&self) -> Duration {
        self.cut_off_at.saturating_duration_since(Instant::now())
    }
}

/// Everything `configure` may change, pre-filled before it runs.
///
/// - `worker`: the SDK's [`WorkerOptions`] with the Lambda defaults (see [`crate::defaults`]),
///   the task queue from `TEMPORAL_TASK_QUEUE`, and this [`Version`] with versioning on.
///   Set any field; your values win, except eager activities, which stay disabled.
/// - `connection` and `client`: loaded from `temporal.toml` and the environment.
/// - `shutdown_deadline_buffer`: time reserved at the end of each invocation (unset: the stop
///   timeout + 2 s).
/// - `idle_exit` (1 s), `idle_exit_lookahead` (2 s) and `reuse_connection` (on): see their
///   fields.
///
/// Before `configure` runs, the `TEMPORAL_LAMBDA_*` variables of the function's environment are
/// applied ([`crate::SHUTDOWN_BUFFER_VAR`], [`crate::STOP_TIMEOUT_VAR`], [`crate::IDLE_EXIT_VAR`],
/// [`crate::IDLE_LOOKAHEAD_VAR`], [`crate::REUSE_CONNECTION_VAR`]), so a deployment can tune these without a rebuild while
/// values set in code still win.
///
/// Register workflows through [`Options::register_workflow`] or
/// [`Options::register_workflow_with_behavior`] so their versioning behaviour is known, and
/// activities through [`Options::register_activities`] (or `worker` directly).
pub struct Options {
    /// Worker options. The task queue is `worker.task_queue`; the worker's stop timeout is
    /// `worker.graceful_shutdown_period`.
    pub worker: WorkerOptions,
    /// How to reach the Temporal server: address, TLS, API key, gRPC metadata.
    pub connection: ConnectionOptions,
    /// Client options: namespace, data converter.
    pub client: ClientOptions,
    /// Time reserved before the invocation deadline for the worker's last polls to end at the
    /// server and come back (2 s: up to [`crate::POLL_DEADLINE`] − 1 s there, 0.5 s for the
    /// way), for it to stop (its stop timeout and 0.5 s of grace) and for shutdown hooks to run.
    /// Polling ends at `deadline - shutdown_deadline_buffer`, or earlier by what the last polls
    /// need beyond the room the buffer leaves them (1 s with the defaults).
    ///
    /// `None` (the default): the stop timeout +
    /// [`defaults::SHUTDOWN_DEADLINE_BUFFER_BEYOND_STOP_TIMEOUT`] (2 s), so raising the stop
    /// timeout alone raises the buffer with it. A buffer you set must exceed the stop timeout by
    /// at least 1 s.
    pub shutdown_deadline_buffer: Option<Duration>,
    /// End an invocation early once its worker has had no task in flight for this long, so an
    /// invocation that finished its work stops billing. Default: [`defaults::IDLE_EXIT`]
    /// (1 s). `None`: poll until `deadline - shutdown_deadline_buffer`, as the other SDKs'
    /// Lambda workers do. Trade-off: tasks arriving later need a new invocation (and the
    /// workflows cached in this worker are replayed there), so raise it for workflows that wait
    /// on timers or signals a little longer than the period.
    pub idle_exit: Option<Duration>,
    /// Before an idle exit, look this far ahead for work that is due: a timer one of the
    /// worker's cached workflows started, or the retry of an activity attempt it ran that
    /// failed. When such work is due within the lookahead (and before polling stops), the
    /// invocation stays until it has come, so a short timer is served from the cache instead of
    /// by a new invocation that replays the history; waits longer than the lookahead still stop
    /// billing. Signals and other outside events cannot be foreseen. Default:
    /// [`defaults::IDLE_EXIT_LOOKAHEAD`] (2 s). `None`: the idle exit looks at nothing but the
    /// tasks in flight.
    pub idle_exit_lookahead: Option<Duration>,
    /// Keep the connection to Temporal from one invocation to the next in the same execution
    /// environment (default `true`). A kept connection is checked with one short request before
    /// it is used and replaced when the check fails, so a connection that died while the
    /// environment was frozen costs at most a one-second check.
    pub reuse_connection: bool,
    explicit_behaviors: Vec<(String, VersioningBehavior)>,
    hooks: Vec<ShutdownHook>,
    /// Records the SDK's worker metrics (set by the `otel` feature).
    pub(crate) core_meter: Option<Arc<dyn CoreMeter>>,
}

/// What a log line or a test failure may show: no API key, no TLS material, no header values.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = &self.worker.deployment_options.version;
        f.debug_struct("Options")
            .field("task_queue", &self.worker.task_queue)
            .field("deployment", &version.deployment_name)
            .field("build_id", &version.build_id)
            .field("address", &self.connection.target.as_str())
            .field("namespace", &self.client.namespace)
            .field(
                "api_key",
                &self.connection.api_key.as_ref().map(|_| "<set>"),
            )
            .field("tls", &self.connection.tls_options.is_some())
            .field("stop_timeout", &self.worker.graceful_shutdown_period)
            .field("shutdown_deadline_buffer", &self.shutdown_deadline_buffer)
            .field("idle_exit", &self.idle_exit)
            .field("idle_exit_lookahead", &self.idle_exit_lookahead)
            .field("reuse_connection", &self.reuse_connection)
            .field("versioning_behaviors", &self.explicit_behaviors)
            .field("shutdown_hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

impl Options {
    pub(crate) fn new(
        task_queue: String,
        version: WorkerDeploymentVersion,
        config: ClientConfig,
    ) -> Self {
        Self {
            worker: defaults::worker_options(task_queue, version),
            connection: config.connection,
            client: config.client,
            shutdown_deadline_buffer: None,
            idle_exit: Some(defaults::IDLE_EXIT),
            idle_exit_lookahead: Some(defaults::IDLE_EXIT_LOOKAHEAD),
            reuse_connection: true,
            explicit_behaviors: Vec::new(),
            hooks: Vec::new(),
            core_meter: None,
        }
    }

    /// Registers a workflow that runs under the worker's default versioning behaviour
    /// (see [`Options::default_versioning_behavior`]).
    pub fn register_workflow<W>(&mut self) -> Result<&mut Self, WorkflowRegistrationError>
    where
        W: WorkflowImplementation,
        <W::Run as WorkflowDefinition>::Input: Send,
    {
        self.worker.register_workflow::<W>()?;
        Ok(self)
    }

    /// Registers a workflow with its own versioning behaviour.
    ///
    /// Pinned and AutoUpgrade workflows may share a worker. The Temporal Rust SDK 1.1.1 sends
    /// the worker default with every workflow task; the default is then the behaviour most
    /// workflows chose (or the one [`Options::default_versioning_behavior`] set), and the others'
    /// own behaviour is set on each of their completed tasks on the way to the server.
    pub fn register_workflow_with_behavior<W>(
        &mut self,
        behavior: VersioningBehavior,
    ) -> Result<&mut Self, WorkflowRegistrationError>
    where
        W: WorkflowImplementation,
        <W::Run as WorkflowDefinition>::Input: Send,
    {
        let before = workflow_types(&self.worker);
        self.worker.register_workflow::<W>()?;
        let added = workflow_types(&self.worker)
            .into_iter()
            .filter(|name| !before.contains(name));
        self.explicit_behaviors
            .extend(added.map(|name| (name, behavior)));
        Ok(self)
    }

    /// Registers every activity of an `#[activities]` implementation.
    pub fn register_activities<A: ActivityImplementer>(&mut self, activities: A) -> &mut Self {
        self.worker.register_activities(activities);
        self
    }

    /// Sets the task queue to poll (by default `TEMPORAL_TASK_QUEUE`).
    pub fn task_queue(&mut self, task_queue: impl Into<String>) -> &mut Self {
        self.worker.task_queue = task_queue.into();
        self
    }

    /// Sets the versioning behaviour of workflows registered without one.
    pub fn default_versioning_behavior(&mut self, behavior: VersioningBehavior) -> &mut Self {
        self.worker.deployment_options.default_versioning_behavior = Some(behavior);
        self
    }

    /// Adds a hook that runs at the end of every invocation, after the worker has stopped.
    ///
    /// Hooks run in registration order, each told why the worker stopped and bounded by the
    /// time left ([`ShutdownContext`]). A hook that fails or runs out of time is logged and the
    /// next one still runs.
    ///
    /// ```
    /// # fn configure(options: &mut temporal_lambda_worker::Options) {
    /// options.on_shutdown(|shutdown| async move {
    ///     tracing::info!(left_ms = shutdown.time_left().as_millis() as u64, "flushing");
    ///     Ok(())
    /// });
    /// # }
    /// ```
    pub fn on_shutdown<F, Fut>(&mut self, hook: F) -> &mut Self
    where
        F: Fn(ShutdownContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + 'static,
    {
        self.hooks
            .push(Arc::new(move |shutdown| hook(shutdown).boxed_local()));
        self
    }
}

fn workflow_types(worker: &WorkerOptions) -> Vec<String> {
    worker
        .workflows()
        .workflow_definitions()
        .map(|definition| definition.workflow_type.clone())
        .collect()
}

/// The checked settings every invocation of this process uses.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) worker: WorkerOptions,
    pub(crate) connection: ConnectionOptions,
    pub(crate) client: ClientOptions,
    pub(crate) timing: Timing,
    pub(crate) reuse_connection: bool,
    pub(crate) hooks: Vec<ShutdownHook>,
    pub(crate) core_meter: Option<Arc<dyn CoreMeter>>,
    /// Workflows whose behaviour differs from the worker default.
    pub(crate) behavior_overrides: BTreeMap<String, VersioningBehavior>,
}

impl Options {
    /// Checks what `configure` left and resolves the worker's versioning behaviour.
    pub(crate) fn into_settings(
        mut self,
        version: &WorkerDeploymentVersion,
    ) -> Result<Settings, Error> {
        if self.worker.task_queue.trim().is_empty() {
            return Err(Error::MissingTaskQueue);
        }
        let deployment = &mut self.worker.deployment_options;
        if deployment.version != *version {
            return Err(Error::InvalidVersion(
                "options.worker.deployment_options.version was changed in configure: the version \
                 is the one passed to run_worker; pass the one you want there"
                    .to_owned(),
            ));
        }
        if !deployment.use_worker_versioning {
            return Err(Error::Versioning(
                "use_worker_versioning was turned off in configure: serverless workers are always \
                 versioned (Temporal invokes the function per deployment version); leave it on"
                    .to_owned(),
            ));
        }
        let registered = workflow_types(&self.worker);
        let deployment = &mut self.worker.deployment_options;
        let behaviors = resolve_behavior(
            deployment.default_versioning_behavior,
            &self.explicit_behaviors,
            &registered,
        )?;
        deployment.default_versioning_behavior = behaviors.default;
        if self
            .worker
            .max_eager_activity_reservations_per_workflow_task
            != defaults::EAGER_ACTIVITY_RESERVATIONS
        {
            tracing::warn!(
                requested = self
                    .worker
                    .max_eager_activity_reservations_per_workflow_task,
                "eager activities stay disabled on Lambda: an eager activity would be bound to an \
                 invocation that may be about to end"
            );
            self.worker
                .max_eager_activity_reservations_per_workflow_task =
                defaults::EAGER_ACTIVITY_RESERVATIONS;
        }
        let stop_timeout = self.worker.graceful_shutdown_period.ok_or_else(|| {
            Error::InvalidOptions(format!(
                "options.worker.graceful_shutdown_period is None: set the worker stop timeout, \
                 which bounds how long in-flight tasks may finish (default {:?})",
                defaults::WORKER_STOP_TIMEOUT
            ))
        })?;
        let mut timing = Timing::new(stop_timeout, self.shutdown_deadline_buffer, self.idle_exit)?;
        timing.idle_lookahead = self.idle_exit_lookahead;
        Ok(Settings {
            worker: self.worker,
            connection: self.connection,
            client: self.client,
            timing,
            reuse_connection: self.reuse_connection,
            hooks: self.hooks,
            core_meter: self.core_meter,
            behavior_overrides: behaviors.overrides,
        })
    }
}

/// The worker's versioning behaviours: the default the SDK sends for every workflow, and the
/// workflows whose chosen behaviour differs from it (set per task by [`crate::versioning`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Behaviors {
    pub(crate) default: Option<VersioningBehavior>,
    pub(crate) overrides: BTreeMap<String, VersioningBehavior>,
}

/// Every registered workflow's behaviour (its own, or the default), or why one has none. With a
/// mix, the worker default is the behaviour most workflows chose (or the one set as default).
fn resolve_behavior(
    default: Option<VersioningBehavior>,
    explicit: &[(String, VersioningBehavior)],
    registered: &[String],
) -> Result<Behaviors, Error> {
    let default = default.filter(|b| *b != VersioningBehavior::Unspecified);
    if let Some((name, _)) = explicit
        .iter()
        .find(|(_, b)| *b == VersioningBehavior::Unspecified)
    {
        return Err(Error::Versioning(format!(
            "workflow {name} was registered with VersioningBehavior::Unspecified: choose Pinned or \
             AutoUpgrade"
        )));
    }
    let mut chosen: Vec<(&str, VersioningBehavior)> = explicit
        .iter()
        .map(|(name, b)| (name.as_str(), *b))
        .collect();
    let without: Vec<&str> = registered
        .iter()
        .map(String::as_str)
        .filter(|name| !explicit.iter().any(|(n, _)| n == name))
        .collect();
    if let Some(default) = default {
        chosen.extend(without.iter().map(|name| (*name, default)));
    } else if !without.is_empty() {
        return Err(Error::Versioning(format!(
            "no versioning behaviour for workflow(s) {}: register them with \
             register_workflow_with_behavior(VersioningBehavior::Pinned or AutoUpgrade), or set \
             options.default_versioning_behavior(...)",
            without.join(", ")
        )));
    }
    let count = |wanted| chosen.iter().filter(|(_, b)| *b == wanted).count();
    let majority = if count(VersioningBehavior::AutoUpgrade) > count(VersioningBehavior::Pinned) {
        VersioningBehavior::AutoUpgrade
    } else {
        VersioningBehavior::Pinned
    };
    let worker_default = default.or((!chosen.is_empty()).then_some(majority));
    let overrides = chosen
        .iter()
        .filter(|(_, b)| Some(*b) != worker_default)
        .map(|(name, b)| ((*name).to_owned(), *b))
        .collect();
    Ok(Behaviors {
        default: worker_default,
        overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use VersioningBehavior::{AutoUpgrade, Pinned, Unspecified};

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A worker default and no override.
    fn all(behavior: VersioningBehavior) -> Behaviors {
        Behaviors {
            default: Some(behavior),
            overrides: BTreeMap::new(),
        }
    }

    #[test]
    fn version_needs_both_parts() {
        assert!(Version::new("app", "b1").validate().is_ok());
        for (d, b, expect) in [
            ("", "b1", "deployment name is empty"),
            ("app", " ", "build id is empty"),
            ("", "", "deployment name and the build id are empty"),
        ] {
            let err = Version::new(d, b).validate().unwrap_err().to_string();
            assert!(
                err.contains(expect) && err.contains("Version::new"),
                "{err}"
            );
        }
    }

    #[test]
    fn default_covers_workflows_registered_without_behaviour() {
        let got = resolve_behavior(Some(Pinned), &[], &names(&["A", "B"])).unwrap();
        assert_eq!(got, all(Pinned));
    }

    #[test]
    fn agreeing_explicit_behaviours_become_the_worker_default() {
        let explicit = [("A".to_owned(), AutoUpgrade), ("B".to_owned(), AutoUpgrade)];
        let got = resolve_behavior(None, &explicit, &names(&["A", "B"])).unwrap();
        assert_eq!(got, all(AutoUpgrade));
    }

    #[test]
    fn explicit_behaviour_matching_the_default_is_fine() {
        let explicit = [("A".to_owned(), Pinned)];
        let got = resolve_behavior(Some(Pinned), &explicit, &names(&["A", "B"])).unwrap();
        assert_eq!(got, all(Pinned));
    }

    #[test]
    fn a_mix_keeps_the_default_or_the_majority_and_overrides_the_rest() {
        // With a default set, it stays the worker's; the one that differs is overridden.
        let explicit = [("A".to_owned(), AutoUpgrade)];
        let got = resolve_behavior(Some(Pinned), &explicit, &names(&["A", "B"])).unwrap();
        assert_eq!(got.default, Some(Pinned));
        assert_eq!(
            got.overrides,
            BTreeMap::from([("A".to_owned(), AutoUpgrade)])
        );
        // Without one, the behaviour most workflows chose (Pinned on a tie).
        let explicit = [
            ("A".to_owned(), AutoUpgrade),
            ("B".to_owned(), Pinned),
            ("C".to_owned(), AutoUpgrade),
        ];
        let got = resolve_behavior(None, &explicit, &names(&["A", "B", "C"])).unwrap();
        assert_eq!(got.default, Some(AutoUpgrade));
        assert_eq!(got.overrides, BTreeMap::from([("B".to_owned(), Pinned)]));
        let explicit = [("A".to_owned(), AutoUpgrade), ("B".to_owned(), Pinned)];
        let got = resolve_behavior(None, &explicit, &names(&["A", "B"])).unwrap();
        assert_eq!(got.default, Some(Pinned));
        assert_eq!(
            got.overrides,
            BTreeMap::from([("A".to_owned(), AutoUpgrade)])
        );
    }

    #[test]
    fn a_workflow_without_behaviour_is_rejected_by_name() {
        let explicit = [("A".to_owned(), Pinned)];
        let err = resolve_behavior(None, &explicit, &names(&["A", "B"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("workflow(s) B") && err.contains("default_versioning_behavior"),
            "{err}"
        );
        // A default of Unspecified is no default.
        assert!(resolve_behavior(Some(Unspecified), &[], &names(&["B"])).is_err());
        let unspecified = [("A".to_owned(), Unspecified)];
        assert!(resolve_behavior(None, &unspecified, &names(&["A"])).is_err());
    }

    #[test]
    fn activity_only_workers_need_no_behaviour() {
        assert_eq!(
            resolve_behavior(None, &[], &[]).unwrap(),
            Behaviors::default()
        );
    }
}
