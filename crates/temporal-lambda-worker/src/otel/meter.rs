//! The SDK's metrics on an OpenTelemetry meter whose provider this crate owns.

use std::{borrow::Cow, sync::Arc, time::Duration};

use opentelemetry::{
    KeyValue,
    metrics::{Meter, MeterProvider as _},
};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use temporalio_common::telemetry::{
    TaskQueueLabelStrategy,
    metrics::{
        CoreMeter, Counter, Gauge, GaugeF64, Histogram, HistogramDuration, HistogramDurationBase,
        HistogramF64, MetricAttributable, MetricAttributes, MetricParameters, NewAttributes,
        TemporalMeter, UpDownCounter,
    },
};

use super::INSTRUMENTATION_SCOPE;
use crate::Options;

pub(super) fn install_metrics(options: &mut Options, provider: &SdkMeterProvider) {
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
