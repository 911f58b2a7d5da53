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
    Client, ClientOptions, ConnectionOptions, UntypedWorkflow, Url, WorkflowGetResultOptions,
    WorkflowStartOptions,
};
use temporalio_common::data_converters::{PayloadConverter, RawValue};

use crate::implementations::Implementation;

/// The workflow every implementation registers.
const WORKFLOW_TYPE: &str = "GreetingWorkflow";

/// The build id every implementation's version has (each has its own deployment).
pub const BUILD_ID: &str = "build-1";

/// Function settings shared by every implementation.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct FunctionSettings {
    /// Function timeout. Every package's default shutdown buffer is 7 s, so this leaves
    /// `timeout - 7 s` of polling per invocation.
    pub timeout_secs: u64,
    /// Configured memory (reported by lambda-local, never enforced; cost uses the measured peak).
    pub memory_mb: u32,
}

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
    settings: FunctionSettings,
    temporal_address: String,
}

impl Lab {
    /// Starts both. The functions' output and REPORT lines go to stderr, which `bench/run`
    /// sends to a log file: a peer that cannot run says why there.
    pub async fn start(settings: FunctionSettings) -> Result<Self, String> {
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
            settings,
            temporal_address,
        })
    }

    /// The task queue of an implementation's deployment.
    pub fn task_queue(implementation: &Implementation) -> String {
        format!("bench-{}", implementation.name)
    }

    /// The run's function timeout, in seconds.
    pub fn timeout_secs(&self) -> u64 {
        self.settings.timeout_secs
    }

    fn function(
        &self,
        implementation: &Implementation,
        concurrency: u32,
        timeout_secs: u64,
    ) -> FunctionConfig {
        let mut function = FunctionConfig::new(
            implementation.name.clone(),
            implementation.command.clone(),
            implementation.package.clone(),
        );
        function.timeout = Duration::from_secs(timeout_secs);
        function.memory_mb = self.settings.memory_mb;
        function.concurrency = concurrency;
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
            .add_function(self.function(implementation, 1, self.settings.timeout_secs))
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

    /// Replaces the function with a fresh copy (same name, version and ARN) with this
    /// concurrency and timeout: its warm environments are killed, so the next invocation is a
    /// cold start.
    pub fn reset(
        &self,
        implementation: &Implementation,
        concurrency: u32,
        timeout_secs: u64,
    ) -> Result<(), String> {
        self.lambda
            .add_function(self.function(implementation, concurrency, timeout_secs))
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

    /// Starts one greeting workflow and waits (at most `patience`) for its result.
    pub async fn run_workflow(
        &self,
        task_queue: &str,
        workflow_id: &str,
        patience: Duration,
    ) -> WorkflowRun {
        run_greeting(
            self.client.clone(),
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

/// Starts one greeting workflow (its name is its input) and waits at most `patience` for its
/// result. Owns its arguments so bursts can spawn it.
pub async fn run_greeting(
    client: Client,
    task_queue: String,
    workflow_id: String,
    patience: Duration,
) -> WorkflowRun {
    let started_at_ms = now_ms();
    let result = async {
        // The greeting's name is the workflow id, so every result is distinct and checkable.
        let input = RawValue::from_value(&workflow_id, &PayloadConverter::default());
        let handle = client
            .start_workflow(
                UntypedWorkflow::new(WORKFLOW_TYPE),
                input,
                WorkflowStartOptions::new(task_queue, workflow_id.clone()).build(),
            )
            .await
            .map_err(|e| format!("start: {e}"))?;
        let output = tokio::time::timeout(
            patience,
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .map_err(|_| format!("no result within {}s", patience.as_secs()))?
        .map_err(|e| format!("result: {e}"))?;
        let greeting: String = output
            .payloads
            .first()
            .and_then(|p| serde_json::from_slice(&p.data).ok())
            .ok_or("the result is not a JSON string")?;
        let expected = format!("Hello, {workflow_id}!");
        if greeting == expected {
            Ok(greeting)
        } else {
            Err(format!("result {greeting:?}, expected {expected:?}"))
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
