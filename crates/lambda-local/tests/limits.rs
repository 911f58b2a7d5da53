//! Lambda's payload limits, at and beyond them: 6 MB for a synchronous request and for a
//! response, 1 MB for an asynchronous request. Within them everything passes (the web server's
//! own default limit, 2 MB, does not apply); beyond them the caller gets Lambda's errors.

mod common;

use common::{http, http_with_headers, python_function, start};

const MB: usize = 1024 * 1024;
const INVOKE: &str = "/2015-03-31/functions/limits/invocations";

/// A JSON payload of exactly `bytes` bytes (the function ignores the field).
fn payload(bytes: usize) -> String {
    let padding = "p".repeat(bytes - r#"{"padding":""}"#.len());
    format!(r#"{{"padding":"{padding}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_and_responses_pass_up_to_lambdas_limits_and_fail_with_its_errors_beyond() {
    let lambda = start().await;
    lambda.add_function(python_function("limits")).unwrap();

    // Requests: 6 MB synchronous passes, one byte more is refused before the function runs.
    let (status, _, body) = http(&lambda, "POST", INVOKE, &payload(6 * MB)).await;
    assert_eq!((status, body.as_str()), (200, "\"ok\""));
    let (status, head, body) = http(&lambda, "POST", INVOKE, &payload(6 * MB + 1)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        head.contains("x-amzn-errortype: requesttoolargeexception"),
        "{head}"
    );
    assert!(body.contains("smaller than 6291456 bytes"), "{body}");

    // Responses: 3 MB comes back whole; over 6 MB the invocation fails with Lambda's error.
    let (status, head, body) = http(
        &lambda,
        "POST",
        INVOKE,
        &format!(r#"{{"respond_bytes":{}}}"#, 3 * MB),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body.len(), 3 * MB);
    assert!(!head.contains("x-amz-function-error"), "{head}");
    let (status, head, body) = http(
        &lambda,
        "POST",
        INVOKE,
        &format!(r#"{{"respond_bytes":{}}}"#, 6 * MB + 1),
    )
    .await;
    assert_eq!(
        status, 200,
        "a function error is a 200 with an error body: {head}"
    );
    assert!(head.contains("x-amz-function-error"), "{head}");
    assert!(body.contains("Function.ResponseSizeTooLarge"), "{body}");
    assert!(body.contains("(6291457 bytes) exceeded"), "{body}");

    // Asynchronous requests: 1 MB is accepted, one byte more is refused.
    let event = |bytes| {
        let lambda = &lambda;
        async move {
            let async_invoke = [("X-Amz-Invocation-Type", "Event")];
            let (status, head, _) =
                http_with_headers(lambda, "POST", INVOKE, &async_invoke, &payload(bytes)).await;
            (status, head)
        }
    };
    let (status, _) = event(MB).await;
    assert_eq!(status, 202);
    let (status, head) = event(MB + 1).await;
    assert_eq!(status, 413, "{head}");
    assert!(
        head.contains("x-amzn-errortype: requesttoolargeexception"),
        "{head}"
    );
    lambda.shutdown().await;
}
