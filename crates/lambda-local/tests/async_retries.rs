//! Lambda's retries of a failed asynchronous (`Event`) invocation: the same event, with the same
//! request id, twice more after the configured delays (Lambda: one minute, then two); none for
//! a success, none when the function sets no retries.

mod common;

use std::time::Duration;

use common::{http_with_headers, python_function, start};
use lambda_local::{InvocationRecord, LocalLambda, Outcome};

/// Sends an `Event` invocation; returns its request id.
async fn send_event(lambda: &LocalLambda, function: &str, payload: &str) -> String {
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let headers = [("X-Amz-Invocation-Type", "Event")];
    let (status, head, _) = http_with_headers(lambda, "POST", &path, &headers, payload).await;
    assert_eq!(status, 202, "{head}");
    head.lines()
        .find_map(|line| line.strip_prefix("x-amzn-requestid: "))
        .unwrap()
        .trim()
        .to_owned()
}

/// The records of `request_id` once there are `count` of them and nothing is in flight.
async fn records_of(
    lambda: &LocalLambda,
    function: &str,
    request_id: &str,
    count: usize,
) -> Vec<InvocationRecord> {
    let records = || -> Vec<InvocationRecord> {
        lambda
            .records()
            .into_iter()
            .filter(|r| r.request_id == request_id)
            .collect()
    };
    // At 7 % of a CPU each Python cold start takes a second or more.
    for _ in 0..600 {
        if records().len() >= count && lambda.in_flight(function) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    records()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_event_is_retried_twice_after_the_delays_and_a_success_is_not() {
    let lambda = start().await;
    let mut function = python_function("retried");
    function.async_retry_delays_ms = vec![300, 600];
    lambda.add_function(function).unwrap();

    let failing = send_event(&lambda, "retried", r#"{"crash": true}"#).await;
    let records = records_of(&lambda, "retried", &failing, 3).await;
    let attempts: Vec<(u32, Outcome)> = records.iter().map(|r| (r.attempt, r.outcome)).collect();
    assert_eq!(
        attempts,
        [
            (1, Outcome::Crashed),
            (2, Outcome::Crashed),
            (3, Outcome::Crashed)
        ],
        "{records:#?}"
    );
    // Each retry waited its delay after the previous attempt ended.
    for (previous, retry, delay) in [
        (&records[0], &records[1], 300),
        (&records[1], &records[2], 600),
    ] {
        let waited = retry.received_at_ms.max(retry.started_at_ms) - previous.ended_at_ms;
        assert!(
            waited >= delay,
            "waited {waited} ms, not {delay}: {records:#?}"
        );
    }
    // Two retries, no third: wait past where a third would have come.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(records_of(&lambda, "retried", &failing, 3).await.len(), 3);

    let succeeding = send_event(&lambda, "retried", "{}").await;
    let records = records_of(&lambda, "retried", &succeeding, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        (records[0].attempt, records[0].outcome),
        (1, Outcome::Success)
    );
    lambda.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_without_retries_fails_once() {
    let lambda = start().await;
    let mut function = python_function("not-retried");
    function.async_retries = 0;
    // Short delays, so a retry the setting failed to stop would come at once.
    function.async_retry_delays_ms = vec![100, 100];
    lambda.add_function(function).unwrap();
    let failing = send_event(&lambda, "not-retried", r#"{"crash": true}"#).await;
    records_of(&lambda, "not-retried", &failing, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records = records_of(&lambda, "not-retried", &failing, 1).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    lambda.shutdown().await;
}
