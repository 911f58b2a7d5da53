//! The force-flush that ends every invocation.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use opentelemetry_sdk::{metrics::SdkMeterProvider, trace::SdkTracerProvider};

use crate::Options;

#[derive(Clone)]
pub(super) struct Providers {
    pub(super) metrics: Option<SdkMeterProvider>,
    pub(super) tracing: Option<SdkTracerProvider>,
}

impl Providers {
    pub(super) fn metrics(provider: SdkMeterProvider) -> Self {
        Self {
            metrics: Some(provider),
            tracing: None,
        }
    }

    pub(super) fn tracing(provider: SdkTracerProvider) -> Self {
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
pub(super) fn add_flush_hook(options: &mut Options, providers: Providers) {
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
