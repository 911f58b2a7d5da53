//! Function logs and the reasons for failed inits and crashes, through the public API, with real
//! processes: a small Python Lambda runtime client and shell scripts as functions.

use std::time::Duration;

use lambda_local::{
    Config, FunctionConfig, InvocationRecord, LocalLambda, LogLine, LogSource, Outcome, RoleConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Lambda function in Python: prints on both streams at init and per event, answers `"ok"`,
/// and dies with status 7 on an event `{"crash": true}` after saying why on stderr.
const PYTHON_FUNCTION: &str = r#"
import json, os, sys, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
print("init on stdout, runtime api at " + api, flush=True)
print("init on stderr", file=sys.stderr, flush=True)
while True:
    with urllib.request.urlopen("http://" + api + "/2018-06-01/runtime/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    print("handling " + request_id + " on stdout", flush=True)
    print("handling " + request_id + " on stderr", file=sys.stderr, flush=True)
    if event.get("crash"):
        print("about to crash: the disk is on fire", file=sys.stderr, flush=True)
        os._exit(7)
    url = "http://" + api + "/2018-06-01/runtime/invocation/" + request_id + "/response"
    urllib.request.urlopen(urllib.request.Request(url, data=b'"ok"', method="POST")).read()
"#;

fn python_function(name: &str) -> FunctionConfig {
    let mut function = FunctionConfig::new(
        name,
        vec![
            "python3".to_owned(),
            "-c".to_owned(),
            PYTHON_FUNCTION.to_owned(),
        ],
        env!("CARGO_MANIFEST_DIR"),
    );
    function.timeout = Duration::from_secs(20);
    function
}

fn shell_function(name: &str, script: &str) -> FunctionConfig {
    FunctionConfig::new(
        name,
        vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
        env!("CARGO_MANIFEST_DIR"),
    )
}

async fn start() -> LocalLambda {
    let role = RoleConfig {
        arn: "arn:aws:iam::123456789012:role/r".to_owned(),
        external_id: "x".to_owned(),
    };
    LocalLambda::start(Config {
        forward_logs: false,
        ..Config::new(role)
    })
    .await
    .unwrap()
}

/// One HTTP/1.1 exchange with the environment: the status, the lower-cased head and the body.
async fn http(lambda: &LocalLambda, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let address = lambda.endpoint().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, head.to_lowercase(), body.to_owned())
}

/// Invokes synchronously; returns the head and body of the answer.
async fn invoke(lambda: &LocalLambda, function: &str, payload: &str) -> (String, String) {
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let (status, head, body) = http(lambda, "POST", &path, payload).await;
    assert_eq!(status, 200, "{head}\n{body}");
    (head, body)
}

fn record(lambda: &LocalLambda, function: &str) -> InvocationRecord {
    let mut records: Vec<_> = lambda
        .records()
        .into_iter()
        .filter(|r| r.function_name == function)
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    records.remove(0)
}

fn texts(lines: &[LogLine], source: LogSource) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.source == source)
        .map(|l| l.text.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_a_function_writes_and_its_invocations_are_kept_in_its_own_log() {
    let lambda = start().await;
    lambda.add_function(python_function("logs-a")).unwrap();
    lambda.add_function(python_function("logs-b")).unwrap();
    let (_, body) = invoke(&lambda, "logs-a", "{}").await;
    assert_eq!(body, "\"ok\"");
    invoke(&lambda, "logs-a", "{}").await;
    invoke(&lambda, "logs-b", "{}").await;
    let ids: Vec<String> = lambda
        .records()
        .into_iter()
        .filter(|r| r.function_name == "logs-a")
        .map(|r| r.request_id)
        .collect();
    assert_eq!(ids.len(), 2);

    let a = lambda.logs("logs-a");
    let stdout = texts(&a, LogSource::Stdout);
    let stderr = texts(&a, LogSource::Stderr);
    let platform = texts(&a, LogSource::Platform);
    // Init output once (the second invocation was warm), then each invocation's own lines.
    assert_eq!(
        stdout
            .iter()
            .filter(|l| l.starts_with("init on stdout"))
            .count(),
        1,
        "{a:#?}"
    );
    // The function found its Runtime API on loopback.
    assert!(
        stdout[0].starts_with("init on stdout, runtime api at 127.0.0.1:"),
        "{a:#?}"
    );
    assert_eq!(stderr[0], "init on stderr", "{a:#?}");
    for id in &ids {
        assert!(stdout.contains(&format!("handling {id} on stdout").as_str()));
        assert!(stderr.contains(&format!("handling {id} on stderr").as_str()));
        let start = format!("START RequestId: {id} Version: 1");
        let end = format!("END RequestId: {id}");
        let at = |text: &str| platform.iter().position(|l| l.starts_with(text));
        let (start, end, report) = (
            at(&start).unwrap_or_else(|| panic!("{start} in {platform:#?}")),
            at(&end).unwrap_or_else(|| panic!("{end} in {platform:#?}")),
            at(&format!("REPORT RequestId: {id}")).expect("a REPORT line"),
        );
        assert!(start < end && end < report, "{platform:#?}");
    }
    // In order: the handling lines of the first invocation come after its START line.
    let position = |text: &str| a.iter().position(|l| l.text == text).unwrap();
    assert!(
        position(&format!("START RequestId: {} Version: 1", ids[0]))
            < position(&format!("handling {} on stdout", ids[0]))
    );

    // The other function's log holds only its own invocation.
    let b = lambda.logs("logs-b");
    assert!(!b.is_empty());
    assert!(
        b.iter()
            .all(|l| !ids.iter().any(|id| l.text.contains(id.as_str()))),
        "{b:#?}"
    );

    // The same log over HTTP.
    let (status, _, body) = http(&lambda, "GET", "/_local/logs/logs-a", "").await;
    assert_eq!(status, 200);
    let over_http: Vec<LogLine> = serde_json::from_str(&body).unwrap();
    assert_eq!(over_http, lambda.logs("logs-a"));
    lambda.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_init_says_why_with_the_last_lines_of_stderr() {
    let lambda = start().await;
    let script = "echo 'on stdout, not quoted'; \
                  for i in 1 2 3 4 5 6; do echo \"detail $i\" >&2; done; \
                  echo 'fatal: TEMPORAL_TASK_QUEUE is not set' >&2; exit 3";
    lambda
        .add_function(shell_function("init-fails", script))
        .unwrap();
    let (head, body) = invoke(&lambda, "init-fails", "{}").await;
    assert!(head.contains("x-amz-function-error: unhandled"), "{head}");
    let record = record(&lambda, "init-fails");
    assert_eq!(record.outcome, Outcome::InitError);
    assert_eq!(record.error_type.as_deref(), Some("Runtime.ExitError"));
    let message = record.error_message.unwrap();
    assert_eq!(
        message,
        "the function exited during init: exit status: 3; its last 5 stderr lines: \
         detail 3 | detail 4 | detail 5 | detail 6 | fatal: TEMPORAL_TASK_QUEUE is not set"
    );
    // The caller gets the same reason.
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["errorMessage"], message.as_str());
    // The whole output is in the log, stdout too.
    let log = lambda.logs("init-fails");
    assert!(
        texts(&log, LogSource::Stdout).contains(&"on stdout, not quoted"),
        "{log:#?}"
    );
    assert_eq!(texts(&log, LogSource::Stderr).len(), 7, "{log:#?}");
    assert!(texts(&log, LogSource::Platform)[0].ends_with("Status: init_error"));
    lambda.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_stderr_is_bounded_and_silence_is_said() {
    let lambda = start().await;
    let script = "head -c 100000 /dev/zero | tr '\\0' x >&2; echo >&2; exit 1";
    lambda
        .add_function(shell_function("long-line", script))
        .unwrap();
    lambda
        .add_function(shell_function("silent", "exit 2"))
        .unwrap();
    invoke(&lambda, "long-line", "{}").await;
    invoke(&lambda, "silent", "{}").await;
    let long = record(&lambda, "long-line").error_message.unwrap();
    assert!(long.len() < 1200, "{} bytes", long.len());
    assert!(long.contains("xxxx [truncated]"), "{long}");
    let silent = record(&lambda, "silent").error_message.unwrap();
    assert_eq!(
        silent,
        "the function exited during init: exit status: 2; it wrote nothing to stderr"
    );
    lambda.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_an_invocation_says_why_with_the_last_lines_of_stderr() {
    let lambda = start().await;
    lambda.add_function(python_function("crashes")).unwrap();
    let (head, body) = invoke(&lambda, "crashes", r#"{"crash": true}"#).await;
    assert!(head.contains("x-amz-function-error: unhandled"), "{head}");
    let record = record(&lambda, "crashes");
    assert_eq!(record.outcome, Outcome::Crashed);
    let message = record.error_message.unwrap();
    let id = &record.request_id;
    assert!(
        message.starts_with(&format!(
            "Runtime exited without providing a reason (exit status: 7) during {id}; \
             its last 3 stderr lines: init on stderr | handling {id} on stderr | "
        )),
        "{message}"
    );
    assert!(
        message.ends_with("about to crash: the disk is on fire"),
        "{message}"
    );
    assert!(body.contains("the disk is on fire"), "{body}");
    lambda.shutdown().await;
}
