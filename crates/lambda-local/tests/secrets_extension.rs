//! The AWS Parameters and Secrets Lambda Extension's endpoint, as a function reaches it: on the
//! port `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` says, with its session token, answering with
//! the stores' own JSON and error types.

mod common;

use common::{invoke, python_function, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_parameters_are_served_to_the_function_with_its_session_token() {
    let lambda = start_with(|config| {
        config
            .secrets
            .insert("prod/api-key".into(), "key-from-config".into());
    })
    .await;
    lambda.set_parameter("/prod/client-key", "PEM");
    lambda.add_function(python_function("reader")).unwrap();
    let fetch = |path: &str| format!(r#"{{"fetch": "{path}"}}"#);
    let answer = |body: String| -> serde_json::Value { serde_json::from_str(&body).unwrap() };

    let (_, body) = invoke(
        &lambda,
        "reader",
        &fetch("/secretsmanager/get?secretId=prod%2Fapi-key"),
    )
    .await;
    let got = answer(body);
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["body"]["SecretString"], "key-from-config");
    assert_eq!(got["body"]["Name"], "prod/api-key");
    // By ARN, as Secrets Manager names it (with its random suffix).
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-key";
    let (_, body) = invoke(
        &lambda,
        "reader",
        &fetch(&format!("/secretsmanager/get?secretId={arn}")),
    )
    .await;
    assert_eq!(answer(body)["body"]["SecretString"], "key-from-config");

    let (_, body) = invoke(
        &lambda,
        "reader",
        &fetch("/systemsmanager/parameters/get?name=%2Fprod%2Fclient-key&withDecryption=true"),
    )
    .await;
    let got = answer(body);
    assert_eq!(got["body"]["Parameter"]["Value"], "PEM", "{got}");
    assert_eq!(
        got["body"]["Parameter"]["ARN"],
        "arn:aws:ssm:us-east-1:123456789012:parameter/prod/client-key"
    );

    // What is missing answers with the store's error type; a wrong token is refused.
    let (_, body) = invoke(
        &lambda,
        "reader",
        &fetch("/secretsmanager/get?secretId=nope"),
    )
    .await;
    let got = answer(body);
    assert_eq!(got["status"], 400);
    assert_eq!(got["body"]["__type"], "ResourceNotFoundException");
    let (_, body) = invoke(
        &lambda,
        "reader",
        &fetch("/systemsmanager/parameters/get?name=nope"),
    )
    .await;
    assert_eq!(answer(body)["body"]["__type"], "ParameterNotFound");
    let wrong = r#"{"fetch": "/secretsmanager/get?secretId=prod%2Fapi-key", "token": "stolen"}"#;
    let (_, body) = invoke(&lambda, "reader", wrong).await;
    let got = answer(body);
    assert_eq!(got["status"], 401, "{got}");
    assert!(!got.to_string().contains("key-from-config"));
    lambda.shutdown().await;
}
