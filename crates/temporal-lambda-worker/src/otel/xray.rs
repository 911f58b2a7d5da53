//! Trace ids that X-Ray accepts.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::IdGenerator;
use temporalio_sdk::opentelemetry::WorkflowIdGenerator;

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

#[cfg(test)]
mod tests {
    use super::*;

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
