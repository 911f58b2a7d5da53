//! The options and the environment, resolved into what the exporters are built from.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    MetricExporter, SpanExporter, WithExportConfig, WithTonicConfig,
    tonic_types::transport::{Certificate, ClientTlsConfig},
};
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider, Temporality},
    trace::SdkTracerProvider,
};

use super::{DEFAULT_ENDPOINT, DEFAULT_SERVICE_NAME, OtelOptions, OtlpTls, XrayIdGenerator};
use crate::{Error, environment::Environment};

/// The standard variable for the metrics' temporality (read here: setting it in code wins).
const TEMPORALITY_VARIABLE: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
/// The longest a single export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// Options and environment, resolved.
#[derive(Debug, PartialEq)]
pub(super) struct Resolved {
    endpoint: String,
    service_name: String,
    tls: Option<OtlpTls>,
    resource_attributes: Vec<(&'static str, String)>,
    metric_export_interval: Duration,
    temporality: Temporality,
}

impl PartialEq for OtlpTls {
    fn eq(&self, other: &Self) -> bool {
        self.ca_certificate_pem == other.ca_certificate_pem
    }
}

impl Resolved {
    pub(super) fn new(env: &Environment, otel: &OtelOptions) -> Result<Self, Error> {
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
        let temporality = match (otel.temporality, env.get(TEMPORALITY_VARIABLE)) {
            (Some(temporality), _) => temporality,
            (None, Some(text)) => text.parse().map_err(|()| {
                Error::InvalidOptions(format!(
                    "{TEMPORALITY_VARIABLE}='{text}': use delta (the default, what CloudWatch \
                     wants), cumulative or lowmemory"
                ))
            })?,
            (None, None) => Temporality::Delta,
        };
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
            temporality,
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

    pub(super) fn meter_provider(&self) -> Result<SdkMeterProvider, Error> {
        let exporter = self
            .to_collector(MetricExporter::builder().with_tonic())
            .with_temporality(self.temporality)
            .build()
            .map_err(|e| self.exporter_error(&e))?;
        let reader = PeriodicReader::builder(exporter)
            .with_interval(self.metric_export_interval)
            .build();
        Ok(SdkMeterProvider::builder()
            .with_resource(self.resource())
            .with_reader(reader)
            .build())
    }

    pub(super) fn tracer_provider(&self) -> Result<SdkTracerProvider, Error> {
        let exporter = self
            .to_collector(SpanExporter::builder().with_tonic())
            .build()
            .map_err(|e| self.exporter_error(&e))?;
        Ok(SdkTracerProvider::builder()
            .with_resource(self.resource())
            .with_id_generator(XrayIdGenerator::default())
            .with_batch_exporter(exporter)
            .build())
    }

    /// An exporter builder aimed at the collector: endpoint, export timeout and TLS.
    fn to_collector<B: WithExportConfig + WithTonicConfig>(&self, exporter: B) -> B {
        let exporter = exporter
            .with_endpoint(self.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT);
        match self.tls_config() {
            Some(tls) => exporter.with_tls_config(tls),
            None => exporter,
        }
    }

    fn exporter_error(&self, error: &dyn std::fmt::Display) -> Error {
        Error::InvalidOptions(format!(
            "cannot set up the OTLP exporter to {}: {error}",
            self.endpoint
        ))
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
    fn metrics_are_deltas_unless_the_option_or_the_standard_variable_says_otherwise() {
        let resolved = |env: &Environment, temporality| {
            let options = OtelOptions {
                temporality,
                ..Default::default()
            };
            Resolved::new(env, &options).map(|r| r.temporality)
        };
        assert_eq!(resolved(&env(), None).unwrap(), Temporality::Delta);
        let cumulative = env().with(TEMPORALITY_VARIABLE, "Cumulative");
        assert_eq!(
            resolved(&cumulative, None).unwrap(),
            Temporality::Cumulative
        );
        let option = Some(Temporality::LowMemory);
        assert_eq!(
            resolved(&cumulative, option).unwrap(),
            Temporality::LowMemory
        );
        let wrong = env().with(TEMPORALITY_VARIABLE, "sometimes");
        let message = resolved(&wrong, None).unwrap_err().to_string();
        assert!(
            message.contains("'sometimes'") && message.contains("use delta"),
            "{message}"
        );
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
}
