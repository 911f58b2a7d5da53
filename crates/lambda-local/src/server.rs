//! The environment as a whole: the Lambda and STS APIs on one loopback endpoint, the functions
//! behind them, and the invocation records.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;

use crate::{
    config::{Config, FunctionConfig},
    lambda_api,
    limits::Controllers,
    logs::{LogLine, LogSink, Logs},
    pool::{Function, Retirement, SHUTDOWN_LIMIT},
    record::{InvocationRecord, Records},
    secrets_extension::{SecretsExtension, Stores},
    sts,
    telemetry_apis::{CloudWatchLogEvent, LOGS_TARGET_PREFIX, Telemetry, TraceSegment},
};

/// Why the environment could not start or take a function.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The listen address or the records file could not be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub(crate) struct ServerState {
    pub(crate) config: Config,
    functions: RwLock<HashMap<String, Arc<Function>>>,
    records: Records,
    logs: Logs,
    controllers: Option<Arc<Controllers>>,
    secrets: SecretsExtension,
    telemetry: Telemetry,
}

impl ServerState {
    pub(crate) fn function(&self, name: &str) -> Option<Arc<Function>> {
        self.functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

/// A running local Lambda environment.
pub struct LocalLambda {
    state: Arc<ServerState>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl LocalLambda {
    /// Starts the APIs and registers the configured functions.
    pub async fn start(config: Config) -> Result<Self, Error> {
        config.validate().map_err(Error::Config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
            })?;
        let address = listener.local_addr()?;
        let records = Records::new(config.records.clone()).await?;
        let functions = config.functions.clone();
        let controllers = if config.limits {
            match Controllers::detect() {
                Ok(controllers) => Some(Arc::new(controllers)),
                Err(why) => {
                    eprintln!(
                        "lambda-local: functions run WITHOUT Lambda's CPU share and memory limit: \
                         {why}; every invocation record says limits: \"none\""
                    );
                    None
                }
            }
        } else {
            None
        };
        let stores = Stores {
            secrets: RwLock::new(config.secrets.clone()),
            parameters: RwLock::new(config.parameters.clone()),
        };
        let secrets = SecretsExtension::start(stores, &config.region, &config.account_id).await?;
        let state = Arc::new(ServerState {
            config,
            functions: RwLock::default(),
            records,
            logs: Logs::default(),
            controllers,
            secrets,
            telemetry: Telemetry::default(),
        });
        let app = Router::new()
            .route("/", post(sts_or_logs_call))
            .route("/TraceSegments", post(put_trace_segments))
            .route("/2015-03-31/functions/{function}", get(get_function))
            .route("/2015-03-31/functions/{function}/invocations", post(invoke))
            .route("/_local/invocations", get(invocations))
            .route("/_local/logs/{function}", get(logs))
            .fallback(unsupported)
            .layer(DefaultBodyLimit::max(lambda_api::HTTP_BODY_LIMIT))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let local = Self {
            state,
            address,
            server,
        };
        for function in functions {
            local.add_function(function)?;
        }
        tracing::info!(endpoint = %local.endpoint(), "local Lambda environment listening (loopback only)");
        Ok(local)
    }

    /// Registers a function, replacing one of the same name. Returns its unqualified ARN.
    pub fn add_function(&self, function: FunctionConfig) -> Result<String, Error> {
        function.validate().map_err(Error::Config)?;
        let config = &self.state.config;
        let name = function.name.clone();
        let function = Function::start(
            function,
            &config.region,
            &config.account_id,
            self.state.records.clone(),
            LogSink {
                logs: self.state.logs.clone(),
                function: name,
                forward: config.forward_logs,
            },
            self.state.controllers.clone(),
            &[(
                "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT".to_owned(),
                self.state.secrets.address.port().to_string(),
            )],
        );
        let arn = function.arn.clone();
        self.state
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(function.config.name.clone(), function);
        Ok(arn)
    }

    /// Unregisters a function (later invocations get `ResourceNotFoundException`) and kills its
    /// idle environments.
    pub async fn remove_function(&self, name: &str) {
        let removed = self
            .state
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if let Some(function) = removed {
            function.shutdown().await;
        }
    }

    /// Adds or replaces a Secrets Manager secret that functions can read through the
    /// Parameters and Secrets extension's endpoint.
    pub fn set_secret(&self, name: &str, value: &str) {
        let stores = &self.state.secrets.stores;
        let mut secrets = stores.secrets.write().unwrap_or_else(|e| e.into_inner());
        secrets.insert(name.to_owned(), value.to_owned());
    }

    /// Adds or replaces a Parameter Store parameter, served the same way.
    pub fn set_parameter(&self, name: &str, value: &str) {
        let stores = &self.state.secrets.stores;
        let mut parameters = stores.parameters.write().unwrap_or_else(|e| e.into_inner());
        parameters.insert(name.to_owned(), value.to_owned());
    }

    /// A registered function's configuration.
    pub fn function_config(&self, name: &str) -> Option<FunctionConfig> {
        Some(self.state.function(name)?.config.clone())
    }

    /// The qualified ARN of a registered function's published version.
    pub fn version_arn(&self, name: &str) -> Option<String> {
        let function = self.state.function(name)?;
        Some(format!("{}:{}", function.arn, function.config.version))
    }

    /// `http://127.0.0.1:<port>`: the endpoint of the Lambda and STS APIs, and of the X-Ray and
    /// CloudWatch Logs calls an ADOT collector's `awsxray` and `awsemf` exporters make.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The variables an AWS SDK client (the Temporal server) needs to use this environment.
    pub fn aws_client_environment(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
            ("AWS_REGION", self.state.config.region.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Retires every execution environment of a function, busy or frozen, as Lambda does when it
    /// shuts environments down: for a function with an extension ([`FunctionConfig::extension`]),
    /// SIGTERM to each, then SIGKILL to any still running after [`SHUTDOWN_LIMIT`]; without one,
    /// SIGKILL at once, as Lambda sends the runtime no SIGTERM then. An invocation in progress
    /// ends with the process.
    pub async fn retire_environments(&self, function: &str) -> Vec<Retirement> {
        match self.state.function(function) {
            Some(function) => function.retire(SHUTDOWN_LIMIT).await,
            None => Vec::new(),
        }
    }

    /// Invocations of a function running or queued right now.
    pub fn in_flight(&self, function: &str) -> usize {
        self.state.function(function).map_or(0, |f| f.in_flight())
    }

    /// Every invocation so far, in completion order.
    pub fn records(&self) -> Vec<InvocationRecord> {
        self.state.records.snapshot()
    }

    /// The X-Ray segment documents `PutTraceSegments` received so far, oldest first.
    pub fn trace_segments(&self) -> Vec<TraceSegment> {
        self.state.telemetry.segments()
    }

    /// The CloudWatch Logs events `PutLogEvents` received so far, oldest first (a function's own
    /// output is in [`LocalLambda::logs`]).
    pub fn log_events(&self) -> Vec<CloudWatchLogEvent> {
        self.state.telemetry.log_events()
    }

    /// A function's log so far, oldest first, as CloudWatch would hold it: every line its
    /// processes wrote to stdout and stderr, and the `START`, `END` and `REPORT` lines of its
    /// invocations (the most recent [`crate::logs::MAX_LINES_PER_FUNCTION`] lines). It outlives
    /// replacing or removing the function, as a log group does.
    pub fn logs(&self, function: &str) -> Vec<LogLine> {
        self.state.logs.lines(function)
    }

    /// Stops the APIs and kills every environment.
    pub async fn shutdown(self) {
        self.server.abort();
        let functions: Vec<Arc<Function>> = self
            .state
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, f)| f)
            .collect();
        for function in functions {
            function.shutdown().await;
        }
    }
}

#[derive(Deserialize)]
struct QualifierQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

/// `POST /`: CloudWatch Logs (JSON protocol, named by `X-Amz-Target`) or STS (query protocol).
async fn sts_or_logs_call(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    match target.and_then(|t| t.strip_prefix(LOGS_TARGET_PREFIX)) {
        Some(action) => state.telemetry.logs_call(action, &body),
        None => sts::handle(&state.config, &body),
    }
}

async fn put_trace_segments(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    state.telemetry.put_trace_segments(&body)
}

async fn get_function(
    State(state): State<Arc<ServerState>>,
    Path(function): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Response {
    lambda_api::get_function(&state, &function, query.qualifier.as_deref()).await
}

async fn invoke(
    State(state): State<Arc<ServerState>>,
    Path(function): Path<String>,
    Query(query): Query<QualifierQuery>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    lambda_api::invoke(
        &state,
        &function,
        query.qualifier.as_deref(),
        &headers,
        payload,
    )
    .await
}

async fn invocations(State(state): State<Arc<ServerState>>) -> Response {
    axum::Json(state.records.snapshot()).into_response()
}

async fn logs(State(state): State<Arc<ServerState>>, Path(function): Path<String>) -> Response {
    axum::Json(state.logs.lines(&function)).into_response()
}

async fn unsupported() -> Response {
    lambda_api::lambda_error(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        "lambda-local emulates Invoke, GetFunction and STS AssumeRole only",
    )
}
