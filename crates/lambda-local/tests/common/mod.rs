//! Shared by lambda-local's integration tests: functions made of real processes (a small
//! Python Lambda runtime client, shell scripts) and HTTP calls to the environment.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::time::Duration;

use lambda_local::{Config, FunctionConfig, InvocationRecord, LocalLambda, RoleConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Lambda function in Python: prints on both streams at init and per event, answers `"ok"`
/// (or, for `{"respond_bytes": n}`, a JSON string of `n` bytes with its quotes), and dies with
/// status 7 on an event `{"crash": true}` after saying why on stderr. `{"spin_s": s,
/// "processes": n}` keeps n processes busy for s seconds and answers the CPU time they got
/// (`{"cpu_s": .., "wall_s": ..}`); `{"allocate_mb": n}` touches n MB before answering;
/// `{"echo_context": true}` answers the client context and Cognito identity headers it got;
/// `{"fetch": path}` answers what the Parameters and Secrets extension's endpoint said to a GET
/// of `path` (`{"status": .., "body": ..}`), with the session token or `"token"`. With
/// `SIGTERM_EXIT_MS` set, it takes that long to exit on SIGTERM (a runtime flushing at shutdown).
pub const PYTHON_FUNCTION: &str = r#"
import json, os, resource, signal, sys, time, urllib.error, urllib.request
if "SIGTERM_EXIT_MS" in os.environ:
    def exit_slowly(*_):
        time.sleep(int(os.environ["SIGTERM_EXIT_MS"]) / 1000)
        os._exit(0)
    signal.signal(signal.SIGTERM, exit_slowly)
def cpu_seconds():
    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)
def spin(seconds, processes):
    before, started = cpu_seconds(), time.monotonic()
    def burn():
        while time.monotonic() < started + seconds:
            pass
    children = []
    for _ in range(processes - 1):
        child = os.fork()
        if child == 0:
            burn()
            os._exit(0)
        children.append(child)
    burn()
    for child in children:
        os.waitpid(child, 0)
    return {"cpu_s": cpu_seconds() - before, "wall_s": time.monotonic() - started}
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
print("init on stdout, runtime api at " + api, flush=True)
print("init on stderr", file=sys.stderr, flush=True)
while True:
    with urllib.request.urlopen("http://" + api + "/2018-06-01/runtime/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        context = {name: r.headers.get("Lambda-Runtime-" + name)
                   for name in ("Client-Context", "Cognito-Identity")}
        event = json.loads(r.read())
    print("handling " + request_id + " on stdout", flush=True)
    print("handling " + request_id + " on stderr", file=sys.stderr, flush=True)
    if isinstance(event, dict) and event.get("crash"):
        print("about to crash: the disk is on fire", file=sys.stderr, flush=True)
        os._exit(7)
    url = "http://" + api + "/2018-06-01/runtime/invocation/" + request_id + "/response"
    answer = b'"ok"'
    if isinstance(event, dict) and "respond_bytes" in event:
        answer = b'"' + b"x" * (event["respond_bytes"] - 2) + b'"'
    if isinstance(event, dict) and "spin_s" in event:
        answer = json.dumps(spin(event["spin_s"], event.get("processes", 1))).encode()
    if isinstance(event, dict) and "fetch" in event:
        port = os.environ["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"]
        token = event.get("token", os.environ["AWS_SESSION_TOKEN"])
        fetch = urllib.request.Request("http://localhost:" + port + event["fetch"],
                                       headers={"X-Aws-Parameters-Secrets-Token": token})
        try:
            with urllib.request.urlopen(fetch) as got:
                answer = json.dumps({"status": got.status, "body": json.loads(got.read())})
        except urllib.error.HTTPError as refused:
            answer = json.dumps({"status": refused.code, "body": json.loads(refused.read())})
        answer = answer.encode()
    if isinstance(event, dict) and event.get("echo_context"):
        answer = json.dumps(context).encode()
    if isinstance(event, dict) and "allocate_mb" in event:
        held = b"x" * (event["allocate_mb"] << 20)
        del held
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=answer, method="POST")).read()
    except urllib.error.HTTPError as refused:
        print("response refused: " + str(refused.code), file=sys.stderr, flush=True)
"#;

pub fn python_function(name: &str) -> FunctionConfig {
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

pub fn shell_function(name: &str, script: &str) -> FunctionConfig {
    FunctionConfig::new(
        name,
        vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
        env!("CARGO_MANIFEST_DIR"),
    )
}

pub async fn start() -> LocalLambda {
    start_with(|_| {}).await
}

/// [`start`] with changes to the configuration.
pub async fn start_with(change: impl FnOnce(&mut Config)) -> LocalLambda {
    let role = RoleConfig {
        arn: "arn:aws:iam::123456789012:role/r".to_owned(),
        external_id: "x".to_owned(),
    };
    let mut config = Config {
        forward_logs: false,
        ..Config::new(role)
    };
    change(&mut config);
    LocalLambda::start(config).await.unwrap()
}

/// One HTTP/1.1 exchange with the environment: the status, the lower-cased head and the body.
pub async fn http(
    lambda: &LocalLambda,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    http_with_headers(lambda, method, path, &[], body).await
}

/// [`http`] with more request headers.
pub async fn http_with_headers(
    lambda: &LocalLambda,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let address = lambda.endpoint().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
pub async fn invoke(lambda: &LocalLambda, function: &str, payload: &str) -> (String, String) {
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let (status, head, body) = http(lambda, "POST", &path, payload).await;
    assert_eq!(status, 200, "{head}\n{body}");
    (head, body)
}

pub fn record(lambda: &LocalLambda, function: &str) -> InvocationRecord {
    let mut records: Vec<_> = lambda
        .records()
        .into_iter()
        .filter(|r| r.function_name == function)
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    records.remove(0)
}
