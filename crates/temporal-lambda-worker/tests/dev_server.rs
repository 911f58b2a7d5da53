//! The handler against a real `temporal server start-dev`: workflows started by a client
//! complete through invocations driven with real deadlines.

mod support;

use std::time::{Duration, SystemTime};

use greeting::GreetingWorkflow;
use support::{DevServer, blackhole::Blackhole, dev_server, lambda_event, unique};
use temporal_lambda_worker::{
    BoxError, Connection, InvocationSummary, LambdaWorker, Options, StoppedBy, Version,
    VersioningBehavior, WorkerShutdown,
    client::{
        Client, ClientOptions, ConnectionOptions, Url, WorkflowGetResultOptions,
        WorkflowStartOptions,
    },
    lambda_runtime::Service,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions,
    activities::{ActivityContext, ActivityError},
};
use temporalio_workflow::{WorkflowContext, WorkflowResult};

/// A workflow whose activity never finishes and ignores cancellation.
#[workflow]
#[derive(Default)]
struct StubbornWorkflow;

#[workflow_methods]
impl StubbornWorkflow {
    #[run]
    async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        ctx.execute_activity(
            StubbornActivities::ignore_cancellation,
            (),
            ActivityOptions::start_to_close_timeout(Duration::from_secs(3600)),
        )
        .await?;
        Ok(())
    }
}

struct StubbornActivities;

#[activities]
impl StubbornActivities {
    #[activity(name = "ignore_cancellation")]
    async fn ignore_cancellation(_ctx: ActivityContext) -> Result<(), ActivityError> {
        // Never looks at its context, so never sees the cancellation.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

/// A deployment made current for one test, with its own task queue.
struct Setup {
    server: &'static DevServer,
    version: Version,
    task_queue: String,
}

fn setup() -> Setup {
    let server = dev_server();
    let version = Version::new(unique("deployment"), "build-1");
    server.set_current_version(&version.deployment_name, &version.build_id);
    Setup {
        server,
        version,
        task_queue: unique("tq"),
    }
}

impl Setup {
    fn worker(&self, configure: impl FnOnce(&mut Options) -> Result<(), BoxError>) -> LambdaWorker {
        self.worker_via(&self.server.address, configure)
    }

    /// A worker that reaches the server through `address` (a proxy).
    fn worker_via(
        &self,
        address: &str,
        configure: impl FnOnce(&mut Options) -> Result<(), BoxError>,
    ) -> LambdaWorker {
        let address = format!("http://{address}");
        let task_queue = self.task_queue.clone();
        LambdaWorker::new(self.version.clone(), move |options| {
            options.connection.target = Url::parse(&address)?;
            options.worker.task_queue = task_queue;
            configure(options)
        })
        .unwrap()
    }

    async fn client(&self) -> Client {
        let target = Url::parse(&format!("http://{}", self.server.address)).unwrap();
        Client::connect(
            ConnectionOptions::new(target).build(),
            ClientOptions::new("default").build(),
        )
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_started_workflow_completes_through_an_invocation_with_version_and_identity() {
    let setup = setup();
    let mut worker = setup.worker(greeting::configure);
    let client = setup.client().await;
    let workflow_id = unique("greeting");
    let handle = client
        .start_workflow(
            GreetingWorkflow::run,
            "Lambda".to_owned(),
            WorkflowStartOptions::new(setup.task_queue.clone(), workflow_id.clone()).build(),
        )
        .await
        .unwrap();

    let event = lambda_event("request-1", Duration::from_secs(12));
    let deadline = support::deadline_of(&event);
    let response = worker.call(event).await.unwrap();
    let returned = SystemTime::now();
    assert!(returned < deadline, "returned after the deadline");
    assert_eq!(response.shutdown, WorkerShutdown::Graceful, "{response:?}");
    assert!(response.workflow_tasks >= 2, "{response:?}");
    assert_eq!(response.activity_tasks, 1, "{response:?}");

    let result = tokio::time::timeout(
        Duration::from_secs(10),
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the workflow completed")
    .unwrap();
    assert_eq!(result, "Hello, Lambda!");

    let identity = "request-1@arn:aws:lambda:us-east-1:123456789012:function:greeting:1";
    let history = setup.server.history(&workflow_id);
    let completed: Vec<_> = history
        .iter()
        .filter_map(|e| e.get("workflowTaskCompletedEventAttributes"))
        .collect();
    assert!(
        !completed.is_empty(),
        "no workflow task completed: {history:?}"
    );
    for attributes in completed {
        assert_eq!(attributes["identity"], identity, "{attributes}");
        assert_eq!(
            attributes["versioningBehavior"], "VERSIONING_BEHAVIOR_PINNED",
            "{attributes}"
        );
        let version = &attributes["deploymentVersion"];
        assert_eq!(
            version["deploymentName"],
            setup.version.deployment_name.as_str(),
            "{attributes}"
        );
        assert_eq!(version["buildId"], "build-1", "{attributes}");
    }
    let activity_started = history
        .iter()
        .find_map(|e| e.get("activityTaskStartedEventAttributes"))
        .expect("the activity ran");
    assert_eq!(activity_started["identity"], identity);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_idle_exit_an_idle_invocation_polls_until_deadline_minus_buffer() {
    let setup = setup();
    let mut worker = setup.worker(|options| {
        greeting::configure(options)?;
        options.idle_exit = None;
        Ok(())
    });
    let event = lambda_event("idle", Duration::from_secs(10));
    let deadline = support::deadline_of(&event);
    let response = worker.call(event).await.unwrap();
    let returned = SystemTime::now();
    // Polling ends at deadline − 7 s; an idle worker stops in milliseconds.
    let before_deadline = deadline
        .duration_since(returned)
        .expect("returned before the deadline");
    assert!(
        before_deadline > Duration::from_secs(5),
        "returned {before_deadline:?} before the deadline"
    );
    assert!(
        before_deadline <= Duration::from_secs(7),
        "returned {before_deadline:?} before the deadline: too early"
    );
    assert_eq!(response.shutdown, WorkerShutdown::Graceful);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_activity_ignoring_cancellation_cannot_hold_the_invocation_past_its_deadline() {
    let setup = setup();
    let mut worker = setup.worker(|options| {
        options
            .register_workflow_with_behavior::<StubbornWorkflow>(VersioningBehavior::AutoUpgrade)?;
        options.register_activities(StubbornActivities);
        options.worker.graceful_shutdown_period = Some(Duration::from_secs(2));
        options.shutdown_deadline_buffer = Some(Duration::from_secs(3));
        Ok(())
    });
    let client = setup.client().await;
    client
        .start_workflow(
            StubbornWorkflow::run,
            (),
            WorkflowStartOptions::new(setup.task_queue.clone(), unique("stubborn")).build(),
        )
        .await
        .unwrap();
    let event = lambda_event("stubborn", Duration::from_secs(8));
    let deadline = support::deadline_of(&event);
    let response = worker.call(event).await.unwrap();
    let returned = SystemTime::now();
    assert!(returned < deadline, "returned after the deadline");
    assert_eq!(response.shutdown, WorkerShutdown::Abandoned, "{response:?}");
    // Stop requested at deadline − 3 s at the latest; stop timeout 2 s; then at most 0.5 s more.
    let stop_ms = response.stop_ms;
    assert!((2000..=2700).contains(&stop_ms), "stop took {stop_ms}ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_fails_the_invocation_within_its_budget_naming_the_address() {
    let version = Version::new(unique("deployment"), "build-1");
    let mut worker = LambdaWorker::new(version, |options| {
        // Nothing listens on port 1 of loopback.
        options.connection.target = Url::parse("http://127.0.0.1:1")?;
        options.worker.task_queue = unique("tq");
        greeting::configure(options)
    })
    .unwrap();
    let event = lambda_event("unreachable", Duration::from_secs(10));
    let deadline = support::deadline_of(&event);
    let err = worker.call(event).await.unwrap_err();
    assert!(SystemTime::now() < deadline);
    let msg = err.to_string();
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_the_invocation_ends_a_second_after_its_work_is_done() {
    let setup = setup();
    // The sample's configuration leaves the idle exit at its default of 1 s.
    let mut worker = setup.worker(greeting::configure);
    let client = setup.client().await;
    let handle = client
        .start_workflow(
            GreetingWorkflow::run,
            "idle".to_owned(),
            WorkflowStartOptions::new(setup.task_queue.clone(), unique("idle-exit")).build(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = worker
        .call(lambda_event("idle-exit", Duration::from_secs(30)))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.stopped_by, StoppedBy::Idle, "{response:?}");
    assert_eq!(response.activity_tasks, 1, "{response:?}");
    // Without the idle exit it would poll for 23 s; with it, the work (well under a second)
    // plus one idle second.
    assert!(
        took < Duration::from_secs(4),
        "the invocation took {took:?}"
    );
    let result = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(result, "Hello, idle!");
}

impl Setup {
    /// Starts a greeting workflow, runs one invocation with a 30 s deadline and returns its
    /// response once the workflow has completed.
    async fn greet_through(
        &self,
        worker: &mut LambdaWorker,
        request_id: &str,
    ) -> InvocationSummary {
        let client = self.client().await;
        let workflow_id = unique(request_id);
        let handle = client
            .start_workflow(
                GreetingWorkflow::run,
                request_id.to_owned(),
                WorkflowStartOptions::new(self.task_queue.clone(), workflow_id.clone()).build(),
            )
            .await
            .unwrap();
        let response = worker
            .call(lambda_event(request_id, Duration::from_secs(30)))
            .await
            .unwrap();
        let result = handle
            .get_result(WorkflowGetResultOptions::default())
            .await
            .unwrap();
        assert_eq!(result, format!("Hello, {request_id}!"));
        // Each invocation's own identity, also on a connection another invocation made.
        let identity =
            format!("{request_id}@arn:aws:lambda:us-east-1:123456789012:function:greeting:1");
        let history = self.server.history(&workflow_id);
        let completions: Vec<_> = history
            .iter()
            .filter_map(|e| e.get("workflowTaskCompletedEventAttributes"))
            .collect();
        assert!(!completions.is_empty(), "{history:?}");
        for attributes in completions {
            assert_eq!(attributes["identity"], identity.as_str(), "{attributes}");
        }
        response
    }
}

fn idle_exit_after_one_second(options: &mut Options) -> Result<(), BoxError> {
    greeting::configure(options)?;
    options.idle_exit = Some(Duration::from_secs(1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_invocations_reuse_the_connection_and_keep_their_own_identity() {
    let setup = setup();
    let mut worker = setup.worker(idle_exit_after_one_second);
    let mut connections = Vec::new();
    for request_id in ["warm-1", "warm-2", "warm-3"] {
        let response = setup.greet_through(&mut worker, request_id).await;
        assert_eq!(response.activity_tasks, 1, "{response:?}");
        connections.push(response.connection);
    }
    assert_eq!(
        connections,
        [Connection::New, Connection::Reused, Connection::Reused]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_connection_that_went_silent_is_replaced_within_a_second() {
    let setup = setup();
    let proxy = Blackhole::start(setup.server.address.clone()).await;
    let mut worker = setup.worker_via(&proxy.address, idle_exit_after_one_second);
    let first = setup.greet_through(&mut worker, "before-silence").await;
    assert_eq!(first.connection, Connection::New);
    let opened = proxy.connections();
    // As if the environment had been frozen while a NAT forgot the connection.
    proxy.silence_open_connections();
    let started = std::time::Instant::now();
    let second = setup.greet_through(&mut worker, "after-silence").await;
    assert_eq!(second.connection, Connection::New, "{second:?}");
    assert!(proxy.connections() > opened, "no new connection was made");
    // A one-second check, then a fresh connection, the work and a one-second idle exit.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
