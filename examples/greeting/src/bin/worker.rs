//! The Lambda `bootstrap` of the greeting sample.
//!
//! Built with `--features otel`, it also exports traces and metrics over OTLP to the ADOT
//! collector layer (`otel-collector-config.yaml`).

#[tokio::main]
async fn main() {
    temporal_lambda_worker::run_worker(greeting::version(), |options| {
        greeting::configure(options)?;
        #[cfg(feature = "otel")]
        temporal_lambda_worker::otel::apply_defaults(options, Default::default())?;
        Ok(())
    })
    .await;
}
