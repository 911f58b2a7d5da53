//! The Lambda Runtime API of one execution environment
//! (`/2018-06-01/runtime/invocation/next`, `.../{id}/response`, `.../{id}/error`, `/init/error`),
//! served on its own loopback port, which the function finds in `AWS_LAMBDA_RUNTIME_API`.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::sync::{Mutex, mpsc, oneshot};

/// One event, as the function receives it from `/next`.
pub(crate) struct Event {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) deadline_ms: u64,
    pub(crate) function_arn: String,
    pub(crate) trace_id: String,
}

/// An event on its way to the function, with the channels that report back.
pub(crate) struct Delivery {
    pub(crate) event: Event,
    /// Told when the function picks the event up.
    pub(crate) picked_up: oneshot::Sender<()>,
    /// Told the function's answer.
    pub(crate) answer: oneshot::Sender<Answer>,
}

/// What the function said about an invocation.
#[derive(Debug)]
pub(crate) enum Answer {
    Response(Bytes),
    Error { error_type: String, body: Bytes },
}

/// What the environment learns from the function outside of invocations.
#[derive(Debug)]
pub(crate) enum Signal {
    /// The function called `/next`: initialized, or done with the previous event.
    WaitingForEvent,
    /// The function reported an initialization error.
    InitError { error_type: String, body: Bytes },
}

struct ApiState {
    deliveries: Mutex<mpsc::Receiver<Delivery>>,
    in_flight: Mutex<Option<(String, oneshot::Sender<Answer>)>>,
    signals: mpsc::UnboundedSender<Signal>,
}

/// A running Runtime API: send events in, get signals out.
pub(crate) struct RuntimeApi {
    pub(crate) address: SocketAddr,
    pub(crate) deliveries: mpsc::Sender<Delivery>,
    pub(crate) signals: mpsc::UnboundedReceiver<Signal>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Starts the API on a free loopback port.
    pub(crate) async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (delivery_tx, delivery_rx) = mpsc::channel(1);
        let (signal_tx, signal_rx) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState {
            deliveries: Mutex::new(delivery_rx),
            in_flight: Mutex::new(None),
            signals: signal_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(unknown)
            .with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            deliveries: delivery_tx,
            signals: signal_rx,
            server,
        })
    }
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    let _ = state.signals.send(Signal::WaitingForEvent);
    // One long poll at a time, as on Lambda.
    let Ok(mut deliveries) = state.deliveries.try_lock() else {
        return runtime_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "another /next request is already waiting for an event",
        );
    };
    let Some(delivery) = deliveries.recv().await else {
        return runtime_error(StatusCode::GONE, "ShuttingDown", "the environment is shutting down");
    };
    drop(deliveries);
    let Delivery {
        event,
        picked_up,
        answer,
    } = delivery;
    *state.in_flight.lock().await = Some((event.request_id.clone(), answer));
    let _ = picked_up.send(());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &event.request_id);
    set("lambda-runtime-deadline-ms", &event.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &event.function_arn);
    set("lambda-runtime-trace-id", &event.trace_id);
    set("content-type", "application/json");
    (StatusCode::OK, headers, event.payload).into_response()
}

async fn response(State(state): State<Arc<ApiState>>, Path(id): Path<String>, body: Bytes) -> Response {
    answer(&state, &id, Answer::Response(body)).await
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = error_type(&headers, &body);
    answer(&state, &id, Answer::Error { error_type, body }).await
}

async fn init_error(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Response {
    let error_type = error_type(&headers, &body);
    let _ = state.signals.send(Signal::InitError { error_type, body });
    accepted()
}

async fn answer(state: &ApiState, id: &str, answer: Answer) -> Response {
    let mut in_flight = state.in_flight.lock().await;
    match in_flight.take() {
        Some((current, reply)) if current == id => {
            let _ = reply.send(answer);
            accepted()
        }
        other => {
            *in_flight = other;
            runtime_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                &format!("no invocation {id} is in progress in this environment"),
            )
        }
    }
}

async fn unknown() -> Response {
    runtime_error(
        StatusCode::NOT_FOUND,
        "UnknownPath",
        "not a Runtime API path: see /2018-06-01/runtime/invocation/next, .../{id}/response, \
         .../{id}/error and /2018-06-01/runtime/init/error",
    )
}

/// The error type from the `Lambda-Runtime-Function-Error-Type` header, else the body's
/// `errorType`, else `Unhandled`.
fn error_type(headers: &HeaderMap, body: &[u8]) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()?
                .get("errorType")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".to_owned())
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(serde_json::json!({"status": "OK"}))).into_response()
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}
