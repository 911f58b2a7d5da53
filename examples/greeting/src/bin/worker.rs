//! The Lambda `bootstrap` of the greeting sample.

#[tokio::main]
async fn main() {
    temporal_lambda_worker::run_worker(greeting::version(), greeting::configure).await;
}
