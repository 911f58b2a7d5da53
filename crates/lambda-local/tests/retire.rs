//! Lambda's shutdown phase (`LocalLambda::retire_environments`) while invocations keep arriving.

mod common;

use std::time::Duration;

use common::{invoke, python_function, start};
use lambda_local::Outcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_arriving_during_the_shutdown_phase_gets_a_new_environment() {
    let lambda = start().await;
    let mut function = python_function("retiring");
    function.timeout = Duration::from_secs(5);
    // With an extension, Lambda sends SIGTERM; the frozen environment takes 400 ms to exit once
    // it gets it.
    function.extension = true;
    function
        .env
        .insert("SIGTERM_EXIT_MS".to_owned(), "400".to_owned());
    lambda.add_function(function).unwrap();
    invoke(&lambda, "retiring", "{}").await;

    let lambda = std::sync::Arc::new(lambda);
    let retiring = tokio::spawn({
        let lambda = std::sync::Arc::clone(&lambda);
        async move { lambda.retire_environments("retiring").await }
    });
    // Well inside those 400 ms, an event arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, body) = invoke(&lambda, "retiring", "{}").await;
    let retirements = retiring.await.unwrap();

    assert_eq!(body, "\"ok\"");
    let exited_after = retirements[0].exited_after.expect("exited by itself");
    assert!(
        exited_after >= Duration::from_millis(400),
        "{exited_after:?}"
    );
    let records = lambda.records();
    assert_eq!(records.len(), 2, "{records:?}");
    let (first, second) = (&records[0], &records[1]);
    assert_eq!(second.outcome, Outcome::Success, "{second:?}");
    assert!(second.cold_start, "{second:?}");
    assert_ne!(second.environment, first.environment, "{second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_extension_the_shutdown_phase_kills_at_once_without_sigterm() {
    let lambda = start().await;
    let mut function = python_function("no-extension");
    // It would take 400 ms to exit on SIGTERM; it never gets one.
    function
        .env
        .insert("SIGTERM_EXIT_MS".to_owned(), "400".to_owned());
    lambda.add_function(function).unwrap();
    invoke(&lambda, "no-extension", "{}").await;
    let started = std::time::Instant::now();
    let retirements = lambda.retire_environments("no-extension").await;
    assert_eq!(retirements.len(), 1, "{retirements:?}");
    assert_eq!(retirements[0].exited_after, None, "killed, not exited");
    assert!(started.elapsed() < Duration::from_millis(400));
    let (_, body) = invoke(&lambda, "no-extension", "{}").await;
    assert_eq!(body, "\"ok\"");
    lambda.shutdown().await;
}
