//! Secrets named instead of given: `TEMPORAL_API_KEY_SECRET` (and the same for the TLS client
//! key and certificate) names an AWS Secrets Manager secret or a Parameter Store parameter,
//! read once at cold start through the AWS Parameters and Secrets Lambda Extension's local
//! endpoint (no AWS SDK in the bootstrap, no cold-start cost beyond one local call).
//!
//! The value only ever goes where the variable it stands for would have gone; errors name the
//! variable, the secret and the fix, never the value.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use crate::{Error, environment::Environment};

/// The variables that can be read from a store, each through `<NAME>_SECRET`.
pub const SECRET_VARIABLES: [&str; 3] = [
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS_CLIENT_KEY_DATA",
    "TEMPORAL_TLS_CLIENT_CERT_DATA",
];

/// The suffix of a variable that names where another one's value is stored.
const SUFFIX: &str = "_SECRET";
/// Where the extension listens unless `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` says otherwise.
const DEFAULT_PORT: u16 = 2773;
/// How long the extension may take to start answering (it starts with the environment) and
/// then to answer.
const PATIENCE: Duration = Duration::from_secs(3);

/// Where a secret is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reference {
    /// A Secrets Manager secret, by name or ARN: its `SecretString`.
    SecretsManager(String),
    /// A Parameter Store parameter, by name or ARN: its (decrypted) value.
    Parameter(String),
}

impl Reference {
    fn parse(reference: &str) -> Option<Self> {
        let reference = reference.trim();
        if let Some(id) = reference.strip_prefix("secretsmanager:") {
            return (!id.is_empty()).then(|| Self::SecretsManager(id.to_owned()));
        }
        if let Some(name) = reference.strip_prefix("ssm:") {
            return (!name.is_empty()).then(|| Self::Parameter(name.to_owned()));
        }
        if reference.starts_with("arn:aws") && reference.contains(":secretsmanager:") {
            return Some(Self::SecretsManager(reference.to_owned()));
        }
        if reference.starts_with("arn:aws") && reference.contains(":ssm:") {
            return Some(Self::Parameter(reference.to_owned()));
        }
        None
    }

    /// The extension's path for it.
    fn path(&self) -> String {
        match self {
            Self::SecretsManager(id) => format!("/secretsmanager/get?secretId={}", encode(id)),
            Self::Parameter(name) => format!(
                "/systemsmanager/parameters/get?name={}&withDecryption=true",
                encode(name)
            ),
        }
    }

    /// The value in the extension's answer, which is the store's own (`GetSecretValue`,
    /// `GetParameter`).
    fn value(&self, body: &[u8]) -> Result<String, String> {
        let answer: serde_json::Value = serde_json::from_slice(body)
            .map_err(|_| "the extension's answer is not JSON".to_owned())?;
        let value = match self {
            Self::SecretsManager(_) => answer.get("SecretString"),
            Self::Parameter(_) => answer.pointer("/Parameter/Value"),
        };
        match value.and_then(|v| v.as_str()) {
            Some(value) if !value.is_empty() => Ok(value.to_owned()),
            Some(_) => Err("it is empty: store the value itself".to_owned()),
            None if answer.get("SecretBinary").is_some() => {
                Err("it is binary, not a string: store the value as a secret string".to_owned())
            }
            None => Err("the extension's answer holds no value".to_owned()),
        }
    }

    fn permission(&self) -> &'static str {
        match self {
            Self::SecretsManager(_) => "secretsmanager:GetSecretValue",
            Self::Parameter(_) => "ssm:GetParameter (and kms:Decrypt for a SecureString)",
        }
    }
}

/// `env` with every `<NAME>_SECRET` of [`SECRET_VARIABLES`] replaced by the value it names.
/// Without any, `env` as it is and no call.
pub(crate) fn resolve(env: &Environment) -> Result<Environment, Error> {
    let mut resolved = env.clone();
    for variable in SECRET_VARIABLES {
        let named = format!("{variable}{SUFFIX}");
        let Some(reference) = env.get(&named) else {
            continue;
        };
        let fail = |problem: String| Error::Secret {
            variable: named.clone(),
            reference: reference.to_owned(),
            problem,
        };
        if env.get(variable).is_some() {
            return Err(fail(format!("{variable} is set too: keep one of the two")));
        }
        let parsed = Reference::parse(reference).ok_or_else(|| {
            fail(
                "name it as secretsmanager:<secret name or ARN>, ssm:<parameter name>, or an \
                 ARN of either"
                    .to_owned(),
            )
        })?;
        let value = fetch(env, &parsed).map_err(fail)?;
        resolved.vars.insert(variable.to_owned(), value);
    }
    Ok(resolved)
}

/// Asks the extension for the secret's value.
fn fetch(env: &Environment, reference: &Reference) -> Result<String, String> {
    let port = match env.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") {
        None => DEFAULT_PORT,
        Some(port) => port.parse().map_err(|_| {
            format!("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT is '{port}': give a port number")
        })?,
    };
    let token = env.get("AWS_SESSION_TOKEN").ok_or_else(|| {
        "AWS_SESSION_TOKEN is not set, and the extension wants it: this runs only inside Lambda"
            .to_owned()
    })?;
    let (status, body) = get(port, &reference.path(), token)?;
    if status == 200 {
        return reference.value(&body);
    }
    // The store's own error type decides where the extension passes it on; the status where not.
    let kind = error_type(&body).unwrap_or_default();
    if kind.contains("NotFound") || status == 404 {
        Err("it does not exist (in this account and region): create it, or fix the name".into())
    } else if kind.contains("AccessDenied") || status == 403 {
        Err(format!(
            "access denied: allow {} on it to the function's execution role",
            reference.permission()
        ))
    } else if status == 401 {
        Err("the extension refused the session token: this runs only inside Lambda".into())
    } else if kind.is_empty() {
        Err(format!("the extension answered HTTP {status}"))
    } else {
        Err(format!("the extension answered HTTP {status}: {kind}"))
    }
}

/// One GET to the extension on loopback; its status and body. Nothing listening is retried
/// for [`PATIENCE`] (the extension starts with the environment).
fn get(port: u16, path: &str, token: &str) -> Result<(u16, Vec<u8>), String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    let mut stream = loop {
        match TcpStream::connect_timeout(&address, PATIENCE) {
            Ok(stream) => break stream,
            Err(_) if started.elapsed() < PATIENCE => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(format!(
                    "nothing answers on localhost:{port} ({e}): add the AWS Parameters and \
                     Secrets Lambda Extension layer to the function, or set \
                     PARAMETERS_SECRETS_EXTENSION_HTTP_PORT to its port"
                ));
            }
        }
    };
    let io = |e: std::io::Error| format!("reading it from the extension on localhost:{port}: {e}");
    stream.set_read_timeout(Some(PATIENCE)).map_err(io)?;
    stream.set_write_timeout(Some(PATIENCE)).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nX-Aws-Parameters-Secrets-Token: \
         {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "the extension's answer is not HTTP".to_owned())?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "the extension's answer is not HTTP".to_owned())?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("the extension's answer is chunked, which this reader does not take".into());
    }
    Ok((status, response[split + 4..].to_vec()))
}

/// The AWS error type in an error body (`__type`), never its message (it may quote input).
fn error_type(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let kind = body.get("__type")?.as_str()?;
    Some(kind.rsplit('#').next().unwrap_or(kind).to_owned())
}

/// Percent-encodes everything but the unreserved characters, for a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::{net::TcpListener, thread};

    use super::*;

    /// A one-shot stand-in for the extension: answers `status` and `body` to one request and
    /// hands the request back.
    fn extension(status: u16, body: &'static str) -> (u16, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let serve = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 2048];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buffer).unwrap();
                request.extend_from_slice(&buffer[..n]);
            }
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        (port, serve)
    }

    fn env(port: u16, name: &str, reference: &str) -> Environment {
        Environment::default()
            .with("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.to_string())
            .with("AWS_SESSION_TOKEN", "session-token")
            .with(name, reference)
    }

    #[test]
    fn a_secrets_manager_secret_becomes_the_variable_it_stands_for() {
        let (port, request) = extension(200, r#"{"Name":"t/key","SecretString":"the-key"}"#);
        let resolved = resolve(&env(
            port,
            "TEMPORAL_API_KEY_SECRET",
            "secretsmanager:t/key+1",
        ))
        .unwrap();
        assert_eq!(resolved.get("TEMPORAL_API_KEY"), Some("the-key"));
        let request = request.join().unwrap();
        assert!(
            request.starts_with("GET /secretsmanager/get?secretId=t%2Fkey%2B1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("X-Aws-Parameters-Secrets-Token: session-token\r\n"),
            "{request}"
        );
    }

    #[test]
    fn a_parameter_is_read_decrypted() {
        let (port, request) = extension(200, r#"{"Parameter":{"Name":"/k","Value":"PEM"}}"#);
        let resolved =
            resolve(&env(port, "TEMPORAL_TLS_CLIENT_KEY_DATA_SECRET", "ssm:/k")).unwrap();
        assert_eq!(resolved.get("TEMPORAL_TLS_CLIENT_KEY_DATA"), Some("PEM"));
        assert!(
            request
                .join()
                .unwrap()
                .starts_with("GET /systemsmanager/parameters/get?name=%2Fk&withDecryption=true ")
        );
    }

    #[test]
    fn each_failure_names_the_secret_and_the_fix_never_a_value() {
        let cases = [
            (
                400,
                r#"{"__type":"ResourceNotFoundException","message":"no"}"#,
                "does not exist (in this account and region): create it, or fix the name",
            ),
            (
                403,
                r#"{"__type":"AccessDeniedException"}"#,
                "access denied: allow secretsmanager:GetSecretValue on it",
            ),
            (200, r#"{"SecretBinary":"AAEC"}"#, "binary, not a string"),
            (
                500,
                r#"{"__type":"InternalServiceError"}"#,
                "HTTP 500: InternalServiceError",
            ),
        ];
        for (status, body, expected) in cases {
            let (port, _request) = extension(status, body);
            let error = resolve(&env(
                port,
                "TEMPORAL_API_KEY_SECRET",
                "secretsmanager:prod/key",
            ))
            .unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with("TEMPORAL_API_KEY_SECRET = secretsmanager:prod/key: "),
                "{message}"
            );
            assert!(message.contains(expected), "{message}");
            assert_eq!(error.error_type(), "TemporalLambdaWorker.Secret");
        }
    }

    #[test]
    fn mistakes_are_caught_before_any_call() {
        let both = env(1, "TEMPORAL_API_KEY_SECRET", "ssm:/k").with("TEMPORAL_API_KEY", "k");
        assert!(
            resolve(&both)
                .unwrap_err()
                .to_string()
                .contains("keep one of the two")
        );
        let unnamed = env(1, "TEMPORAL_API_KEY_SECRET", "prod/key");
        assert!(
            resolve(&unnamed)
                .unwrap_err()
                .to_string()
                .contains("name it as secretsmanager:")
        );
        let no_token = Environment::default().with("TEMPORAL_API_KEY_SECRET", "ssm:/k");
        assert!(
            resolve(&no_token)
                .unwrap_err()
                .to_string()
                .contains("AWS_SESSION_TOKEN is not set")
        );
    }

    #[test]
    fn without_the_extension_the_layer_is_named() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let message = resolve(&env(port, "TEMPORAL_API_KEY_SECRET", "ssm:/k"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("add the AWS Parameters and Secrets Lambda Extension layer"),
            "{message}"
        );
    }

    #[test]
    fn arns_name_their_store() {
        assert_eq!(
            Reference::parse("arn:aws:secretsmanager:us-east-1:1:secret:k-AbCdEf"),
            Some(Reference::SecretsManager(
                "arn:aws:secretsmanager:us-east-1:1:secret:k-AbCdEf".into()
            ))
        );
        assert_eq!(
            Reference::parse("arn:aws:ssm:us-east-1:1:parameter/k"),
            Some(Reference::Parameter(
                "arn:aws:ssm:us-east-1:1:parameter/k".into()
            ))
        );
        assert_eq!(Reference::parse("secretsmanager:"), None);
    }
}
