//! AWS's own Runtime Interface Emulator (RIE) as a second, independent referee: the real
//! bootstrap (`test-worker`, the greeting sample plus test workflows) runs under it against the
//! real dev server. The RIE is built once from the Go module proxy into `target/tools`.
//!
//! Where the RIE differs from Lambda (and from lambda-local), the product must still work: it
//! delivers an empty body for an invoke without payload, and it answers a failed init with
//! whatever the runtime reported to `/runtime/init/error`. Where the two must agree, the same
//! assertions ([`agree_on_the_contract`]) run against both: the RIE, and lambda-local invoked
//! directly (with its CPU share and memory limit; the RIE has neither).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use greeting::GreetingWorkflow;
use lambda_local::{
    Config, FunctionConfig, LocalLambda,
    temporal::{DevServer, default_tools_dir, find_or_install_cli},
};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

const RIE_MODULE: &str = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie";
const RIE_VERSION: &str = "v0.0.0-20261030222936-bef5c4ba774d";
const INVOKE: &str = "/2015-03-31/functions/function/invocations";

/// The RIE binary, built with the machine's `go` on first use.
fn rie_binary() -> PathBuf {
    let dir = default_tools_dir().join(format!("aws-lambda-rie-{RIE_VERSION}"));
    let binary = dir.join("aws-lambda-rie");
    if !binary.is_file() {
        let status = Command::new("go")
            .args(["install", &format!("{RIE_MODULE}@{RIE_VERSION}")])
            .env("GOBIN", &dir)
            .status()
            .expect("the RIE is built with `go`, which was not found");
        assert!(
            status.success(),
            "go install {RIE_MODULE}@{RIE_VERSION}: {status}"
        );
    }
    binary
}

/// One RIE running `test-worker`; killed on drop.
struct Rie {
    child: Child,
    address: String,
}

impl Rie {
    /// Starts the RIE with the bootstrap's environment `env` and a function timeout.
    fn start(timeout: Duration, env: &[(&str, &str)]) -> Self {
        let address = common::free_address();
        let child = Command::new(rie_binary())
            .args([
                "--runtime-interface-emulator-address",
                &address,
                "--runtime-api-address",
                &common::free_address(),
                env!("CARGO_BIN_EXE_test-worker"),
            ])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("AWS_LAMBDA_FUNCTION_TIMEOUT", timeout.as_secs().to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if lambda_local::temporal::verbose() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap();
        let rie = Self { child, address };
        common::wait_until("the RIE listens", Duration::from_secs(30), || {
            std::net::TcpStream::connect(&rie.address).is_ok()
        });
        rie
    }
}

/// Where the bootstrap runs and is invoked directly: the RIE, or lambda-local.
trait Referee {
    /// The address whose [`INVOKE`] path invokes the function.
    fn address(&self) -> &str;

    /// Invokes the function; the status and the body.
    fn invoke(&self, payload: &str) -> (u16, String) {
        common::http(self.address(), "POST", INVOKE, payload)
    }
}

impl Referee for Rie {
    fn address(&self) -> &str {
        &self.address
    }
}

/// lambda-local, serving `test-worker` as function `function` (the RIE's name for it).
struct LocalReferee(String);

impl Referee for LocalReferee {
    fn address(&self) -> &str {
        &self.0
    }
}

impl Drop for Rie {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a referee running `test-worker` with a function timeout and the worker's environment.
type StartReferee<'a> = dyn Fn(Duration, &[(&str, &str)]) -> Box<dyn Referee> + 'a;

fn dev_server() -> (tokio::runtime::Runtime, DevServer) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let cli = find_or_install_cli(&default_tools_dir()).await.unwrap();
        DevServer::start(&cli, &[]).await.unwrap()
    });
    (runtime, server)
}

/// What Lambda, the RIE and lambda-local must agree on, for the worker polling as deployment
/// `name`: an invoke without payload, a workflow completed through a warm invocation, a timeout
/// too short to work in, a misconfiguration whose reason reaches the caller.
fn agree_on_the_contract(
    runtime: &tokio::runtime::Runtime,
    server: &DevServer,
    name: &str,
    start: &StartReferee,
) {
    let task_queue = format!("{name}-tq");
    let worker_env = [
        ("TEMPORAL_ADDRESS", server.address.as_str()),
        ("TEMPORAL_TASK_QUEUE", task_queue.as_str()),
        ("TEST_WORKER_DEPLOYMENT", name),
        ("TEST_WORKER_BUILD_ID", "build-1"),
    ];

    // An invoke without payload (the RIE delivers an empty body, lambda-local `{}`): the worker
    // polls, finds nothing, and leaves on the idle exit. Its polls register the version.
    let referee = start(Duration::from_secs(30), &worker_env);
    let (status, body) = referee.invoke("");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""stopped_by":"idle""#), "{body}");
    assert!(body.contains(r#""connection":"new""#), "{body}");

    // A workflow completes through the next, warm invocation, on the kept connection, with no
    // task waiting for a timeout.
    let started = Instant::now();
    let workflow_id = format!("{name}-greeting");
    runtime.block_on(async {
        server
            .set_current_version(name, "build-1", Duration::from_secs(30))
            .await
            .unwrap();
        let client = common::client(&server.address).await;
        client
            .start_workflow(
                GreetingWorkflow::run,
                name.to_owned(),
                WorkflowStartOptions::new(task_queue.as_str(), workflow_id.as_str()).build(),
            )
            .await
            .unwrap();
    });
    let (status, body) = referee.invoke("{}");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""connection":"reused""#), "{body}");
    assert!(!body.contains(r#""workflow_tasks":0"#), "{body}");
    runtime.block_on(async {
        let client = common::client(&server.address).await;
        let result: String = client
            .get_workflow_handle::<GreetingWorkflow>(&workflow_id)
            .get_result(WorkflowGetResultOptions::default())
            .await
            .unwrap();
        assert_eq!(result, format!("Hello, {name}!"));
        let history = common::History::fetch(&client, &workflow_id).await;
        common::assert_no_timeout_waits(&[history], &[]);
    });
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(referee);

    // A 3 s timeout leaves no work time: the invocation fails at once, saying why.
    let referee = start(Duration::from_secs(3), &worker_env);
    let (_, body) = referee.invoke("{}");
    assert!(
        body.contains("TemporalLambdaWorker.DeadlineTooClose"),
        "{body}"
    );
    assert!(body.contains("more than 1s is needed"), "{body}");
    drop(referee);

    // A misconfigured bootstrap: the reason it reported to /runtime/init/error reaches the
    // caller.
    let misconfigured = [worker_env[0], ("TEST_WORKER_MISCONFIGURE", "no-task-queue")];
    let referee = start(Duration::from_secs(30), &misconfigured);
    let (_, body) = referee.invoke("{}");
    assert!(
        body.contains("TemporalLambdaWorker.MissingTaskQueue"),
        "{body}"
    );
    assert!(
        body.contains("no task queue: set TEMPORAL_TASK_QUEUE"),
        "{body}"
    );
}

#[test]
fn under_aws_runtime_interface_emulator_the_bootstrap_serves_fails_clearly_and_completes_work() {
    let (runtime, server) = dev_server();
    agree_on_the_contract(&runtime, &server, "rie", &|timeout, env| {
        Box::new(Rie::start(timeout, env))
    });
    runtime.block_on(server.stop());
}

#[test]
fn lambda_local_invoked_directly_agrees_with_the_rie() {
    let (runtime, server) = dev_server();
    let lambda = runtime
        .block_on(LocalLambda::start(Config {
            forward_logs: lambda_local::temporal::verbose(),
            ..Config::new(common::role("referee"))
        }))
        .unwrap();
    let address = lambda.endpoint().trim_start_matches("http://").to_owned();
    agree_on_the_contract(&runtime, &server, "lambda-local", &|timeout, env| {
        runtime.block_on(lambda.remove_function("function"));
        let mut function = FunctionConfig::new(
            "function",
            vec![env!("CARGO_BIN_EXE_test-worker").to_owned()],
            env!("CARGO_MANIFEST_DIR"),
        );
        function.timeout = timeout;
        function.env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let _runtime = runtime.enter();
        lambda.add_function(function).unwrap();
        Box::new(LocalReferee(address.clone()))
    });
    common::assert_ran_limited(&lambda.records());
    runtime.block_on(lambda.shutdown());
    runtime.block_on(server.stop());
}
