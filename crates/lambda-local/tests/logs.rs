//! Function logs and the reasons for failed inits and crashes, through the public API, with real
//! processes: a small Python Lambda runtime client and shell scripts as functions.

mod common;

use common::{http, invoke, python_function, record, shell_function, start};
use lambda_local::{LogLine, LogSource, Outcome};

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
    assert!(
        texts(&log, LogSource::Platform)[0]
            .ends_with("Status: error\tError Type: Runtime.ExitError")
    );
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
