//! The Lambda control-plane calls Temporal's Worker Controller makes: `GetFunction` and
//! `Invoke` (`RequestResponse` and `Event`), with Lambda's error contract.

use axum::{
    body::Bytes,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    arn,
    pool::{Function, InvocationType, Reply},
    runtime_api::CallerContext,
    server::ServerState,
};

/// Lambda's payload limits: 6 MB for synchronous invocations (request and response), 1 MB for
/// asynchronous ones.
pub(crate) const SYNC_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;
/// What the HTTP servers accept before any handler runs: above Lambda's limits, so that a
/// payload over them gets Lambda's own error from the handler instead of the web framework's
/// (whose default, 2 MB, is below them).
pub(crate) const HTTP_BODY_LIMIT: usize = 2 * SYNC_PAYLOAD_LIMIT;

/// A Lambda API error before it becomes a response.
struct ApiError {
    status: StatusCode,
    error_type: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        lambda_error(self.status, self.error_type, &self.message)
    }
}

/// Finds the function an identifier (and optional `Qualifier`) names, as Lambda resolves it.
/// Returns it with the ARN it was invoked by.
fn resolve(
    state: &ServerState,
    identifier: &str,
    qualifier: Option<&str>,
) -> Result<(std::sync::Arc<Function>, String), ApiError> {
    let reference = arn::parse(identifier).map_err(|message| ApiError {
        status: StatusCode::BAD_REQUEST,
        error_type: "ValidationException",
        message,
    })?;
    let qualifier = match (reference.qualifier.as_deref(), qualifier) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                error_type: "InvalidParameterValueException",
                message: "the qualifier in the ARN and the Qualifier parameter differ".to_owned(),
            });
        }
        (a, b) => a.or(b),
    };
    let not_found = || ApiError {
        status: StatusCode::NOT_FOUND,
        error_type: "ResourceNotFoundException",
        message: format!(
            "Function not found: {}{}",
            arn::function_arn(
                &state.config.region,
                &state.config.account_id,
                &reference.name
            ),
            qualifier.map(|q| format!(":{q}")).unwrap_or_default()
        ),
    };
    let elsewhere = reference
        .account_id
        .as_deref()
        .is_some_and(|a| a != state.config.account_id)
        || reference
            .region
            .as_deref()
            .is_some_and(|r| r != state.config.region);
    if elsewhere {
        return Err(not_found());
    }
    let function = state.function(&reference.name).ok_or_else(not_found)?;
    match qualifier {
        None | Some("$LATEST") => {}
        Some(q) if q == function.config.version => {}
        Some(_) => return Err(not_found()),
    }
    let invoked = match qualifier {
        Some(q) => format!("{}:{q}", function.arn),
        None => function.arn.clone(),
    };
    Ok((function, invoked))
}

pub(crate) async fn get_function(
    state: &ServerState,
    identifier: &str,
    qualifier: Option<&str>,
) -> Response {
    let (function, invoked) = match resolve(state, identifier, qualifier) {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let config = &function.config;
    let version = qualifier
        .map(str::to_owned)
        .or_else(|| arn::parse(identifier).ok()?.qualifier)
        .unwrap_or_else(|| "$LATEST".to_owned());
    axum::Json(json!({
        "Configuration": {
            "FunctionName": config.name,
            "FunctionArn": invoked,
            "Runtime": "provided.al2023",
            "Role": format!("arn:aws:iam::{}:role/lambda-local-execution", state.config.account_id),
            "Handler": "bootstrap",
            "CodeSize": 0,
            "Description": "served by lambda-local",
            "Timeout": config.timeout.as_secs(),
            "MemorySize": config.memory_mb,
            "Version": version,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": [std::env::consts::ARCH],
        },
        "Code": {"RepositoryType": "S3", "Location": "file://local"},
        "Concurrency": {"ReservedConcurrentExecutions": config.concurrency},
    }))
    .into_response()
}

/// The client context (`X-Amz-Client-Context`, base64-encoded JSON) and Cognito identity
/// (`X-Amz-Cognito-Identity`, JSON) the caller passed, for the function's context object.
fn caller_context(headers: &HeaderMap) -> Result<CallerContext, String> {
    use base64::Engine;
    let header = |name: &str| -> Result<Option<String>, String> {
        headers
            .get(name)
            .map(|value| {
                value
                    .to_str()
                    .map(str::to_owned)
                    .map_err(|_| format!("{name}: use printable ASCII"))
            })
            .transpose()
    };
    let client_context = header("x-amz-client-context")?
        .map(|encoded| {
            let json = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|json| serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok());
            json.ok_or_else(|| "X-Amz-Client-Context: give a base64-encoded JSON object".to_owned())
        })
        .transpose()?;
    let cognito_identity = header("x-amz-cognito-identity")?
        .map(|json| {
            serde_json::from_str::<serde::de::IgnoredAny>(&json)
                .map(|_| json)
                .map_err(|_| {
                    "X-Amz-Cognito-Identity: give a JSON object with cognitoIdentityId \
                              and cognitoIdentityPoolId"
                        .to_owned()
                })
        })
        .transpose()?;
    Ok(CallerContext {
        client_context,
        cognito_identity,
    })
}

pub(crate) async fn invoke(
    state: &ServerState,
    identifier: &str,
    qualifier: Option<&str>,
    headers: &HeaderMap,
    payload: Bytes,
) -> Response {
    let (function, invoked) = match resolve(state, identifier, qualifier) {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    let invocation_type = match invocation_type {
        "RequestResponse" => InvocationType::RequestResponse,
        "Event" => InvocationType::Event,
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        other => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("X-Amz-Invocation-Type '{other}': use RequestResponse, Event or DryRun"),
            );
        }
    };
    let limit = match invocation_type {
        InvocationType::RequestResponse => SYNC_PAYLOAD_LIMIT,
        InvocationType::Event => ASYNC_PAYLOAD_LIMIT,
    };
    if payload.len() > limit {
        return lambda_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        );
    }
    if !payload.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json: the payload must be JSON",
        );
    }
    let caller = match caller_context(headers) {
        Ok(caller) => caller,
        Err(message) => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &message,
            );
        }
    };
    match invocation_type {
        InvocationType::Event => {
            let request_id = function.enqueue(payload, invoked, caller);
            (StatusCode::ACCEPTED, [("x-amzn-requestid", request_id)]).into_response()
        }
        InvocationType::RequestResponse => match function.invoke(payload, invoked, caller).await {
            None => lambda_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.: every reserved concurrency slot of the function is busy",
            ),
            Some((record, Reply::Response(body))) => (
                StatusCode::OK,
                [
                    ("x-amzn-requestid", record.request_id),
                    ("x-amz-executed-version", record.function_version),
                ],
                body,
            )
                .into_response(),
            Some((record, Reply::FunctionError(body))) => (
                StatusCode::OK,
                [
                    ("x-amzn-requestid", record.request_id),
                    ("x-amz-executed-version", record.function_version),
                    ("x-amz-function-error", "Unhandled".to_owned()),
                ],
                body,
            )
                .into_response(),
        },
    }
}

/// An error of an AWS JSON-protocol API (Secrets Manager, Parameter Store, X-Ray, CloudWatch
/// Logs): the type in `__type`, as the AWS SDKs read it.
pub(crate) fn json_protocol_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"__type": error_type, "message": message})),
    )
        .into_response()
}

/// A Lambda API error: the type in `X-Amzn-ErrorType`, as the AWS SDKs read it.
pub(crate) fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        [("x-amzn-errortype", error_type.to_owned())],
        axum::Json(json!({"Type": "User", "Message": message, "message": message})),
    )
        .into_response()
}
