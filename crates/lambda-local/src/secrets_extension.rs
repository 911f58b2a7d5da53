//! The AWS Parameters and Secrets Lambda Extension's local endpoint, serving the secrets and
//! parameters of the configuration (or [`crate::LocalLambda::set_secret`]), as the extension
//! serves Secrets Manager's and Parameter Store's: the stores' own JSON, the session token
//! required in `X-Aws-Parameters-Secrets-Token`, the stores' error types for what is missing.
//! Functions learn its port from `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`, the extension's own
//! setting (on Lambda it listens on 2773 unless that is set).

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::{lambda_api::json_protocol_error, pool::ROLE_SESSION_TOKEN};

/// What the extension serves: Secrets Manager secrets and Parameter Store parameters by name.
#[derive(Default)]
pub(crate) struct Stores {
    pub(crate) secrets: RwLock<BTreeMap<String, String>>,
    pub(crate) parameters: RwLock<BTreeMap<String, String>>,
}

/// A running endpoint; stops when dropped.
pub(crate) struct SecretsExtension {
    pub(crate) address: SocketAddr,
    pub(crate) stores: Arc<Stores>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SecretsExtension {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Served {
    stores: Arc<Stores>,
    region: String,
    account_id: String,
}

impl SecretsExtension {
    /// Serves `stores` on a free loopback port.
    pub(crate) async fn start(
        stores: Stores,
        region: &str,
        account_id: &str,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let stores = Arc::new(stores);
        let served = Arc::new(Served {
            stores: Arc::clone(&stores),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        });
        let app = Router::new()
            .route("/secretsmanager/get", get(secret))
            .route("/systemsmanager/parameters/get", get(parameter))
            .with_state(served);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            stores,
            server,
        })
    }
}

/// The session token check the extension makes on every request.
fn refused(headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("x-aws-parameters-secrets-token")
        .and_then(|v| v.to_str().ok());
    (token != Some(ROLE_SESSION_TOKEN)).then(|| {
        json_protocol_error(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedException",
            "X-Aws-Parameters-Secrets-Token must be the function's AWS_SESSION_TOKEN",
        )
    })
}

/// The name in a name or an ARN (`...:secret:NAME`, `...:parameter/NAME`).
fn name_in(id: &str, marker: &str) -> String {
    id.split_once(marker)
        .map_or(id, |(_, name)| name)
        .to_owned()
}

/// One lookup: the session token checked, the query's `key` read, then `lookup` (the stores'
/// JSON, or `None` for the store's `missing` error).
fn serve(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    key: &str,
    missing: (&str, &str),
    lookup: impl FnOnce(&str) -> Option<serde_json::Value>,
) -> Response {
    if let Some(refused) = refused(headers) {
        return refused;
    }
    let Some(id) = query.get(key) else {
        let message = format!("{key} is required");
        return json_protocol_error(StatusCode::BAD_REQUEST, "ValidationException", &message);
    };
    match lookup(id) {
        Some(found) => Json(found).into_response(),
        None => json_protocol_error(StatusCode::BAD_REQUEST, missing.0, missing.1),
    }
}

async fn secret(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let missing = (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    );
    serve(&headers, &query, "secretId", missing, |id| {
        let name = name_in(id, ":secret:");
        let secrets = served
            .stores
            .secrets
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let value = secrets.get(&name)?;
        let (region, account) = (&served.region, &served.account_id);
        Some(json!({
            "ARN": format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}"),
            "Name": name,
            "SecretString": value,
            "VersionId": "00000000-0000-0000-0000-000000000001",
            "VersionStages": ["AWSCURRENT"],
        }))
    })
}

async fn parameter(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    serve(&headers, &query, "name", ("ParameterNotFound", ""), |id| {
        // An ARN's `parameter/a/b` is `/a/b` or `a/b` by name.
        let name = name_in(id, ":parameter");
        let parameters = served
            .stores
            .parameters
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let (name, value) = [name.as_str(), name.trim_start_matches('/')]
            .into_iter()
            .find_map(|name| Some((name, parameters.get(name)?)))?;
        let slash = if name.starts_with('/') { "" } else { "/" };
        let (region, account) = (&served.region, &served.account_id);
        Some(json!({
            "Parameter": {
                "ARN": format!("arn:aws:ssm:{region}:{account}:parameter{slash}{name}"),
                "Name": name,
                "Type": "SecureString",
                "Value": value,
                "Version": 1,
            }
        }))
    })
}
