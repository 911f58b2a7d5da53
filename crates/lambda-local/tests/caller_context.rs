//! What a caller passes for the function's context object reaches the runtime as Lambda passes
//! it: `X-Amz-Client-Context` (base64-encoded JSON) as `Lambda-Runtime-Client-Context` (the JSON),
//! `X-Amz-Cognito-Identity` as `Lambda-Runtime-Cognito-Identity`; malformed values are refused
//! before the function runs.

mod common;

use common::{http_with_headers, python_function, start};

const INVOKE: &str = "/2015-03-31/functions/context/invocations";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_context_and_cognito_identity_reach_the_runtime_and_bad_ones_are_refused() {
    let lambda = start().await;
    lambda.add_function(python_function("context")).unwrap();
    let client_context = r#"{"custom":{"tenant":"acme"},"env":{"locale":"en"}}"#;
    let cognito = r#"{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}"#;
    let encoded = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(client_context)
    };
    let event = r#"{"echo_context": true}"#;
    let (status, head, body) = http_with_headers(
        &lambda,
        "POST",
        INVOKE,
        &[
            ("X-Amz-Client-Context", &encoded),
            ("X-Amz-Cognito-Identity", cognito),
        ],
        event,
    )
    .await;
    assert_eq!(status, 200, "{head}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["Client-Context"], client_context, "{body}");
    assert_eq!(seen["Cognito-Identity"], cognito, "{body}");

    // Without them the runtime gets neither header.
    let (_, _, body) = http_with_headers(&lambda, "POST", INVOKE, &[], event).await;
    assert_eq!(
        body,
        r#"{"Client-Context": null, "Cognito-Identity": null}"#
    );

    // Not base64, or not JSON inside: refused, and the function never runs.
    for bad in ["not base64!", "bm90IGpzb24="] {
        let (status, head, body) = http_with_headers(
            &lambda,
            "POST",
            INVOKE,
            &[("X-Amz-Client-Context", bad)],
            event,
        )
        .await;
        assert_eq!(status, 400, "{head}");
        assert!(body.contains("base64-encoded JSON object"), "{body}");
    }
    assert_eq!(lambda.records().len(), 2);
    lambda.shutdown().await;
}
