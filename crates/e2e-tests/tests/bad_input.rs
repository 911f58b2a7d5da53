//! Bad input, each case through the real bootstrap (`test-worker`): one clear line naming the
//! problem and the fix, exit status 1 before anything is served, no panic. The bad-input tables
//! in the library's `docs/TROUBLESHOOTING.md` (also its rustdoc, `guide::troubleshooting`) must
//! quote each message, so this test also keeps those tables true.

mod common;

use std::{path::Path, process::Command, time::Duration};

use lambda_local::{Config, FunctionConfig, LocalLambda};

const TROUBLESHOOTING: &str = include_str!("../../temporal-lambda-worker/docs/TROUBLESHOOTING.md");

/// Runs the bootstrap in `dir` with only `vars` (and `PATH`) in its environment.
fn run_bootstrap(dir: &Path, vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_test-worker"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

/// The one fatal line of a failed cold start.
fn fatal_line(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let fatal: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("temporal-lambda-worker: "))
        .collect();
    assert_eq!(fatal.len(), 1, "one fatal line: {stderr}");
    fatal[0].to_owned()
}

/// A case: its name, the bootstrap's environment, and what its message must quote.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

/// Asserts that `message` contains `quoted` and that the troubleshooting table quotes it too.
fn assert_quoted(case: &str, message: &str, quoted: &str) {
    assert!(
        message.contains(quoted),
        "{case}: '{quoted}' not in: {message}"
    );
    assert!(
        TROUBLESHOOTING.contains(quoted),
        "{case}: the TROUBLESHOOTING.md table does not quote: {quoted}"
    );
}

#[test]
fn every_bad_setting_stops_the_cold_start_with_one_line_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "[profile.default]\naddress = \"localhost:7233\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("temporal.toml"),
        "[profile.default]\naddress = \"localhost:7233\"\n",
    )
    .unwrap();
    let queue = ("TEMPORAL_TASK_QUEUE", "q");
    let cases: &[Case] = &[
        (
            "malformed temporal.toml",
            &[queue, ("TEMPORAL_CONFIG_FILE", "broken.toml")],
            "broken.toml: invalid TOML at line 2, column 26",
        ),
        (
            "missing config file",
            &[queue, ("TEMPORAL_CONFIG_FILE", "nope.toml")],
            "nope.toml, which does not exist: fix the path or unset the variable",
        ),
        (
            "unknown profile",
            &[queue, ("TEMPORAL_PROFILE", "prod")],
            "profile 'prod' is not in the file: add a [profile.prod] table or fix TEMPORAL_PROFILE",
        ),
        (
            "missing task queue",
            &[("TEST_WORKER_MISCONFIGURE", "no-task-queue")],
            "no task queue: set TEMPORAL_TASK_QUEUE in the function's environment, or \
             options.worker.task_queue in configure",
        ),
        (
            "empty build id",
            &[queue, ("TEST_WORKER_BUILD_ID", "")],
            "worker version: the build id is empty: pass both to run_worker",
        ),
        (
            "empty version",
            &[
                queue,
                ("TEST_WORKER_BUILD_ID", ""),
                ("TEST_WORKER_DEPLOYMENT", ""),
            ],
            "the deployment name and the build id are empty",
        ),
        (
            "non-numeric buffer",
            &[queue, ("TEMPORAL_LAMBDA_SHUTDOWN_BUFFER", "seven")],
            "TEMPORAL_LAMBDA_SHUTDOWN_BUFFER is 'seven': not a duration; write a whole number \
             with a unit, for example 7s, 1500ms or 2m",
        ),
        (
            "buffer without a unit",
            &[queue, ("TEMPORAL_LAMBDA_SHUTDOWN_BUFFER", "7")],
            "TEMPORAL_LAMBDA_SHUTDOWN_BUFFER is '7': the unit is missing",
        ),
        (
            "zero buffer",
            &[queue, ("TEMPORAL_LAMBDA_SHUTDOWN_BUFFER", "0s")],
            "TEMPORAL_LAMBDA_SHUTDOWN_BUFFER is '0s': it must be greater than zero",
        ),
        (
            "stop timeout beyond the buffer",
            &[
                queue,
                ("TEMPORAL_LAMBDA_STOP_TIMEOUT", "10s"),
                ("TEMPORAL_LAMBDA_SHUTDOWN_BUFFER", "7s"),
            ],
            "must exceed the worker stop timeout (10000ms; TEMPORAL_LAMBDA_STOP_TIMEOUT or \
             worker.graceful_shutdown_period) by at least 1s",
        ),
        (
            "idle exit too short",
            &[queue, ("TEMPORAL_LAMBDA_IDLE_EXIT", "10ms")],
            "idle exit of 10ms (TEMPORAL_LAMBDA_IDLE_EXIT or idle_exit) is too short",
        ),
        (
            "lookahead not a duration",
            &[queue, ("TEMPORAL_LAMBDA_IDLE_LOOKAHEAD", "soon")],
            "TEMPORAL_LAMBDA_IDLE_LOOKAHEAD is 'soon': not a duration",
        ),
        (
            "reuse switch not a boolean",
            &[queue, ("TEMPORAL_LAMBDA_REUSE_CONNECTION", "maybe")],
            "TEMPORAL_LAMBDA_REUSE_CONNECTION is 'maybe': use true or false",
        ),
        (
            "secret named without its store",
            &[queue, ("TEMPORAL_API_KEY_SECRET", "prod/temporal-key")],
            "TEMPORAL_API_KEY_SECRET = prod/temporal-key: name it as secretsmanager:<secret name \
             or ARN>, ssm:<parameter name>, or an ARN of either",
        ),
        (
            "secret and value both set",
            &[
                queue,
                ("TEMPORAL_API_KEY", "k"),
                ("TEMPORAL_API_KEY_SECRET", "ssm:/temporal/key"),
            ],
            "TEMPORAL_API_KEY_SECRET = ssm:/temporal/key: TEMPORAL_API_KEY is set too: keep one \
             of the two",
        ),
        (
            "address without port",
            &[queue, ("TEMPORAL_ADDRESS", "temporal.internal")],
            "address 'temporal.internal' has no port: write host:port",
        ),
        (
            "unreadable TLS file",
            &[
                queue,
                ("TEMPORAL_ADDRESS", "h:7233"),
                ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "/no/such/ca.pem"),
            ],
            "tls.server_ca_cert: cannot read '/no/such/ca.pem'",
        ),
        (
            "not inside Lambda",
            &[queue],
            "AWS_LAMBDA_RUNTIME_API is not set, so this is not a Lambda execution environment",
        ),
    ];
    for (case, vars, quoted) in cases {
        let line = fatal_line(&run_bootstrap(dir.path(), vars));
        assert_quoted(case, &line, quoted);
    }
}

#[test]
fn invocation_time_mistakes_fail_the_invocation_not_the_process() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lambda = runtime
        .block_on(LocalLambda::start(Config::new(common::role("bad-input"))))
        .unwrap();
    // A buffer (7 s by default) at least as long as the function timeout leaves no work time.
    let mut function = FunctionConfig::new(
        "short-timeout",
        vec![env!("CARGO_BIN_EXE_test-worker").to_owned()],
        env!("CARGO_MANIFEST_DIR"),
    );
    function.timeout = Duration::from_secs(5);
    function
        .env
        .insert("TEMPORAL_ADDRESS".into(), "127.0.0.1:1".into());
    {
        let _guard = runtime.enter();
        lambda.add_function(function).unwrap();
    }
    let address = lambda.endpoint().trim_start_matches("http://").to_owned();
    let invoke = |payload: &str| {
        common::http(
            &address,
            "POST",
            "/2015-03-31/functions/short-timeout/invocations",
            payload,
        )
    };
    let (status, body) = invoke("{}");
    assert_eq!(
        status, 200,
        "a function error is a 200 with an error body: {body}"
    );
    assert_quoted(
        "buffer at least the function timeout",
        &body,
        "more than 1s is needed: raise the function timeout or lower shutdown_deadline_buffer",
    );
    assert!(
        body.contains("TemporalLambdaWorker.DeadlineTooClose"),
        "{body}"
    );
    // The environment survived its failed invocation and serves the next one.
    let (_, again) = invoke("{}");
    assert!(again.contains("DeadlineTooClose"), "{again}");
    let records = lambda.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].environment, records[0].environment);
    assert!(!records[1].cold_start);

    // Lambda refuses a payload that is not JSON before any function sees it.
    let (status, body) = invoke("not json");
    assert_eq!(status, 400, "{body}");
    assert_quoted(
        "payload not JSON",
        &body,
        "Could not parse request body into json",
    );
    assert_eq!(lambda.records().len(), 2, "the function was not invoked");
    // Any JSON value is accepted; the worker does not read its payload.
    let (status, body) = invoke("[1, \"two\"]");
    assert_eq!(status, 200, "{body}");
    runtime.block_on(lambda.shutdown());
}
