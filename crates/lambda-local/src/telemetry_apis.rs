//! The two AWS APIs a function's telemetry reaches through the ADOT collector, served on the
//! environment's endpoint and recorded: X-Ray `PutTraceSegments` (the `awsxray` exporter) and
//! CloudWatch Logs `PutLogEvents` (the `awsemf` exporter's Embedded Metric Format events, and its
//! `CreateLogGroup` / `CreateLogStream`, accepted). Point an exporter's `endpoint` at
//! [`crate::LocalLambda::endpoint`] and read what arrived with
//! [`crate::LocalLambda::trace_segments`] and [`crate::LocalLambda::log_events`]. Signatures are
//! not checked (the static credentials of [`crate::LocalLambda::aws_client_environment`] sign).

use std::{sync::Mutex, time::SystemTime};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{lambda_api::json_protocol_error, pool::epoch_ms};

/// The `X-Amz-Target` prefix of CloudWatch Logs calls (the JSON 1.1 protocol, `POST /`).
pub(crate) const LOGS_TARGET_PREFIX: &str = "Logs_20140328.";
/// Kept of each kind; older ones are dropped first.
const MAX_KEPT: usize = 100_000;

/// One X-Ray segment document, as `PutTraceSegments` received it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceSegment {
    /// When it arrived (ms since the epoch).
    pub received_at_ms: u64,
    /// The segment document (the JSON string the exporter sent, parsed).
    pub document: serde_json::Value,
}

/// One CloudWatch Logs event, as `PutLogEvents` received it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CloudWatchLogEvent {
    /// When it arrived (ms since the epoch).
    pub received_at_ms: u64,
    /// The log group it was put into.
    pub log_group: String,
    /// The log stream it was put into.
    pub log_stream: String,
    /// The event's own timestamp (ms since the epoch).
    pub timestamp_ms: i64,
    /// The event (for the `awsemf` exporter, an EMF JSON document).
    pub message: String,
}

/// What arrived so far.
#[derive(Default)]
pub(crate) struct Telemetry {
    segments: Mutex<Vec<TraceSegment>>,
    log_events: Mutex<Vec<CloudWatchLogEvent>>,
}

fn keep<T>(list: &Mutex<Vec<T>>, new: impl IntoIterator<Item = T>) {
    let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
    list.extend(new);
    let excess = list.len().saturating_sub(MAX_KEPT);
    list.drain(..excess);
}

#[derive(Deserialize)]
struct PutTraceSegments {
    #[serde(rename = "TraceSegmentDocuments")]
    documents: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutLogEvents {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
}

#[derive(Deserialize)]
struct InputLogEvent {
    timestamp: i64,
    message: String,
}

impl Telemetry {
    pub(crate) fn segments(&self) -> Vec<TraceSegment> {
        self.segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn log_events(&self) -> Vec<CloudWatchLogEvent> {
        self.log_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `POST /TraceSegments`. A document that is not JSON is returned as unprocessed, as X-Ray
    /// does with a segment it rejects.
    pub(crate) fn put_trace_segments(&self, body: &[u8]) -> Response {
        let request: PutTraceSegments = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(e) => {
                return json_protocol_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestException",
                    &e.to_string(),
                );
            }
        };
        let received_at_ms = epoch_ms(SystemTime::now());
        let mut unprocessed = Vec::new();
        let mut accepted = Vec::new();
        for text in request.documents {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(document) => accepted.push(TraceSegment {
                    received_at_ms,
                    document,
                }),
                Err(e) => unprocessed.push(json!({
                    "ErrorCode": "InvalidSegment",
                    "Message": e.to_string(),
                })),
            }
        }
        keep(&self.segments, accepted);
        Json(json!({"UnprocessedTraceSegments": unprocessed})).into_response()
    }

    /// One CloudWatch Logs call (`action` is the `X-Amz-Target` after its prefix).
    pub(crate) fn logs_call(&self, action: &str, body: &[u8]) -> Response {
        match action {
            "PutLogEvents" => {
                let request: PutLogEvents = match serde_json::from_slice(body) {
                    Ok(request) => request,
                    Err(e) => {
                        return json_protocol_error(
                            StatusCode::BAD_REQUEST,
                            "InvalidParameterException",
                            &e.to_string(),
                        );
                    }
                };
                let received_at_ms = epoch_ms(SystemTime::now());
                keep(
                    &self.log_events,
                    request
                        .log_events
                        .into_iter()
                        .map(|event| CloudWatchLogEvent {
                            received_at_ms,
                            log_group: request.log_group_name.clone(),
                            log_stream: request.log_stream_name.clone(),
                            timestamp_ms: event.timestamp,
                            message: event.message,
                        }),
                );
                Json(json!({"nextSequenceToken": received_at_ms.to_string()})).into_response()
            }
            // Every group and stream exists here; creating one is accepted.
            "CreateLogGroup" | "CreateLogStream" | "PutRetentionPolicy" | "TagResource" => {
                Json(json!({})).into_response()
            }
            other => json_protocol_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                &format!(
                    "the local environment records PutLogEvents (and accepts CreateLogGroup and \
                     CreateLogStream), not {other}"
                ),
            ),
        }
    }
}
