//! The Lambda Runtime API of one execution environment
//! (`/2018-06-01/runtime/invocation/next`, `.../{id}/response`, `.../{id}/error`, `/init/error`),
//! served on its own loopback port, which the function finds in `AWS_LAMBDA_RUNTIME_API`.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::lambda_api::{HTTP_BODY_LIMIT, SYNC_PAYLOAD_LIMIT};

/// One event, as the function receives it from `/next`.
pub(crate) struct Event {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) deadline_ms: u64,
    pub(crate) function_arn: String,
    pub(crate) trace_id: String,
    pub(crate) caller: CallerContext,
}

/// What the caller of `Invoke` passed for the function's context object.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallerContext {
    /// `X-Amz-Client-Context`, decoded from base64 (the runtime gets the JSON itself).
    pub(crate) client_context: Option<String>,
    /// `X-Amz-Cognito-Identity`: JSON with `cognitoIdentityId` and `cognitoIdentityPoolId`.
    pub(crate) cognito_identity: Option<String>,
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
    current: Mutex<Current>,
    signals: mpsc::UnboundedSender<Signal>,
}

/// The environment's invocation, as far as the runtime's answers go.
enum Current {
    /// None delivered yet.
    None,
    /// Delivered, waiting for its answer.
    InProgress(String, oneshot::Sender<Answer>),
    /// Answered; a second answer is refused.
    Answered(String),
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
            current: Mutex::new(Current::None),
            signals: signal_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(unknown)
            .layer(DefaultBodyLimit::max(HTTP_BODY_LIMIT))
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
        return runtime_error(
            StatusCode::GONE,
            "ShuttingDown",
            "the environment is shutting down",
        );
    };
    drop(deliveries);
    let Delivery {
        event,
        picked_up,
        answer,
    } = delivery;
    *state.current.lock().await = Current::InProgress(event.request_id.clone(), answer);
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
    if let Some(context) = &event.caller.client_context {
        set("lambda-runtime-client-context", context);
    }
    if let Some(identity) = &event.caller.cognito_identity {
        set("lambda-runtime-cognito-identity", identity);
    }
    set("content-type", "application/json");
    (StatusCode::OK, headers, event.payload).into_response()
}

async fn response(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() <= SYNC_PAYLOAD_LIMIT {
        return answer(&state, &id, Answer::Response(body)).await;
    }
    // As Lambda: the invocation fails with this error, and the runtime is told so.
    let message = format!(
        "Response payload size ({} bytes) exceeded maximum allowed payload size \
         ({SYNC_PAYLOAD_LIMIT} bytes).",
        body.len()
    );
    let error_type = "Function.ResponseSizeTooLarge";
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    let answered = answer(
        &state,
        &id,
        Answer::Error {
            error_type: error_type.to_owned(),
            body: body.to_string().into(),
        },
    )
    .await;
    if answered.status().is_success() {
        runtime_error(StatusCode::PAYLOAD_TOO_LARGE, error_type, &message)
    } else {
        answered
    }
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

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = error_type(&headers, &body);
    let _ = state.signals.send(Signal::InitError { error_type, body });
    accepted()
}

/// Passes the runtime's answer for invocation `id` on. As the RIE does, an answer for another
/// invocation than the one in progress is `InvalidRequestID` (400), and one with none in
/// progress, a second one included, is `InvalidStateTransition` (403).
async fn answer(state: &ApiState, id: &str, answer: Answer) -> Response {
    let mut current = state.current.lock().await;
    match std::mem::replace(&mut *current, Current::None) {
        Current::InProgress(in_progress, reply) if in_progress == id => {
            let _ = reply.send(answer);
            *current = Current::Answered(in_progress);
            accepted()
        }
        Current::InProgress(in_progress, reply) => {
            *current = Current::InProgress(in_progress.clone(), reply);
            runtime_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                &format!("invocation {id} is not the one in progress here ({in_progress})"),
            )
        }
        Current::Answered(answered) => {
            let message = if answered == id {
                format!("invocation {id} was already answered: answer each invocation once")
            } else {
                format!("no invocation is in progress here (the last, {answered}, was answered)")
            };
            *current = Current::Answered(answered);
            runtime_error(StatusCode::FORBIDDEN, "InvalidStateTransition", &message)
        }
        Current::None => runtime_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            &format!("no invocation is in progress here, so none to answer as {id}: call /next"),
        ),
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

/// The body's `errorType` (the function's own name for the error), else the
/// `Lambda-Runtime-Function-Error-Type` header (which runtimes often set to a generic
/// `unhandled`), else `Unhandled`.
fn error_type(headers: &HeaderMap, body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|body| body.get("errorType")?.as_str().map(str::to_owned))
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".to_owned())
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": "OK"})),
    )
        .into_response()
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// One HTTP/1.1 exchange; returns the status line's code, the headers and the body.
    async fn http(api: &RuntimeApi, method: &str, path: &str, body: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(api.address).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
        (status, head.to_lowercase(), body.to_owned())
    }

    fn event(request_id: &str) -> (Delivery, oneshot::Receiver<()>, oneshot::Receiver<Answer>) {
        let (picked_up, picked_rx) = oneshot::channel();
        let (answer, answer_rx) = oneshot::channel();
        let delivery = Delivery {
            event: Event {
                request_id: request_id.to_owned(),
                payload: Bytes::from_static(b"{\"hello\":1}"),
                deadline_ms: 1234,
                function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f:1".to_owned(),
                trace_id: "Root=1-0-0".to_owned(),
                caller: CallerContext::default(),
            },
            picked_up,
            answer,
        };
        (delivery, picked_rx, answer_rx)
    }

    #[tokio::test]
    async fn each_runtime_api_listens_on_loopback_only() {
        let api = RuntimeApi::start().await.unwrap();
        assert_eq!(
            api.address.ip(),
            std::net::IpAddr::from([127, 0, 0, 1]),
            "{}",
            api.address
        );
    }

    #[tokio::test]
    async fn an_event_goes_out_with_lambdas_headers_and_its_response_comes_back() {
        let api = RuntimeApi::start().await.unwrap();
        let (delivery, picked, answer) = event("req-1");
        api.deliveries.send(delivery).await.unwrap();
        let (status, head, body) =
            http(&api, "GET", "/2018-06-01/runtime/invocation/next", "").await;
        assert_eq!(status, 200);
        assert_eq!(body, "{\"hello\":1}");
        for header in [
            "lambda-runtime-aws-request-id: req-1",
            "lambda-runtime-deadline-ms: 1234",
            "lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:f:1",
            "lambda-runtime-trace-id: root=1-0-0",
        ] {
            assert!(head.contains(header), "{header} in {head}");
        }
        picked.await.unwrap();
        let (status, _, _) = http(
            &api,
            "POST",
            "/2018-06-01/runtime/invocation/req-1/response",
            "\"ok\"",
        )
        .await;
        assert_eq!(status, 202);
        match answer.await.unwrap() {
            Answer::Response(body) => assert_eq!(body, "\"ok\""),
            other => panic!("{other:?}"),
        }
        // A second answer to the same invocation is refused, as the RIE refuses it.
        for path in ["req-1/response", "req-1/error"] {
            let path = format!("/2018-06-01/runtime/invocation/{path}");
            let (status, _, body) = http(&api, "POST", &path, "\"again\"").await;
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("InvalidStateTransition"), "{body}");
            assert!(body.contains("already answered"), "{body}");
        }
    }

    #[tokio::test]
    async fn an_answer_for_another_invocation_than_the_one_in_progress_is_refused() {
        let api = RuntimeApi::start().await.unwrap();
        let (delivery, _picked, _answer) = event("req-3");
        api.deliveries.send(delivery).await.unwrap();
        http(&api, "GET", "/2018-06-01/runtime/invocation/next", "").await;
        let path = "/2018-06-01/runtime/invocation/other/response";
        let (status, _, body) = http(&api, "POST", path, "{}").await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("InvalidRequestID") && body.contains("req-3"),
            "{body}"
        );
        // The one in progress can still be answered.
        let path = "/2018-06-01/runtime/invocation/req-3/response";
        assert_eq!(http(&api, "POST", path, "{}").await.0, 202);
    }

    #[test]
    fn the_bodys_error_type_wins_over_a_generic_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("unhandled"),
        );
        let body = br#"{"errorType":"Worker.Connect","errorMessage":"no"}"#;
        assert_eq!(error_type(&headers, body), "Worker.Connect");
        assert_eq!(error_type(&headers, b"not json"), "unhandled");
        assert_eq!(error_type(&HeaderMap::new(), b"{}"), "Unhandled");
    }

    #[tokio::test]
    async fn errors_carry_their_type_from_the_header_or_the_body() {
        let api = RuntimeApi::start().await.unwrap();
        let (delivery, _picked, answer) = event("req-2");
        api.deliveries.send(delivery).await.unwrap();
        http(&api, "GET", "/2018-06-01/runtime/invocation/next", "").await;
        let body = r#"{"errorType":"Handler.Boom","errorMessage":"boom"}"#;
        let (status, _, _) = http(
            &api,
            "POST",
            "/2018-06-01/runtime/invocation/req-2/error",
            body,
        )
        .await;
        assert_eq!(status, 202);
        match answer.await.unwrap() {
            Answer::Error { error_type, .. } => assert_eq!(error_type, "Handler.Boom"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn malformed_calls_get_clear_errors_and_the_api_keeps_serving() {
        let mut api = RuntimeApi::start().await.unwrap();
        // A response with no invocation in progress.
        let (status, _, body) = http(
            &api,
            "POST",
            "/2018-06-01/runtime/invocation/nope/response",
            "{}",
        )
        .await;
        assert_eq!(status, 403);
        assert!(
            body.contains("InvalidStateTransition") && body.contains("nope"),
            "{body}"
        );
        // Not a Runtime API path, or the wrong method.
        let (status, _, body) = http(&api, "GET", "/2018-06-01/runtime/invocation/", "").await;
        assert_eq!(status, 404);
        assert!(body.contains("not a Runtime API path"), "{body}");
        let (status, _, _) = http(&api, "POST", "/2018-06-01/runtime/invocation/next", "").await;
        assert_eq!(status, 405);
        // A second long poll while one is waiting.
        let waiting = {
            let address = api.address;
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
                stream
                    .write_all(
                        b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n",
                    )
                    .await
                    .unwrap();
                let mut buffer = [0u8; 512];
                let _ = stream.read(&mut buffer).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _, body) = http(&api, "GET", "/2018-06-01/runtime/invocation/next", "").await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("already waiting"), "{body}");
        waiting.abort();
        // An init error is reported to the environment.
        let (status, _, _) = http(
            &api,
            "POST",
            "/2018-06-01/runtime/init/error",
            r#"{"errorType":"Init.Bad"}"#,
        )
        .await;
        assert_eq!(status, 202);
        let mut saw_init_error = false;
        while let Ok(signal) = api.signals.try_recv() {
            if let Signal::InitError { error_type, .. } = signal {
                saw_init_error = error_type == "Init.Bad";
            }
        }
        assert!(saw_init_error);
        // Still serving events.
        let (delivery, _picked, _answer) = event("req-3");
        api.deliveries.send(delivery).await.unwrap();
        let (status, head, _) = http(&api, "GET", "/2018-06-01/runtime/invocation/next", "").await;
        assert_eq!(status, 200);
        assert!(head.contains("req-3"));
    }
}
