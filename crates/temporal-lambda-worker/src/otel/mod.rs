//! OpenTelemetry metrics and traces for Lambda workers (feature `otel`), wired for the AWS Distro
//! for OpenTelemetry (ADOT) Lambda layer, whose collector listens on `localhost:4317`.
//!
//! - [`apply_defaults`]: metrics and tracing; [`apply_metrics`] and [`apply_tracing`] on their
//!   own; [`apply_defaults_with_providers`] with providers you built.
//! - OTLP over gRPC, plaintext to `http://localhost:4317` unless [`OtelOptions::endpoint`] or
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` says otherwise (in that order); TLS for `https://` endpoints or
//!   when [`OtelOptions::tls`] is set.
//! - One resource for both: `service.name` from [`OtelOptions::service_name`], else
//!   `OTEL_SERVICE_NAME`, else `AWS_LAMBDA_FUNCTION_NAME`, else `temporal-lambda-worker`, plus the
//!   `cloud.*` and `faas.*` attributes Lambda's environment provides.
//! - Traces: spans for workflow and activity execution through the SDK's OpenTelemetry plugin,
//!   continuing the trace the starter propagates; trace ids start with the epoch seconds, as
//!   X-Ray requires.
//! - Metrics: the SDK's worker, workflow, activity and client RPC metrics, through a meter whose
//!   provider this crate owns, exported every 10 s, as deltas (what CloudWatch's EMF needs; see
//!   [`OtelOptions::temporality`]).
//! - Every invocation ends with a force-flush of both providers, after the worker stopped and
//!   bounded by the time left; never a shutdown, so warm invocations reuse them. A collector that
//!   is down costs at most that bound and one warning.

mod flush;
mod meter;
mod resolve;
mod xray;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{metrics::SdkMeterProvider, trace::SdkTracerProvider};
use temporalio_client::plugins::ClientPlugin;
use temporalio_sdk::{WorkerPlugin, opentelemetry::OpenTelemetryPlugin};

pub use self::xray::XrayIdGenerator;
use self::{
    flush::{Providers, add_flush_hook},
    meter::install_metrics,
    resolve::Resolved,
};
use crate::{Error, Options, environment::Environment};
pub use opentelemetry_sdk::metrics::Temporality;

/// The ADOT collector's OTLP/gRPC endpoint inside a Lambda execution environment.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4317";
/// The service name when neither the options nor the environment give one.
pub const DEFAULT_SERVICE_NAME: &str = "temporal-lambda-worker";
/// How often metrics are exported while an invocation runs (each invocation also flushes).
pub const METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(10);
const INSTRUMENTATION_SCOPE: &str = "temporal-lambda-worker";

/// What to export where.
#[derive(Clone, Debug)]
pub struct OtelOptions {
    /// `service.name`; see the module docs for the fallbacks.
    pub service_name: Option<String>,
    /// The OTLP/gRPC endpoint, e.g. `http://localhost:4317`; wins over
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: Option<String>,
    /// TLS to the collector. `None`: TLS with the system's roots for `https://` endpoints,
    /// plaintext otherwise.
    pub tls: Option<OtlpTls>,
    /// How often metrics are exported while an invocation runs.
    pub metric_export_interval: Duration,
    /// The metrics' aggregation temporality; `None`: the standard
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`, else [`Temporality::Delta`].
    ///
    /// Delta is what CloudWatch needs through the ADOT collector: its `awsemf` exporter turns a
    /// cumulative counter into deltas by keeping each series' first value as the baseline (so a
    /// counter an execution environment records once, such as its first completed workflow,
    /// never arrives) and sends cumulative histograms as they are (so each warm invocation
    /// counts the earlier ones again). Choose [`Temporality::Cumulative`] for a backend that
    /// expects it, such as Prometheus.
    pub temporality: Option<Temporality>,
}

impl Default for OtelOptions {
    fn default() -> Self {
        Self {
            service_name: None,
            endpoint: None,
            tls: None,
            metric_export_interval: METRIC_EXPORT_INTERVAL,
            temporality: None,
        }
    }
}

/// TLS settings for the collector connection.
#[derive(Clone, Debug, Default)]
pub struct OtlpTls {
    /// A PEM CA certificate to trust instead of the system's roots.
    pub ca_certificate_pem: Option<Vec<u8>>,
}

/// The providers [`apply_defaults`] installed, to create your own instruments and spans with.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// Exports the SDK's metrics (and yours).
    pub meter_provider: SdkMeterProvider,
    /// Exports workflow and activity spans (and yours).
    pub tracer_provider: SdkTracerProvider,
}

/// Metrics and tracing with the defaults above.
pub fn apply_defaults(options: &mut Options, otel: OtelOptions) -> Result<Telemetry, Error> {
    let resolved = Resolved::new(&Environment::from_process(), &otel)?;
    let telemetry = Telemetry {
        meter_provider: resolved.meter_provider()?,
        tracer_provider: resolved.tracer_provider()?,
    };
    apply_defaults_with_providers(
        options,
        telemetry.meter_provider.clone(),
        telemetry.tracer_provider.clone(),
    )?;
    Ok(telemetry)
}

/// Metrics only.
pub fn apply_metrics(options: &mut Options, otel: OtelOptions) -> Result<SdkMeterProvider, Error> {
    let provider = Resolved::new(&Environment::from_process(), &otel)?.meter_provider()?;
    install_metrics(options, &provider);
    add_flush_hook(options, Providers::metrics(provider.clone()));
    Ok(provider)
}

/// Tracing only.
pub fn apply_tracing(options: &mut Options, otel: OtelOptions) -> Result<SdkTracerProvider, Error> {
    let provider = Resolved::new(&Environment::from_process(), &otel)?.tracer_provider()?;
    install_tracing(options, &provider)?;
    add_flush_hook(options, Providers::tracing(provider.clone()));
    Ok(provider)
}

/// Metrics and tracing through providers you built (keep [`XrayIdGenerator`] in the tracer
/// provider for X-Ray). Both are force-flushed at the end of every invocation, never shut down.
pub fn apply_defaults_with_providers(
    options: &mut Options,
    meter_provider: SdkMeterProvider,
    tracer_provider: SdkTracerProvider,
) -> Result<(), Error> {
    install_metrics(options, &meter_provider);
    install_tracing(options, &tracer_provider)?;
    add_flush_hook(
        options,
        Providers {
            metrics: Some(meter_provider),
            tracing: Some(tracer_provider),
        },
    );
    Ok(())
}

fn install_tracing(options: &mut Options, provider: &SdkTracerProvider) -> Result<(), Error> {
    let plugin = OpenTelemetryPlugin::builder()
        .tracer(provider.tracer(INSTRUMENTATION_SCOPE))
        .build();
    let failed = |e: &dyn std::fmt::Display| {
        Error::InvalidOptions(format!("cannot install the OpenTelemetry plugin: {e}"))
    };
    ClientPlugin::configure_client_options(&plugin, &mut options.client).map_err(|e| failed(&e))?;
    WorkerPlugin::configure_worker_options(&plugin, &mut options.worker).map_err(|e| failed(&e))
}
