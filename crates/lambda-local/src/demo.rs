//! The product's main job, on one machine: build the greeting sample, serve it as a Lambda
//! function, let the real Temporal dev server invoke it for a workflow, and show the result with
//! the invocation report.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use lambda_local::{
    Config, FunctionConfig, InvocationRecord, Limits, LocalLambda, RoleConfig, cpu_share,
    temporal::{DevServer, find_or_install_cli, verbose},
};

/// What the demo needs to know.
pub struct DemoOptions {
    /// The workspace root (holds `examples/greeting`).
    pub workspace: PathBuf,
    /// Build the worker with `--release`.
    pub release: bool,
    /// Where the Temporal CLI is cached if it has to be installed.
    pub tools_dir: PathBuf,
    /// The name to greet.
    pub name: String,
}

const DEPLOYMENT: &str = "my-app";
const BUILD_ID: &str = "build-1";
const TASK_QUEUE: &str = "serverless-task-queue-1";
const FUNCTION: &str = "greeting";

/// Runs the demo; everything it starts is stopped when it returns or is dropped.
pub async fn run(options: DemoOptions) -> Result<(), String> {
    let steps = Steps::new();
    steps.say("finding the Temporal CLI");
    let cli = find_or_install_cli(&options.tools_dir).await?;

    steps.say("building the greeting worker (the Lambda bootstrap)");
    let bootstrap = build_worker(&options.workspace, options.release).await?;

    steps.say("starting the local Lambda environment");
    let role = RoleConfig {
        arn: "arn:aws:iam::123456789012:role/temporal-invoker".to_owned(),
        external_id: format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    let lambda = LocalLambda::start(Config {
        forward_logs: verbose(),
        ..Config::new(role.clone())
    })
    .await
    .map_err(|e| e.to_string())?;
    steps.say(&format!(
        "local Lambda environment on {} (loopback only, as are the Runtime APIs)",
        lambda.endpoint()
    ));

    steps.say("starting the Temporal dev server with its Worker Controller");
    let server = DevServer::start(&cli, &lambda.aws_client_environment()).await?;
    let mut function = FunctionConfig::new(
        FUNCTION,
        vec![bootstrap.display().to_string()],
        options.workspace.join("examples/greeting"),
    );
    function.timeout = Duration::from_secs(15);
    function
        .env
        .insert("TEMPORAL_ADDRESS".into(), server.address.clone());
    function
        .env
        .insert("TEMPORAL_TASK_QUEUE".into(), TASK_QUEUE.into());
    lambda.add_function(function).map_err(|e| e.to_string())?;
    let function_arn = lambda.version_arn(FUNCTION).unwrap_or_default();

    steps.say(&format!(
        "creating deployment {DEPLOYMENT}, version {BUILD_ID} -> {function_arn}"
    ));
    server
        .create_lambda_version(DEPLOYMENT, BUILD_ID, &function_arn, &role)
        .await?;
    steps.say("making it the current version");
    server
        .set_current_version(DEPLOYMENT, BUILD_ID, Duration::from_secs(60))
        .await?;

    steps.say("starting GreetingWorkflow; Temporal invokes the function for its tasks");
    let workflow_id = format!(
        "greeting-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let input = serde_json::to_string(&options.name).unwrap_or_default();
    let output = server
        .cli(&[
            "workflow",
            "execute",
            "--type",
            "GreetingWorkflow",
            "--task-queue",
            TASK_QUEUE,
            "--workflow-id",
            &workflow_id,
            "--input",
            &input,
            "--output",
            "json",
        ])
        .await?;
    let result = serde_json::from_str::<serde_json::Value>(&output)
        .ok()
        .and_then(|v| v.get("result").cloned())
        .unwrap_or(serde_json::Value::String(output.trim().to_owned()));

    steps.say("waiting for the invocations to end (a second after their last task: the idle exit)");
    let records = wait_for_records(&lambda, Duration::from_secs(60)).await;
    server.stop().await;
    lambda.shutdown().await;

    println!();
    println!("Workflow {workflow_id} result: {result}");
    println!();
    println!("{}", report_table(&records));
    let memory_mb = records.first().map_or(0, |r| r.memory_size_mb);
    if records.iter().all(|r| r.limits == Limits::Cgroup) {
        println!(
            "Each environment ran with the CPU share and memory limit of {memory_mb} MB, as on \
             Lambda ({:.1} % of a CPU).",
            cpu_share(memory_mb) * 100.0
        );
    } else {
        println!(
            "The environment ran WITHOUT Lambda's CPU share and memory limit (lambda-local said \
             why at start): these timings are a whole host's, not Lambda's."
        );
    }
    Ok(())
}

/// Waits until at least one invocation ended and none is left running.
async fn wait_for_records(lambda: &LocalLambda, patience: Duration) -> Vec<InvocationRecord> {
    let started = Instant::now();
    loop {
        let records = lambda.records();
        let all_ended = !records.is_empty() && lambda.in_flight(FUNCTION) == 0;
        if all_ended || started.elapsed() > patience {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn report_table(records: &[InvocationRecord]) -> String {
    let mut table = String::from(
        "Invocations (as Lambda's REPORT lines would show them)\n\
         request id                             type   start  init ms  duration ms  billed ms  memory MB  max used MB  tasks (wf/act)  outcome\n",
    );
    for r in records {
        table.push_str(&format!(
            "{:<38} {:<6} {:<6} {:>7}  {:>11.1}  {:>9}  {:>9}  {:>11}  {:>14}  {:?}\n",
            r.request_id,
            if r.invocation_type == "Event" {
                "async"
            } else {
                "sync"
            },
            if r.cold_start { "cold" } else { "warm" },
            r.init_duration_ms
                .map(|d| format!("{d:.1}"))
                .unwrap_or_else(|| "-".into()),
            r.duration_ms,
            r.billed_duration_ms,
            r.memory_size_mb,
            r.max_memory_used_mb,
            match (r.workflow_tasks, r.activity_tasks) {
                (Some(w), Some(a)) => format!("{w}/{a}"),
                _ => "-".into(),
            },
            r.outcome,
        ));
    }
    table
}

/// Builds `greeting-worker`, showing cargo's progress on one line.
async fn build_worker(workspace: &Path, release: bool) -> Result<PathBuf, String> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "greeting",
            "--bin",
            "greeting-worker",
            "--color",
            "never",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if release {
        command.arg("--release");
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut progress = Progress::new();
    let mut log = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        progress.update(line.trim());
        log.push(line);
    }
    progress.finish();
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        let tail = log[log.len().saturating_sub(30)..].join("\n");
        return Err(format!("building the greeting worker failed:\n{tail}"));
    }
    let profile = if release { "release" } else { "debug" };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    Ok(target.join(profile).join("greeting-worker"))
}

/// Prints numbered steps with their elapsed time.
struct Steps {
    started: Instant,
}

impl Steps {
    fn new() -> Self {
        Self {
            started: Instant::now(),
        }
    }

    fn say(&self, what: &str) {
        eprintln!("[{:>5.1}s] {what}", self.started.elapsed().as_secs_f64());
    }
}

/// One line of build progress: rewritten in place on a terminal, every 15 s otherwise.
struct Progress {
    tty: bool,
    compiled: usize,
    started: Instant,
    last_print: Instant,
}

impl Progress {
    fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            compiled: 0,
            started: Instant::now(),
            last_print: Instant::now(),
        }
    }

    fn update(&mut self, line: &str) {
        let Some(krate) = line.strip_prefix("Compiling ") else {
            return;
        };
        self.compiled += 1;
        let spinner = ['|', '/', '-', '\\'][self.compiled % 4];
        let status = format!(
            "{spinner} {:>4}s  {:>3} crates compiled, now {}",
            self.started.elapsed().as_secs(),
            self.compiled,
            krate.split(' ').next().unwrap_or(krate)
        );
        if self.tty {
            eprint!("\r\x1b[2K        {status}");
            let _ = std::io::stderr().flush();
        } else if self.last_print.elapsed() > Duration::from_secs(15) {
            eprintln!("        {status}");
            self.last_print = Instant::now();
        }
    }

    fn finish(&self) {
        if self.tty && self.compiled > 0 {
            eprintln!();
        }
    }
}
