//! The bench: one local Lambda environment and one Temporal dev server with its Worker Controller
//! pointed at it, shared by every implementation, and the few operations the scenarios need.
//!
//! Every invocation is made by the server's Worker Controller: the harness only registers
//! functions, attaches each to its own Worker Deployment Version, and starts workflows.

use std::{
    str::FromStr,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use lambda_local::{
    Config, FunctionConfig, InvocationRecord, LocalLambda, Outcome, RoleConfig,
    temporal::{DevServer, default_tools_dir, find_or_install_cli},
};
use temporalio_client::{
    Client, ClientOptions, ConnectionOptions, UntypedSignal, UntypedWorkflow, Url,
    WorkflowGetResultOptions, WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_common::data_converters::{PayloadConverter, RawValue};
use tokio::sync::{Mutex, MutexGuard};

use crate::{implementations::Implementation, workloads::Workload};

/// The build id every implementation's version has (each has its own deployment).
pub const BUILD_ID: &str = "build-1";

/// How a function is configured for a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FunctionShape {
    /// Function timeout. Every package's default shutdown buffer is 7 s, so this leaves
    /// `timeout - 7 s` of polling per invocation to a worker without an idle exit.
    pub timeout_secs: u64,
    /// Memory size: lambda-local gives each environment the CPU share and memory limit of it.
    pub memory_mb: u32,
    /// Reserved concurrency: at most this many environments at once.
    pub concurrency: u32,
}

/// The shape functions are deployed with (the server's first invocation ends quickly).
const DEPLOY_SHAPE: FunctionShape = FunctionShape {
    timeout_secs: 10,
    memory_mb: 1024,
    concurrency: 1,
};

/// One workflow run as the client saw it.
#[derive(Debug)]
pub struct WorkflowRun {
    pub started_at_ms: u64,
    pub ended_at_ms: u64,
    pub result: Result<String, String>,
}

pub struct Lab {
    lambda: LocalLambda,
    server: DevServer,
    client: Client,
    role: RoleConfig,
    temporal_address: String,
    /// Held while an implementation's workflows run, so no two implementations work at once;
    /// their functions' idle tails (a worker polling until its deadline) may overlap.
    busy: Mutex<()>,
}

impl Lab {
    /// Starts both. The functions' output and REPORT lines go to stderr, which `bench/run`
    /// sends to a log file: a peer that cannot run says why there.
    pub async fn start() -> Result<Self, String> {
        let role = RoleConfig {
            arn: "arn:aws:iam::123456789012:role/temporal-invoker".to_owned(),
            external_id: "bench-external-id".to_owned(),
        };
        let config = Config {
            forward_logs: true,
            ..Config::new(role.clone())
        };
        let cli = find_or_install_cli(&default_tools_dir()).await?;
        let lambda = LocalLambda::start(config)
            .await
            .map_err(|e| format!("lambda-local: {e}"))?;
        let server = DevServer::start(&cli, &lambda.aws_client_environment()).await?;
        let url =
            Url::from_str(&format!("http://{}", server.address)).map_err(|e| e.to_string())?;
        let client = Client::connect(
            ConnectionOptions::new(url).build(),
            ClientOptions::new("default").build(),
        )
        .await
        .map_err(|e| format!("cannot connect to the dev server: {e}"))?;
        let temporal_address = server.address.clone();
        Ok(Self {
            lambda,
            server,
            client,
            role,
            temporal_address,
            busy: Mutex::new(()),
        })
    }

    /// The task queue of an implementation's deployment.
    pub fn task_queue(implementation: &Implementation) -> String {
        format!("bench-{}", implementation.name)
    }

    /// Waits until no other implementation's workflows run; they may start when this is dropped.
    pub async fn turn(&self) -> MutexGuard<'_, ()> {
        self.busy.lock().await
    }

    fn function(&self, implementation: &Implementation, shape: FunctionShape) -> FunctionConfig {
        let mut function = FunctionConfig::new(
            implementation.name.clone(),
            implementation.command.clone(),
            implementation.package.clone(),
        );
        function.timeout = Duration::from_secs(shape.timeout_secs);
        function.memory_mb = shape.memory_mb;
        function.concurrency = shape.concurrency;
        let deployment = format!("bench-{}", implementation.name);
        for (key, value) in [
            ("TEMPORAL_ADDRESS", self.temporal_address.as_str()),
            ("TEMPORAL_NAMESPACE", "default"),
            ("TEMPORAL_TASK_QUEUE", &Self::task_queue(implementation)),
            ("BENCH_DEPLOYMENT", &deployment),
            ("BENCH_BUILD_ID", BUILD_ID),
        ] {
            function.env.insert(key.to_owned(), value.to_owned());
        }
        function.env.extend(implementation.env.clone());
        function
    }

    /// Registers the function and attaches it to a new current version of its own deployment,
    /// as a user would with the CLI; then waits out the invocation the server makes on
    /// `create-version` (it registers the task queue).
    pub async fn deploy(&self, implementation: &Implementation) -> Result<(), String> {
        self.lambda
            .add_function(self.function(implementation, DEPLOY_SHAPE))
            .map_err(|e| e.to_string())?;
        let arn = self
            .lambda
            .version_arn(&implementation.name)
            .ok_or("the function vanished")?;
        let deployment = format!("bench-{}", implementation.name);
        self.server
            .create_lambda_version(&deployment, BUILD_ID, &arn, &self.role)
            .await?;
        self.server
            .cli(&[
                "worker",
                "deployment",
                "set-current-version",
                "--deployment-name",
                &deployment,
                "--build-id",
                BUILD_ID,
                "--allow-no-pollers",
                "--ignore-missing-task-queues",
                "--yes",
            ])
            .await?;
        self.wait_idle(&implementation.name, Duration::from_secs(60))
            .await;
        // That invocation shows at once whether the bootstrap can run here at all.
        let records = self.records_since(&implementation.name, 0);
        match records.iter().find(|r| r.outcome != Outcome::Success) {
            Some(r) => Err(format!(
                "the server's first invocation ended {:?}: {} {} (its output is in the harness log)",
                r.outcome,
                r.error_type.as_deref().unwrap_or_default(),
                r.error_message.as_deref().unwrap_or_default()
            )),
            None => Ok(()),
        }
    }

    /// Replaces the function with a fresh copy (same name, version and ARN) of this shape: its
    /// warm environments are killed, so the next invocation is a cold start.
    pub fn reset(
        &self,
        implementation: &Implementation,
        shape: FunctionShape,
    ) -> Result<(), String> {
        self.lambda
            .add_function(self.function(implementation, shape))
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Waits until no invocation of the function runs or waits; false if `patience` ran out.
    pub async fn wait_idle(&self, function: &str, patience: Duration) -> bool {
        let started = Instant::now();
        // A first invocation may still be on its way from the server: give it a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while self.lambda.in_flight(function) > 0 {
            if started.elapsed() > patience {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        true
    }

    /// Stops a function for good (used when it cannot be brought to rest).
    pub async fn remove(&self, function: &str) {
        self.lambda.remove_function(function).await;
    }

    /// The function's invocations that arrived at or after `since_ms`.
    pub fn records_since(&self, function: &str, since_ms: u64) -> Vec<InvocationRecord> {
        self.lambda
            .records()
            .into_iter()
            .filter(|r| r.function_name == function && r.received_at_ms >= since_ms)
            .collect()
    }

    /// Runs one workflow of `workload` and waits (at most `patience`) for its result.
    pub async fn run_workflow(
        &self,
        workload: Workload,
        task_queue: &str,
        workflow_id: &str,
        patience: Duration,
    ) -> WorkflowRun {
        run_workload(
            self.client.clone(),
            workload,
            task_queue.to_owned(),
            workflow_id.to_owned(),
            patience,
        )
        .await
    }

    /// When the server handed out the workflow's first workflow task (its history's first
    /// `WorkflowTaskStarted`): the moment some worker's poll was answered.
    pub async fn first_task_started_ms(&self, workflow_id: &str) -> Option<u64> {
        let json = self
            .server
            .cli(&["workflow", "show", "-w", workflow_id, "-o", "json"])
            .await
            .ok()?;
        let history: serde_json::Value = serde_json::from_str(&json).ok()?;
        let event = history["events"]
            .as_array()?
            .iter()
            .find(|e| e.get("workflowTaskStartedEventAttributes").is_some())?;
        let time = chrono::DateTime::parse_from_rfc3339(event["eventTime"].as_str()?).ok()?;
        u64::try_from(time.timestamp_millis()).ok()
    }

    /// Terminates a workflow that did not finish, so it stops producing invocations.
    pub async fn terminate(&self, workflow_id: &str) {
        let _ = self
            .server
            .cli(&[
                "workflow",
                "terminate",
                "-w",
                workflow_id,
                "--reason",
                "benchmark gave up",
            ])
            .await;
    }

    /// A client handle for concurrent starts.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Every invocation so far.
    pub fn all_records(&self) -> Vec<InvocationRecord> {
        self.lambda.records()
    }

    pub async fn stop(self) {
        self.lambda.shutdown().await;
        self.server.stop().await;
    }
}

/// Starts one workflow of `workload`, sends it its signal when it has one, and waits at most
/// `patience` for its result, which must be the expected one. Owns its arguments so bursts can
/// spawn it.
pub async fn run_workload(
    client: Client,
    workload: Workload,
    task_queue: String,
    workflow_id: String,
    patience: Duration,
) -> WorkflowRun {
    let started_at_ms = now_ms();
    let started = Instant::now();
    let converter = PayloadConverter::default();
    let result = async {
        let input = RawValue::from_value(&workload.input(&workflow_id), &converter);
        let handle = client
            .start_workflow(
                UntypedWorkflow::new(workload.workflow_type()),
                input,
                WorkflowStartOptions::new(task_queue, workflow_id.clone()).build(),
            )
            .await
            .map_err(|e| format!("start: {e}"))?;
        let signal = async {
            let Some((after, name, argument)) = workload.signal() else {
                return Ok(());
            };
            tokio::time::sleep_until((started + after).into()).await;
            handle
                .signal(
                    UntypedSignal::new(name),
                    RawValue::from_value(&argument, &converter),
                    WorkflowSignalOptions::default(),
                )
                .await
                .map_err(|e| format!("signal {name}: {e}"))
        };
        let output = async {
            tokio::time::timeout(
                patience,
                handle.get_result(WorkflowGetResultOptions::default()),
            )
            .await
            .map_err(|_| format!("no result within {}s", patience.as_secs()))?
            .map_err(|e| format!("result: {e}"))
        };
        let (signalled, output) = tokio::join!(signal, output);
        let output = output?;
        signalled?;
        let result: serde_json::Value = output
            .payloads
            .first()
            .and_then(|p| serde_json::from_slice(&p.data).ok())
            .ok_or("the result is not JSON")?;
        let expected = workload.expected(&workflow_id);
        if result == expected {
            Ok(result.to_string())
        } else {
            Err(format!("result {result}, expected {expected}"))
        }
    }
    .await;
    WorkflowRun {
        started_at_ms,
        ended_at_ms: now_ms(),
        result,
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
