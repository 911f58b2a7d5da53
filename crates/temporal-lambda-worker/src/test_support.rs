//! Test doubles for unit tests: a scripted [`Backend`], sample workflows and activities, and a
//! log capture.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use futures::FutureExt;
use lambda_runtime::Context;
use temporalio_client::{ClientOptions, ConnectionOptions};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    WorkerOptions,
    activities::{ActivityContext, ActivityError},
};
use temporalio_workflow::{WorkflowContext, WorkflowResult};
use tokio::{
    sync::{Notify, watch},
    time::Instant,
};

use crate::{
    InvocationError,
    backend::{Backend, DrainPolls, Drained, PollingWorker},
    invocation::Warm,
    task_count::{Task, TaskCount},
};

#[workflow]
#[derive(Default)]
pub(crate) struct FirstWorkflow;

#[workflow_methods]
impl FirstWorkflow {
    #[run]
    pub(crate) async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

#[workflow]
#[derive(Default)]
pub(crate) struct SecondWorkflow;

#[workflow_methods]
impl SecondWorkflow {
    #[run]
    pub(crate) async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

pub(crate) struct SampleActivities;

#[activities]
impl SampleActivities {
    // Registered in tests, never executed.
    #[allow(dead_code)]
    #[activity]
    pub(crate) async fn noop(_ctx: ActivityContext) -> Result<(), ActivityError> {
        Ok(())
    }
}

/// How the scripted worker behaves.
#[derive(Clone, Default)]
pub(crate) struct Script {
    /// Connecting fails with this reason.
    pub(crate) connect_error: Option<String>,
    /// Connecting takes this long.
    pub(crate) connect_delay: Duration,
    /// Checking a kept connection fails with this reason.
    pub(crate) check_error: Option<String>,
    /// Checking a kept connection takes this long.
    pub(crate) check_delay: Duration,
    /// Creating the worker fails.
    pub(crate) create_error: bool,
    /// `run` fails at once, as when the namespace check-in fails.
    pub(crate) start_error: bool,
    /// `run` returns without being asked to stop.
    pub(crate) stops_early: bool,
    /// After being asked to stop, draining takes this long.
    pub(crate) drain: Duration,
    /// After being asked to stop, `run` never returns (an activity ignoring cancellation).
    pub(crate) ignores_shutdown: bool,
    /// Tasks the worker processes: (start after `run` began, duration).
    pub(crate) tasks: Vec<(Duration, Duration)>,
    /// Each task, as it finishes, makes work due this long later (as a failed activity attempt
    /// does with its retry).
    pub(crate) due_after_each_task: Option<Duration>,
    /// Once told to end its polls, the last one is answered after this long.
    pub(crate) polls_end_after: Duration,
}

/// A backend that follows a [`Script`] on a virtual clock and records what happened, with the
/// virtual time of each event.
///
/// Its clients are connection numbers, counted from 1, so tests can tell a reused one.
pub(crate) struct FakeBackend {
    pub(crate) script: Script,
    pub(crate) events: Rc<RefCell<Vec<(Duration, String)>>>,
    /// The execution environment's state across invocations.
    pub(crate) warm: Warm<u32>,
    /// Sends "SIGTERM arrived".
    pub(crate) sigterm: watch::Sender<Option<Instant>>,
    connections: Cell<u32>,
    start_system: SystemTime,
    start_instant: Instant,
}

impl FakeBackend {
    pub(crate) fn new(script: Script) -> Self {
        let (sigterm, received) = watch::channel(None);
        Self {
            script,
            events: Rc::default(),
            warm: Warm::new(received),
            sigterm,
            connections: Cell::new(0),
            start_system: SystemTime::now(),
            start_instant: Instant::now(),
        }
    }

    /// A Lambda context whose deadline is `in_` from now on the virtual clock.
    pub(crate) fn context(&self, in_: Duration) -> Context {
        let deadline = self.now() + in_;
        let mut context = Context::default();
        context.request_id = "req-1".to_owned();
        context.invoked_function_arn =
            "arn:aws:lambda:us-east-1:123456789012:function:f".to_owned();
        context.deadline = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        context
    }

    pub(crate) fn record(
        events: &Rc<RefCell<Vec<(Duration, String)>>>,
        start: Instant,
        what: String,
    ) {
        events.borrow_mut().push((start.elapsed(), what));
    }

    /// The recorded event names, in order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.events
            .borrow()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// When the named event happened, on the virtual clock.
    pub(crate) fn at(&self, name: &str) -> Duration {
        self.events
            .borrow()
            .iter()
            .find(|(_, e)| e == name)
            .unwrap_or_else(|| panic!("no event {name}"))
            .0
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start_instant.elapsed()
    }
}

pub(crate) struct FakeWorker {
    script: Script,
    tasks: Arc<TaskCount>,
    stop: Arc<Notify>,
    events: Rc<RefCell<Vec<(Duration, String)>>>,
    start: Instant,
}

impl Backend for FakeBackend {
    type Client = u32;
    type Worker = FakeWorker;

    fn now(&self) -> SystemTime {
        // A wall clock that follows Tokio's (paused, auto-advancing) clock.
        self.start_system + self.start_instant.elapsed()
    }

    async fn connect(
        &self,
        connection: ConnectionOptions,
        _: ClientOptions,
    ) -> Result<u32, String> {
        Self::record(
            &self.events,
            self.start_instant,
            format!("connect {}", connection.target),
        );
        tokio::time::sleep(self.script.connect_delay).await;
        match &self.script.connect_error {
            Some(reason) => Err(reason.clone()),
            None => {
                self.connections.set(self.connections.get() + 1);
                Ok(self.connections.get())
            }
        }
    }

    async fn check(&self, client: &u32) -> Result<(), String> {
        Self::record(&self.events, self.start_instant, format!("check {client}"));
        tokio::time::sleep(self.script.check_delay).await;
        match &self.script.check_error {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    fn create_worker(
        &self,
        client: u32,
        options: WorkerOptions,
    ) -> Result<FakeWorker, InvocationError> {
        let identity = options.client_identity_override.unwrap_or_default();
        Self::record(
            &self.events,
            self.start_instant,
            format!("create worker on {client} as {identity}"),
        );
        if self.script.create_error {
            return Err(InvocationError::WorkerStart(
                "scripted create failure".into(),
            ));
        }
        Ok(FakeWorker {
            script: self.script.clone(),
            tasks: Arc::default(),
            stop: Arc::default(),
            events: Rc::clone(&self.events),
            start: self.start_instant,
        })
    }
}

impl PollingWorker for FakeWorker {
    fn tasks(&self) -> Arc<TaskCount> {
        Arc::clone(&self.tasks)
    }

    fn drain_handle(&self) -> DrainPolls {
        let (events, start) = (Rc::clone(&self.events), self.start);
        let polls_end_after = self.script.polls_end_after;
        // Every scripted task due by the end of the drain came from a poll.
        let due: Vec<Duration> = self.script.tasks.iter().map(|(at, _)| *at).collect();
        let created = Instant::now();
        Box::new(move |by| {
            let due = due.clone();
            FakeBackend::record(&events, start, "drain polls".to_owned());
            let events = Rc::clone(&events);
            async move {
                let ended = tokio::time::timeout_at(by, tokio::time::sleep(polls_end_after))
                    .await
                    .is_ok();
                FakeBackend::record(&events, start, format!("polls ended: {ended}"));
                let now = created.elapsed();
                Drained {
                    settled: ended,
                    activity_tasks_brought: due.iter().filter(|at| **at <= now).count() as u64,
                }
            }
            .boxed_local()
        })
    }

    fn shutdown_handle(&self) -> Box<dyn Fn()> {
        let stop = Arc::clone(&self.stop);
        Box::new(move || stop.notify_one())
    }

    async fn run(&mut self) -> Result<(), InvocationError> {
        FakeBackend::record(&self.events, self.start, "run".to_owned());
        if self.script.start_error {
            return Err(InvocationError::WorkerStart("namespace not found".into()));
        }
        if self.script.stops_early {
            return Ok(());
        }
        let began = Instant::now();
        let tasks = Arc::clone(&self.tasks);
        let script = self.script.tasks.clone();
        let due_after = self.script.due_after_each_task;
        let simulate = async move {
            for (at, lasting) in script {
                tokio::time::sleep_until(began + at).await;
                tasks.started(Task::Activity);
                tokio::time::sleep(lasting).await;
                if let Some(after) = due_after {
                    tasks.retry_after(after);
                }
                tasks.finished();
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = self.stop.notified() => {}
            () = simulate => {}
        }
        FakeBackend::record(&self.events, self.start, "stop requested".to_owned());
        if self.script.ignores_shutdown {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.script.drain).await;
        FakeBackend::record(&self.events, self.start, "stopped".to_owned());
        Ok(())
    }
}

/// Captures the log lines written while the guard lives (on this thread).
pub(crate) struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    pub(crate) fn start() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || SharedWriter(Arc::clone(&writer)))
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
