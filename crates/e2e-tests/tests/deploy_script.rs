//! The deploy script (`examples/greeting/deploy/deploy.sh`):
//!
//! - `--dry-run` prints every AWS and Temporal command, needs neither the aws nor the temporal
//!   CLI, never prints the API key, and prints exactly what docs/DEPLOYMENT.md shows;
//! - the CloudFormation templates pass `cfn-lint`;
//! - its Temporal half runs for real against the dev server, attaching a function served by
//!   lambda-local, and a `GreetingWorkflow` then completes through the version it attached,
//!   invoked by the server's Worker Controller.
//!
//! The function is the deployment package CI built (`DEPLOY_TEST_ZIP`: the arm64
//! `bootstrap.zip` from `package.sh`, unpacked as Lambda would and run under user-mode
//! emulation; an x86_64 one runs natively), else the `test-worker` bootstrap of this crate with
//! a copy of the sample's `temporal.toml`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    str::FromStr,
    time::Duration,
};

mod common;

use greeting::GreetingWorkflow;
use lambda_local::{FunctionConfig, Outcome};
use temporalio_client::{
    Client, ClientOptions, ConnectionOptions, Url, WorkflowGetResultOptions, WorkflowStartOptions,
};

const API_KEY: &str = "tk-not-a-real-key-0123456789";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script() -> PathBuf {
    repo_root().join("examples/greeting/deploy/deploy.sh")
}

/// Runs the script from the repository root with `PATH` reduced to the system directories, so
/// a dry run proves it needs neither the aws nor the temporal CLI (nor cargo).
fn dry_run(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .current_dir(repo_root())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("bash runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Each command on one line: continuation lines joined, indentation dropped.
fn commands(transcript: &str) -> String {
    let mut out = String::new();
    let mut continuing = false;
    for line in transcript.lines() {
        let line = line.trim();
        if continuing {
            out.push(' ');
        } else if !out.is_empty() {
            out.push('\n');
        }
        continuing = line.ends_with(" \\");
        out.push_str(line.strip_suffix(" \\").unwrap_or(line));
    }
    out
}

/// The arguments of the dry run docs/DEPLOYMENT.md shows.
const GUIDE_ARGS: &[&str] = &[
    "--dry-run",
    "--function-name",
    "my-worker",
    "--region",
    "us-east-1",
    "--external-id",
    "my-external-id",
    "--address",
    "us-east-1.aws.api.temporal.io:7233",
    "--namespace",
    "my-ns.a1b2c",
    "--api-key",
    API_KEY,
];

#[test]
fn dry_run_prints_every_aws_and_temporal_command_and_never_the_api_key() {
    let output = dry_run(GUIDE_ARGS);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(API_KEY) && !stderr.contains(API_KEY),
        "the API key was printed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(r#""TEMPORAL_API_KEY":"****""#), "{stdout}");
    assert!(
        stdout.contains("export TEMPORAL_ADDRESS=us-east-1.aws.api.temporal.io:7233 TEMPORAL_NAMESPACE=my-ns.a1b2c TEMPORAL_API_KEY=****"),
        "{stdout}"
    );
    let commands = commands(&stdout);
    for expected in [
        "ZIP=$(examples/greeting/deploy/package.sh --crate-dir examples/greeting --bin greeting-worker --arch arm64)",
        "aws cloudformation deploy --region us-east-1 --stack-name my-worker-execution-role --template-file examples/greeting/deploy/execution-role.yaml --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides FunctionName=my-worker",
        "EXECUTION_ROLE_ARN=$(aws cloudformation describe-stacks --region us-east-1 --stack-name my-worker-execution-role --query 'Stacks[0].Outputs[0].OutputValue' --output text)",
        "if aws lambda get-function --region us-east-1 --function-name my-worker >/dev/null 2>&1; then",
        r#"aws lambda update-function-code --region us-east-1 --function-name my-worker --zip-file "fileb://$ZIP" --architectures arm64"#,
        "aws lambda wait function-updated --region us-east-1 --function-name my-worker",
        r#"aws lambda update-function-configuration --region us-east-1 --function-name my-worker --runtime provided.al2023 --handler bootstrap --role "$EXECUTION_ROLE_ARN" --timeout 60 --memory-size 256 --environment "file://$ENVIRONMENT_FILE""#,
        r#"aws lambda create-function --region us-east-1 --function-name my-worker --architectures arm64 --zip-file "fileb://$ZIP" --runtime provided.al2023 --handler bootstrap --role "$EXECUTION_ROLE_ARN" --timeout 60 --memory-size 256 --environment "file://$ENVIRONMENT_FILE""#,
        "aws lambda wait function-active --region us-east-1 --function-name my-worker",
        "FUNCTION_VERSION_ARN=$(aws lambda publish-version --region us-east-1 --function-name my-worker --description 'my-app build-1' --query FunctionArn --output text)",
        r#"aws cloudformation deploy --region us-east-1 --stack-name my-worker-temporal-invoker --template-file examples/greeting/deploy/invocation-role-cloud.yaml --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides "FunctionArn=$FUNCTION_ARN" ExternalId=my-external-id"#,
        "INVOCATION_ROLE_ARN=$(aws cloudformation describe-stacks --region us-east-1 --stack-name my-worker-temporal-invoker --query 'Stacks[0].Outputs[0].OutputValue' --output text)",
        "temporal worker deployment create --name my-app",
        r#"temporal worker deployment create-version --deployment-name my-app --build-id build-1 --aws-lambda-function-arn "$FUNCTION_VERSION_ARN" --aws-lambda-assume-role-arn "$INVOCATION_ROLE_ARN" --aws-lambda-assume-role-external-id my-external-id"#,
        "temporal worker deployment set-current-version --deployment-name my-app --build-id build-1 --yes",
    ] {
        assert!(
            commands.lines().any(|line| line == expected),
            "missing command:\n{expected}\nin:\n{commands}"
        );
    }
    // In that order: package, execution role, function, publish, invocation role, Temporal.
    let position = |needle: &str| {
        commands
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {commands}"))
    };
    let order = [
        "package.sh",
        "execution-role.yaml",
        "lambda get-function",
        "lambda publish-version",
        "invocation-role-cloud.yaml",
        "deployment create --name",
        "deployment create-version",
        "deployment set-current-version",
    ]
    .map(position);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

#[test]
fn an_api_key_secret_goes_to_the_function_as_its_name_and_the_role_may_read_it() {
    let layer = "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:20";
    let mut args = GUIDE_ARGS.to_vec();
    args.extend([
        "--api-key-secret",
        "prod/temporal-api-key",
        "--layer",
        layer,
    ]);
    let output = dry_run(&args);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(API_KEY) && !stderr.contains(API_KEY));
    // The function gets the secret's name, not the key (which still serves the CLI).
    assert!(
        stdout.contains(r#""TEMPORAL_API_KEY_SECRET":"secretsmanager:prod/temporal-api-key""#),
        "{stdout}"
    );
    assert!(!stdout.contains(r#""TEMPORAL_API_KEY":"#), "{stdout}");
    assert!(stdout.contains("TEMPORAL_API_KEY=****"), "{stdout}");
    let commands = commands(&stdout);
    assert!(
        commands.contains(
            "--parameter-overrides FunctionName=my-worker ApiKeySecretName=prod/temporal-api-key"
        ),
        "{commands}"
    );
    assert!(
        commands.contains(&format!("--layers {layer}")),
        "{commands}"
    );
    assert!(stderr.is_empty() || !stderr.contains("warning"), "{stderr}");

    // Without the extension's layer, a warning says what will happen.
    let mut args = GUIDE_ARGS.to_vec();
    args.extend(["--api-key-secret", "prod/temporal-api-key"]);
    let (_, stderr) = text(&dry_run(&args));
    assert!(
        stderr.contains("without the AWS Parameters and Secrets Lambda Extension layer"),
        "{stderr}"
    );
    // An ARN is refused with the fix.
    let mut args = GUIDE_ARGS.to_vec();
    args.extend([
        "--api-key-secret",
        "arn:aws:secretsmanager:us-east-1:1:secret:x",
    ]);
    let output = dry_run(&args);
    assert!(!output.status.success());
    assert!(
        text(&output).1.contains("give the secret's name"),
        "{:?}",
        text(&output)
    );
}

#[test]
fn the_guide_shows_exactly_what_the_dry_run_prints() {
    let guide = std::fs::read_to_string(repo_root().join("docs/DEPLOYMENT.md")).unwrap();
    let begin = "<!-- deploy-dry-run:begin -->\n```sh\n";
    let start = guide.find(begin).expect("the guide has the dry-run block") + begin.len();
    let end = start
        + guide[start..]
            .find("```\n<!-- deploy-dry-run:end -->")
            .unwrap();
    let block = &guide[start..end];
    let (command_line, shown) = block.split_once('\n').unwrap();
    let documented = command_line
        .strip_prefix("$ examples/greeting/deploy/deploy.sh ")
        .expect("the block starts with the command");
    // The guide shows a placeholder where the test passes a key.
    let documented = documented.replace("\"$TEMPORAL_API_KEY\"", API_KEY);
    assert_eq!(
        documented.split_whitespace().collect::<Vec<_>>(),
        GUIDE_ARGS,
        "the guide's dry-run command line"
    );
    let (stdout, _) = text(&dry_run(GUIDE_ARGS));
    assert_eq!(
        shown, stdout,
        "docs/DEPLOYMENT.md's dry-run block is out of date: paste the new output"
    );
}

#[test]
fn dry_run_of_a_self_hosted_x86_64_deploy_with_an_existing_zip_and_execution_role() {
    let output = dry_run(&[
        "--dry-run",
        "--trust",
        "self-hosted",
        "--temporal-principal",
        "arn:aws:iam::111122223333:role/temporal-server",
        "--external-id",
        "ext-42",
        "--zip",
        "target/lambda/x86_64/my-worker/bootstrap.zip",
        "--arch",
        "x86_64",
        "--execution-role-arn",
        "arn:aws:iam::111122223333:role/my-worker-execution",
        "--function-name",
        "my-worker",
        "--timeout",
        "300",
        "--memory",
        "512",
        "--env",
        "RUST_LOG=debug",
        "--layer",
        "arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0:1",
        "--tracing",
        "Active",
        "--deployment-name",
        "orders",
        "--build-id",
        "2024-06-01.3",
        "--task-queue",
        "orders-tq",
        "--no-set-current",
    ]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let commands = commands(&stdout);
    for expected in [
        "ZIP=target/lambda/x86_64/my-worker/bootstrap.zip",
        "EXECUTION_ROLE_ARN=arn:aws:iam::111122223333:role/my-worker-execution",
        r#"{"Variables":{"TEMPORAL_TASK_QUEUE":"orders-tq","RUST_LOG":"debug"}}"#,
        r#"aws lambda create-function --function-name my-worker --architectures x86_64 --zip-file fileb://target/lambda/x86_64/my-worker/bootstrap.zip --runtime provided.al2023 --handler bootstrap --role arn:aws:iam::111122223333:role/my-worker-execution --timeout 300 --memory-size 512 --environment "file://$ENVIRONMENT_FILE" --layers arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0:1 --tracing-config Mode=Active"#,
        r#"aws cloudformation deploy --stack-name my-worker-temporal-invoker --template-file examples/greeting/deploy/invocation-role-self-hosted.yaml --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides "FunctionArn=$FUNCTION_ARN" ExternalId=ext-42 TemporalPrincipalArn=arn:aws:iam::111122223333:role/temporal-server"#,
        r#"temporal worker deployment create-version --deployment-name orders --build-id 2024-06-01.3 --aws-lambda-function-arn "$FUNCTION_VERSION_ARN" --aws-lambda-assume-role-arn "$INVOCATION_ROLE_ARN" --aws-lambda-assume-role-external-id ext-42"#,
    ] {
        assert!(
            commands.lines().any(|line| line == expected),
            "missing:\n{expected}\nin:\n{commands}"
        );
    }
    for absent in [
        "ZIP=$(",
        "aws cloudformation deploy --stack-name my-worker-execution-role",
        "temporal worker deployment set-current-version",
    ] {
        assert!(
            !commands.lines().any(|line| line.starts_with(absent)),
            "{absent} should not be in:\n{commands}"
        );
    }
    assert!(!commands.contains("TEMPORAL_API_KEY"), "{commands}");
}

#[test]
fn wrong_or_missing_settings_are_refused_before_anything_runs() {
    for (args, message) in [
        (&["--dry-run"][..], "--external-id"),
        (
            &[
                "--dry-run",
                "--external-id",
                "ext-1",
                "--trust",
                "self-hosted",
            ][..],
            "--temporal-principal",
        ),
        (
            &["--dry-run", "--external-id", "ext-1", "--timeout", "901"][..],
            "--timeout must be 1-900",
        ),
        (
            &["--dry-run", "--external-id", "ext-1", "--arch", "mips"][..],
            "--arch must be arm64 or x86_64",
        ),
        (
            &["--dry-run", "--external-id", "ext-1", "--env", "no-equals"][..],
            "is not KEY=VALUE",
        ),
        (
            &["--dry-run", "--external-id", "ext-1", "--temporal-only"][..],
            "--function-arn",
        ),
        (&["--dry-run", "--bogus"][..], "unknown option"),
    ] {
        let output = dry_run(args);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed commands: {stdout}");
    }
    let help = dry_run(&["--help"]);
    assert!(help.status.success());
    assert!(text(&help).0.contains("--temporal-only"));
}

#[test]
fn the_cloudformation_templates_pass_cfn_lint() {
    let output = Command::new("bash")
        .arg(repo_root().join("examples/greeting/deploy/lint-templates.sh"))
        .output()
        .expect("bash runs");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("invocation-role-cloud.yaml"), "{stdout}");
}

/// The function lambda-local serves: its bootstrap, task root, and the version it polls as.
struct Package {
    command: Vec<String>,
    /// The bootstrap is arm64, run under user-mode emulation (`qemu-aarch64-static`).
    emulated: bool,
    task_root: PathBuf,
    deployment: &'static str,
    build_id: &'static str,
    env: Vec<(&'static str, String)>,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("deploy-script-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The arm64 glibc an emulated bootstrap loads (Debian's libc6-arm64-cross).
const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// Whether `path` is an ELF executable for aarch64 (`e_machine` 183).
fn is_arm64_elf(path: &Path) -> bool {
    let header = std::fs::read(path).unwrap_or_default();
    header.starts_with(b"\x7fELF") && header.get(18..20) == Some(&183u16.to_le_bytes()[..])
}

fn package() -> Package {
    let dir = TempDir::new();
    if let Some(zip) = std::env::var_os("DEPLOY_TEST_ZIP") {
        // Unpacked as Lambda does into its task root; zipfile drops the mode bits.
        let status = Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&zip)
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "cannot unpack {zip:?}");
        let bootstrap = dir.path().join("bootstrap");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            dir.path().join("temporal.toml").is_file(),
            "temporal.toml is at the root of the package"
        );
        // An arm64 package (the README's default) runs under Debian's qemu-user-static, with
        // the arm64 glibc of Debian's libc6-arm64-cross as its root for the dynamic loader
        // (provided.al2023 has its own glibc; the bootstrap links against it dynamically).
        let emulated = is_arm64_elf(&bootstrap);
        let mut command = vec![bootstrap.display().to_string()];
        if emulated {
            assert!(
                Path::new(ARM64_SYSROOT)
                    .join("lib/ld-linux-aarch64.so.1")
                    .is_file(),
                "an arm64 package runs under emulation here: apt-get install qemu-user-static \
                 libc6-arm64-cross"
            );
            let emulator = ["qemu-aarch64-static", "-L", ARM64_SYSROOT];
            command.splice(0..0, emulator.map(str::to_owned));
        }
        Package {
            command,
            emulated,
            task_root: dir.path().to_owned(),
            // The greeting-worker's own version.
            deployment: greeting::DEPLOYMENT_NAME,
            build_id: greeting::BUILD_ID,
            env: Vec::new(),
            _dir: dir,
        }
    } else {
        std::fs::copy(
            repo_root().join("examples/greeting/temporal.toml"),
            dir.path().join("temporal.toml"),
        )
        .unwrap();
        Package {
            command: vec![env!("CARGO_BIN_EXE_test-worker").to_owned()],
            emulated: false,
            task_root: dir.path().to_owned(),
            deployment: "deploy-script",
            build_id: "build-7",
            env: vec![
                ("TEST_WORKER_DEPLOYMENT", "deploy-script".to_owned()),
                ("TEST_WORKER_BUILD_ID", "build-7".to_owned()),
            ],
            _dir: dir,
        }
    }
}

#[test]
fn the_temporal_half_attaches_the_function_for_real_and_a_workflow_completes_through_it() {
    const FUNCTION: &str = "deploy-script-worker";
    const TASK_QUEUE: &str = "deploy-script-tq";
    let package = package();
    // The local environment and the dev server live on a runtime of their own, which outlives
    // everything they start (processes are spawned from its threads).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let role = common::role("deploy-script-external-id");
    let common::Local {
        cli,
        lambda,
        server,
    } = common::start(&runtime, &role);
    let mut function = FunctionConfig::new(FUNCTION, package.command.clone(), &package.task_root);
    function.timeout = Duration::from_secs(15);
    if package.emulated {
        // Emulation costs several times the CPU of native code: an emulated function gets the
        // share of 1,024 MB (58 % of a CPU) so that it runs about as fast as a native one at
        // 128 MB would; this run shows the arm64 binary works, not how fast it is.
        function.memory_mb = 1024;
    }
    // What the AWS half sets as the function's environment.
    function
        .env
        .insert("TEMPORAL_ADDRESS".into(), server.address.clone());
    function
        .env
        .insert("TEMPORAL_TASK_QUEUE".into(), TASK_QUEUE.into());
    for (key, value) in &package.env {
        function.env.insert((*key).into(), value.clone());
    }
    {
        let _guard = runtime.enter();
        lambda.add_function(function).unwrap();
    }
    let function_arn = lambda.version_arn(FUNCTION).unwrap();

    let deploy = |extra: &[&str]| {
        Command::new("bash")
            .arg(script())
            .args(["--temporal-only", "--function-arn", &function_arn])
            .args(["--role-arn", &role.arn, "--external-id", &role.external_id])
            .args(["--address", &server.address, "--namespace", "default"])
            .args(["--deployment-name", package.deployment])
            .args(["--build-id", package.build_id])
            .args(["--task-queue", TASK_QUEUE, "--wait", "90"])
            .args(extra)
            .current_dir(repo_root())
            .env("TEMPORAL_CLI", &cli)
            .env_remove("TEMPORAL_API_KEY")
            .output()
            .unwrap()
    };
    let output = deploy(&[]);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "deploy.sh failed:\n{stdout}\n{stderr}"
    );
    let transcript = commands(&stdout);
    let (deployment, build_id) = (package.deployment, package.build_id);
    for expected in [
        format!(
            "export TEMPORAL_ADDRESS={} TEMPORAL_NAMESPACE=default",
            server.address
        ),
        format!("temporal worker deployment create --name {deployment}"),
        format!(
            "temporal worker deployment create-version --deployment-name {deployment} --build-id {build_id} --aws-lambda-function-arn {function_arn} --aws-lambda-assume-role-arn {} --aws-lambda-assume-role-external-id {}",
            role.arn, role.external_id
        ),
        format!(
            "temporal worker deployment set-current-version --deployment-name {deployment} --build-id {build_id} --yes"
        ),
    ] {
        assert!(
            transcript.lines().any(|line| line == expected),
            "missing:\n{expected}\nin:\n{transcript}"
        );
    }
    assert!(!transcript.contains("aws "), "{transcript}");

    // The version is current: a workflow started on the task queue runs on it, in an
    // invocation of the attached function version.
    let address = server.address.clone();
    let (result, description) = runtime.block_on(async {
        let url = Url::from_str(&format!("http://{address}")).unwrap();
        let client = Client::connect(
            ConnectionOptions::new(url).build(),
            ClientOptions::new("default").build(),
        )
        .await
        .unwrap();
        let handle = client
            .start_workflow(
                GreetingWorkflow::run,
                "deploy script".to_owned(),
                WorkflowStartOptions::new(TASK_QUEUE, "deploy-script-1").build(),
            )
            .await
            .unwrap();
        let result = tokio::time::timeout(
            Duration::from_secs(90),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .expect("the workflow completed within 90s")
        .unwrap();
        let description = server
            .cli(&[
                "workflow",
                "describe",
                "-w",
                "deploy-script-1",
                "-o",
                "json",
            ])
            .await
            .unwrap();
        (result, description)
    });
    assert_eq!(result, "Hello, deploy script!");
    let description: serde_json::Value = serde_json::from_str(&description).unwrap();
    let versioning = &description["workflowExecutionInfo"]["versioningInfo"];
    assert_eq!(
        versioning["deploymentVersion"]["deploymentName"], deployment,
        "{description:#}"
    );
    assert_eq!(
        versioning["deploymentVersion"]["buildId"], build_id,
        "{description:#}"
    );
    // The invocation that ran the activity ends at its deadline minus the buffer.
    let records_of_the_function = || -> Vec<_> {
        lambda
            .records()
            .into_iter()
            .filter(|r| r.function_name == FUNCTION)
            .collect()
    };
    let waiting = std::time::Instant::now();
    while !records_of_the_function()
        .iter()
        .any(|r| r.activity_tasks.unwrap_or(0) > 0)
    {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "no invocation ran the activity: {:?}",
            records_of_the_function()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let records = records_of_the_function();
    assert!(
        records
            .iter()
            .all(|r| r.function_version == "1" && r.invocation_type == "Event"),
        "{records:?}"
    );
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Success),
        "{records:?}"
    );

    // The same build id again: refused (Temporal does not show which function a version is
    // attached to, so the script cannot tell a re-run from new code under an old build id)...
    let again = deploy(&[]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(text(&again).1.contains("already exists"), "{again:?}");
    // ...unless told to re-point the version, which then keeps working.
    let repointed = deploy(&["--update-existing"]);
    let (stdout, stderr) = text(&repointed);
    assert!(repointed.status.success(), "{stdout}\n{stderr}");
    assert!(
        commands(&stdout).contains(&format!(
            "temporal worker deployment update-version-compute-config --deployment-name {deployment} --build-id {build_id} --aws-lambda-function-arn {function_arn}"
        )),
        "{stdout}"
    );

    runtime.block_on(async {
        server.stop().await;
        lambda.shutdown().await;
    });
}
