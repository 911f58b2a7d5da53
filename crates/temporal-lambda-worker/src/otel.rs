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
//!   provider this crate owns, exported every 10 s.
//! - Every invocation ends with a force-flush of both providers, after the worker stopped and
//!   bounded by the time left; never a shutdown, so warm invocations reuse them. A collector that
//!   is down costs at most that bound and one warning.

use std::{
    borrow::Cow,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    KeyValue,
    metrics::{Meter, MeterProvider as _},
    trace::{SpanId, TraceId, TracerProvider as _},
};
use opentelemetry_otlp::{
    MetricExporter, SpanExporter, WithExportConfig, WithTonicConfig,
    tonic_types::transport::{Certificate, ClientTlsConfig},
};
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider},
    trace::{IdGenerator, SdkTracerProvider},
};
use temporalio_client::plugins::ClientPlugin;
use temporalio_common::telemetry::{
    TaskQueueLabelStrategy,
    metrics::{
        CoreMeter, Counter, Gauge, GaugeF64, Histogram, HistogramDuration, HistogramDurationBase,
        HistogramF64, MetricAttributable, MetricAttributes, MetricParameters, NewAttributes,
        TemporalMeter, UpDownCounter,
    },
};
use temporalio_sdk::{
    WorkerPlugin,
    opentelemetry::{OpenTelemetryPlugin, WorkflowIdGenerator},
};

use crate::{Error, Options, environment::Environment};

/// The ADOT collector's OTLP/gRPC endpoint inside a Lambda execution environment.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4317";
/// The service name when neither the options nor the environment give one.
pub const DEFAULT_SERVICE_NAME: &str = "temporal-lambda-worker";
/// How often metrics are exported while an invocation runs (each invocation also flushes).
pub const METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(10);
/// The longest a single export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);
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
}

impl Default for OtelOptions {
    fn default() -> Self {
        Self {
            service_name: None,
            endpoint: None,
            tls: None,
            metric_export_interval: METRIC_EXPORT_INTERVAL,
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

/// Options and environment, resolved.
#[derive(Debug, PartialEq)]
struct Resolved {
    endpoint: String,
    service_name: String,
    tls: Option<OtlpTls>,
    resource_attributes: Vec<(&'static str, String)>,
    metric_export_interval: Duration,
}

impl PartialEq for OtlpTls {
    fn eq(&self, other: &Self) -> bool {
        self.ca_certificate_pem == other.ca_certificate_pem
    }
}

impl Resolved {
    fn new(env: &Environment, otel: &OtelOptions) -> Result<Self, Error> {
        let endpoint = otel
            .endpoint
            .clone()
            .or_else(|| env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::InvalidOptions(format!(
                "OTLP endpoint '{endpoint}' needs a scheme: write http://host:4317 (plaintext) or \
                 https://host:4317 (TLS)"
            )));
        }
        if otel.metric_export_interval.is_zero() {
            return Err(Error::InvalidOptions(
                "otel metric_export_interval is zero: use a period such as 10s".to_owned(),
            ));
        }
        let service_name = otel
            .service_name
            .clone()
            .or_else(|| env.get("OTEL_SERVICE_NAME").map(str::to_owned))
            .or_else(|| env.get("AWS_LAMBDA_FUNCTION_NAME").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
        let tls = match &otel.tls {
            Some(tls) => Some(tls.clone()),
            None if endpoint.starts_with("https://") => Some(OtlpTls::default()),
            None => None,
        };
        let mut resource_attributes = vec![
            ("cloud.provider", "aws".to_owned()),
            ("cloud.platform", "aws_lambda".to_owned()),
        ];
        for (attribute, variable) in [
            ("cloud.region", "AWS_REGION"),
            ("faas.name", "AWS_LAMBDA_FUNCTION_NAME"),
            ("faas.version", "AWS_LAMBDA_FUNCTION_VERSION"),
            ("faas.instance", "AWS_LAMBDA_LOG_STREAM_NAME"),
            ("aws.log.group.names", "AWS_LAMBDA_LOG_GROUP_NAME"),
        ] {
            if let Some(value) = env.get(variable) {
                resource_attributes.push((attribute, value.to_owned()));
            }
        }
        if let Some(mb) = env
            .get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .and_then(|mb| mb.parse::<u64>().ok())
        {
            resource_attributes.push(("faas.max_memory", (mb * 1024 * 1024).to_string()));
        }
        Ok(Self {
            endpoint,
            service_name,
            tls,
            resource_attributes,
            metric_export_interval: otel.metric_export_interval,
        })
    }

    fn resource(&self) -> Resource {
        Resource::builder()
            .with_service_name(self.service_name.clone())
            .with_attributes(
                self.resource_attributes
                    .iter()
                    .map(|(k, v)| KeyValue::new(*k, v.clone())),
            )
            .build()
    }

    fn tls_config(&self) -> Option<ClientTlsConfig> {
        let tls = self.tls.as_ref()?;
        let config = ClientTlsConfig::new().with_native_roots();
        Some(match &tls.ca_certificate_pem {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config,
        })
    }

    fn meter_provider(&self) -> Result<SdkMeterProvider, Error> {
        let mut exporter = MetricExporter::builder()
            .with_tonic()
            .with_endpoint(self.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT);
        if let Some(tls) = self.tls_config() {
            exporter = exporter.with_tls_config(tls);
        }
        let exporter = exporter.build().map_err(|e| self.exporter_error(&e))?;
        let reader = PeriodicReader::builder(exporter)
            .with_interval(self.metric_export_interval)
            .build();
        Ok(SdkMeterProvider::builder()
            .with_resource(self.resource())
            .with_reader(reader)
            .build())
    }

    fn tracer_provider(&self) -> Result<SdkTracerProvider, Error> {
        let mut exporter = SpanExporter::builder()
            .with_tonic()
            .with_endpoint(self.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT);
        if let Some(tls) = self.tls_config() {
            exporter = exporter.with_tls_config(tls);
        }
        let exporter = exporter.build().map_err(|e| self.exporter_error(&e))?;
        Ok(SdkTracerProvider::builder()
            .with_resource(self.resource())
            .with_id_generator(XrayIdGenerator::default())
            .with_batch_exporter(exporter)
            .build())
    }

    fn exporter_error(&self, error: &dyn std::fmt::Display) -> Error {
        Error::InvalidOptions(format!(
            "cannot set up the OTLP exporter to {}: {error}",
            self.endpoint
        ))
    }
}

fn install_metrics(options: &mut Options, provider: &SdkMeterProvider) {
    let meter = provider.meter(INSTRUMENTATION_SCOPE);
    // Client RPC metrics come from the connection's meter, which (unlike the runtime's) does not
    // prefix names; prefix them here so every SDK metric is `temporal_*`.
    options.connection.metrics_meter = Some(TemporalMeter::new(
        Arc::new(LambdaMeter {
            meter: meter.clone(),
            prefix: "temporal_",
        }),
        NewAttributes::default(),
        TaskQueueLabelStrategy::UseNormal,
    ));
    options.core_meter = Some(Arc::new(LambdaMeter { meter, prefix: "" }));
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

#[derive(Clone)]
struct Providers {
    metrics: Option<SdkMeterProvider>,
    tracing: Option<SdkTracerProvider>,
}

impl Providers {
    fn metrics(provider: SdkMeterProvider) -> Self {
        Self {
            metrics: Some(provider),
            tracing: None,
        }
    }

    fn tracing(provider: SdkTracerProvider) -> Self {
        Self {
            metrics: None,
            tracing: Some(provider),
        }
    }

    /// Blocks until both have exported what they hold.
    fn force_flush(&self) -> Result<(), String> {
        let traces = self.tracing.as_ref().map(SdkTracerProvider::force_flush);
        let metrics = self.metrics.as_ref().map(SdkMeterProvider::force_flush);
        match (traces, metrics) {
            (Some(Err(e)), _) => Err(format!("traces: {e}")),
            (_, Some(Err(e))) => Err(format!("metrics: {e}")),
            _ => Ok(()),
        }
    }
}

/// Flushes at the end of every invocation. The invocation bounds the hook by the time left; the
/// flush itself blocks, so it runs on a blocking thread that the invocation does not wait for
/// past that bound.
fn add_flush_hook(options: &mut Options, providers: Providers) {
    let failing = Arc::new(AtomicBool::new(false));
    options.on_shutdown(move |_| {
        let (providers, failing) = (providers.clone(), Arc::clone(&failing));
        async move {
            let flushed = tokio::task::spawn_blocking(move || providers.force_flush())
                .await
                .map_err(|e| e.to_string())
                .and_then(|flushed| flushed);
            match flushed {
                Ok(()) => {
                    if failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("telemetry export recovered");
                    }
                }
                // One warning per outage, not one per invocation.
                Err(e) if !failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                    error = %e,
                    "telemetry could not be exported (is the collector running?); the worker \
                     goes on, and further failures are logged at debug level until it recovers"
                ),
                Err(e) => tracing::debug!(error = %e, "telemetry export still failing"),
            }
            Ok(())
        }
    });
}

/// Trace ids X-Ray accepts (the first 32 bits are the epoch seconds), with the SDK's
/// replay-safe span ids.
///
/// Workflow spans normally continue the trace the starter propagates, so their trace id comes
/// from the starter. A root span started inside workflow code without one gets a fresh time
/// prefix when the workflow is replayed by a later invocation.
#[derive(Clone, Debug, Default)]
pub struct XrayIdGenerator {
    random: WorkflowIdGenerator,
}

impl IdGenerator for XrayIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as u32;
        let random = u128::from_be_bytes(self.random.new_trace_id().to_bytes());
        TraceId::from((u128::from(seconds) << 96) | (random & ((1u128 << 96) - 1)))
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

/// The SDK's metrics, recorded on an OpenTelemetry meter this crate's provider owns (the SDK's
/// built-in OTLP meter keeps its provider private, so it could not be flushed per invocation).
#[derive(Debug)]
struct LambdaMeter {
    meter: Meter,
    prefix: &'static str,
}

impl CoreMeter for LambdaMeter {
    fn new_attributes(&self, attributes: NewAttributes) -> MetricAttributes {
        MetricAttributes::OTel {
            kvs: Arc::new(
                attributes
                    .attributes
                    .into_iter()
                    .map(KeyValue::from)
                    .collect(),
            ),
        }
    }

    fn extend_attributes(
        &self,
        existing: MetricAttributes,
        attributes: NewAttributes,
    ) -> MetricAttributes {
        let mut kvs = match existing {
            MetricAttributes::OTel { kvs } => kvs,
            _ => Arc::default(),
        };
        Arc::make_mut(&mut kvs).extend(attributes.attributes.into_iter().map(KeyValue::from));
        MetricAttributes::OTel { kvs }
    }

    fn counter(&self, params: MetricParameters) -> Counter {
        Counter::new(Arc::new(
            self.meter
                .u64_counter(self.name(params.name))
                .with_unit(params.unit)
                .with_description(params.description)
                .build(),
        ))
    }

    fn histogram(&self, params: MetricParameters) -> Histogram {
        Histogram::new(Arc::new(self.u64_histogram(params)))
    }

    fn histogram_f64(&self, params: MetricParameters) -> HistogramF64 {
        HistogramF64::new(Arc::new(
            self.meter
                .f64_histogram(self.name(params.name))
                .with_unit(params.unit)
                .with_description(params.description)
                .build(),
        ))
    }

    fn histogram_duration(&self, mut params: MetricParameters) -> HistogramDuration {
        params.unit = Cow::Borrowed("ms");
        HistogramDuration::new(Arc::new(MillisecondsHistogram(self.u64_histogram(params))))
    }

    fn gauge(&self, params: MetricParameters) -> Gauge {
        Gauge::new(Arc::new(
            self.meter
                .u64_gauge(self.name(params.name))
                .with_unit(params.unit)
                .with_description(params.description)
                .build(),
        ))
    }

    fn gauge_f64(&self, params: MetricParameters) -> GaugeF64 {
        GaugeF64::new(Arc::new(
            self.meter
                .f64_gauge(self.name(params.name))
                .with_unit(params.unit)
                .with_description(params.description)
                .build(),
        ))
    }

    fn up_down_counter(&self, params: MetricParameters) -> UpDownCounter {
        UpDownCounter::new(Arc::new(
            self.meter
                .i64_up_down_counter(self.name(params.name))
                .with_unit(params.unit)
                .with_description(params.description)
                .build(),
        ))
    }
}

impl LambdaMeter {
    fn name(&self, name: Cow<'static, str>) -> Cow<'static, str> {
        if self.prefix.is_empty() {
            name
        } else {
            Cow::Owned(format!("{}{name}", self.prefix))
        }
    }

    fn u64_histogram(&self, params: MetricParameters) -> opentelemetry::metrics::Histogram<u64> {
        self.meter
            .u64_histogram(self.name(params.name))
            .with_unit(params.unit)
            .with_description(params.description)
            .build()
    }
}

/// Durations recorded in milliseconds.
#[derive(Clone)]
struct MillisecondsHistogram(opentelemetry::metrics::Histogram<u64>);

struct BoundMilliseconds {
    histogram: opentelemetry::metrics::Histogram<u64>,
    kvs: Arc<Vec<KeyValue>>,
}

impl MetricAttributable<Box<dyn HistogramDurationBase>> for MillisecondsHistogram {
    fn with_attributes(
        &self,
        attributes: &MetricAttributes,
    ) -> Result<Box<dyn HistogramDurationBase>, Box<dyn std::error::Error>> {
        let kvs = match attributes {
            MetricAttributes::OTel { kvs } => Arc::clone(kvs),
            _ => Arc::default(),
        };
        Ok(Box::new(BoundMilliseconds {
            histogram: self.0.clone(),
            kvs,
        }))
    }
}

impl HistogramDurationBase for BoundMilliseconds {
    fn records(&self, value: Duration) {
        self.histogram.record(value.as_millis() as u64, &self.kvs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::default()
    }

    #[test]
    fn the_option_wins_then_the_environment_then_the_adot_default() {
        let options = OtelOptions {
            endpoint: Some("http://collector:4317".into()),
            service_name: Some("from-option".into()),
            ..Default::default()
        };
        let env = env()
            .with("OTEL_EXPORTER_OTLP_ENDPOINT", "http://from-env:4317")
            .with("OTEL_SERVICE_NAME", "from-env")
            .with("AWS_LAMBDA_FUNCTION_NAME", "function");
        let resolved = Resolved::new(&env, &options).unwrap();
        assert_eq!(resolved.endpoint, "http://collector:4317");
        assert_eq!(resolved.service_name, "from-option");

        let resolved = Resolved::new(&env, &OtelOptions::default()).unwrap();
        assert_eq!(resolved.endpoint, "http://from-env:4317");
        assert_eq!(resolved.service_name, "from-env");

        let env = self::env().with("AWS_LAMBDA_FUNCTION_NAME", "function");
        let resolved = Resolved::new(&env, &OtelOptions::default()).unwrap();
        assert_eq!(resolved.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(resolved.service_name, "function");
        assert_eq!(resolved.tls, None, "plaintext by default");

        let resolved = Resolved::new(&self::env(), &OtelOptions::default()).unwrap();
        assert_eq!(resolved.service_name, DEFAULT_SERVICE_NAME);
    }

    #[test]
    fn https_endpoints_use_tls_and_tls_can_be_chosen() {
        let options = OtelOptions {
            endpoint: Some("https://collector:4317".into()),
            ..Default::default()
        };
        assert_eq!(
            Resolved::new(&env(), &options).unwrap().tls,
            Some(OtlpTls::default())
        );
        let options = OtelOptions {
            tls: Some(OtlpTls {
                ca_certificate_pem: Some(b"pem".to_vec()),
            }),
            ..Default::default()
        };
        assert!(Resolved::new(&env(), &options).unwrap().tls.is_some());
    }

    #[test]
    fn lambda_resource_attributes_come_from_the_environment() {
        let env = env()
            .with("AWS_REGION", "eu-west-1")
            .with("AWS_LAMBDA_FUNCTION_NAME", "greeting")
            .with("AWS_LAMBDA_FUNCTION_VERSION", "3")
            .with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
        let resolved = Resolved::new(&env, &OtelOptions::default()).unwrap();
        let attributes: std::collections::HashMap<_, _> =
            resolved.resource_attributes.iter().cloned().collect();
        assert_eq!(attributes["cloud.provider"], "aws");
        assert_eq!(attributes["cloud.platform"], "aws_lambda");
        assert_eq!(attributes["cloud.region"], "eu-west-1");
        assert_eq!(attributes["faas.name"], "greeting");
        assert_eq!(attributes["faas.version"], "3");
        assert_eq!(attributes["faas.max_memory"], "134217728");
    }

    #[test]
    fn endpoints_without_a_scheme_are_refused() {
        let options = OtelOptions {
            endpoint: Some("localhost:4317".into()),
            ..Default::default()
        };
        let err = Resolved::new(&env(), &options).unwrap_err().to_string();
        assert!(err.contains("needs a scheme"), "{err}");
    }

    #[test]
    fn trace_ids_start_with_the_epoch_seconds() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let id = XrayIdGenerator::default().new_trace_id();
        let seconds = u64::from(u32::from_be_bytes(id.to_bytes()[..4].try_into().unwrap()));
        assert!(seconds.abs_diff(now) <= 1, "{id}");
        assert_ne!(id, XrayIdGenerator::default().new_trace_id());
    }
}
