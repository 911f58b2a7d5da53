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
    // The frozen environment takes 400 ms to exit once it gets its SIGTERM.
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
