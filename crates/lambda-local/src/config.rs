//! What the environment emulates: the account, the IAM role Temporal assumes, and the functions.
//! Read from a TOML file by the CLI, or built in code by tests and the demo.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// The whole environment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the Lambda and STS APIs listen. Must be a loopback address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The emulated AWS account id.
    #[serde(default = "default_account")]
    pub account_id: String,
    /// The emulated region.
    #[serde(default = "default_region")]
    pub region: String,
    /// The role Temporal assumes before invoking, with the external id its trust policy requires.
    pub role: RoleConfig,
    /// A JSON-lines file that receives one record per invocation.
    #[serde(default)]
    pub records: Option<PathBuf>,
    /// Also print the functions' stdout and stderr on this process's stderr (they are kept in
    /// each function's log either way: [`crate::LocalLambda::logs`]).
    #[serde(default = "yes")]
    pub forward_logs: bool,
    /// Give each execution environment its function's CPU share and memory limit, as Lambda
    /// does (needs root and the cgroup v1 `cpu` and `memory` controllers). Off, or where they
    /// are missing, environments run unlimited and every record says `limits: "none"`.
    #[serde(default = "yes")]
    pub limits: bool,
    /// Secrets Manager secrets (name → secret string) that functions read through the AWS
    /// Parameters and Secrets Lambda Extension's endpoint, which lambda-local serves.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Parameter Store parameters (name → value), served the same way.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// The functions.
    #[serde(default, rename = "function")]
    pub functions: Vec<FunctionConfig>,
}

/// The IAM role the Worker Controller assumes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// The role's ARN, e.g. `arn:aws:iam::123456789012:role/temporal-invoker`.
    pub arn: String,
    /// The external id its trust policy requires (`sts:ExternalId`).
    pub external_id: String,
}

/// One function.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// The function name.
    pub name: String,
    /// The published version invocations run as (`$LATEST` answers too).
    #[serde(default = "default_version")]
    pub version: String,
    /// The bootstrap and its arguments.
    pub command: Vec<String>,
    /// `LAMBDA_TASK_ROOT` and the working directory (the unpacked deployment package).
    pub task_root: PathBuf,
    /// The function timeout.
    #[serde(default = "default_timeout", rename = "timeout_secs", with = "seconds")]
    pub timeout: Duration,
    /// The configured memory size in MB: the environment's memory limit and, in proportion
    /// (1,769 MB = one vCPU), its CPU share, when [`Config::limits`] is on.
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// Reserved concurrency: at most this many invocations at once; async events queue.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Environment variables of the function, on top of Lambda's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How many times a failed asynchronous (`Event`) invocation is retried: 0-2, as Lambda's
    /// `MaximumRetryAttempts` (default 2).
    #[serde(default = "default_async_retries")]
    pub async_retries: u32,
    /// The waits before each retry, in milliseconds: Lambda waits a minute before the first
    /// and two before the second (the default, `[60000, 120000]`); tests shorten them.
    #[serde(default = "default_async_retry_delays_ms")]
    pub async_retry_delays_ms: Vec<u64>,
    /// The function has an extension (a layer such as the ADOT collector). Lambda's shutdown
    /// phase sends the runtime SIGTERM only then; without one, the environment is just stopped.
    #[serde(default)]
    pub extension: bool,
    /// The handler setting (`_HANDLER`); custom runtimes may ignore it.
    #[serde(default = "default_handler")]
    pub handler: String,
    /// Lambda's logging configuration: `Text` or `JSON`. Unset (as for a function that never
    /// set one), the function is not told; set, it gets `AWS_LAMBDA_LOG_FORMAT`.
    #[serde(default)]
    pub log_format: Option<String>,
    /// The application log level of the `JSON` format (`AWS_LAMBDA_LOG_LEVEL`): TRACE, DEBUG,
    /// INFO (Lambda's default), WARN, ERROR or FATAL.
    #[serde(default)]
    pub log_level: Option<String>,
}

impl FunctionConfig {
    /// A function with Lambda's defaults for everything but its name, command and task root.
    pub fn new(
        name: impl Into<String>,
        command: Vec<String>,
        task_root: impl Into<PathBuf>,
    ) -> Self {
        Self {
            name: name.into(),
            version: default_version(),
            command,
            task_root: task_root.into(),
            timeout: default_timeout(),
            memory_mb: default_memory(),
            concurrency: default_concurrency(),
            env: BTreeMap::new(),
            async_retries: default_async_retries(),
            async_retry_delays_ms: default_async_retry_delays_ms(),
            extension: false,
            handler: default_handler(),
            log_format: None,
            log_level: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "function name '{name}': use 1-64 letters, digits, '-' or '_', as Lambda does"
            ));
        }
        if self.command.is_empty() {
            return Err(format!(
                "function {name}: command is empty: give the bootstrap's path"
            ));
        }
        if self.timeout < Duration::from_secs(1) || self.timeout > Duration::from_secs(900) {
            return Err(format!(
                "function {name}: timeout must be 1-900 seconds, as on Lambda"
            ));
        }
        if !(128..=10240).contains(&self.memory_mb) {
            return Err(format!(
                "function {name}: memory_mb must be 128-10240, as on Lambda"
            ));
        }
        if self.concurrency == 0 {
            return Err(format!("function {name}: concurrency must be at least 1"));
        }
        if self.async_retries > 2 {
            return Err(format!(
                "function {name}: async_retries must be 0-2, as Lambda's MaximumRetryAttempts"
            ));
        }
        if self.async_retry_delays_ms.len() < self.async_retries as usize {
            return Err(format!(
                "function {name}: async_retry_delays_ms needs one delay per retry ({} retries)",
                self.async_retries
            ));
        }
        if let Some(format) = self.log_format.as_deref()
            && !["Text", "JSON"].contains(&format)
        {
            return Err(format!(
                "function {name}: log_format '{format}': use Text or JSON, as Lambda does"
            ));
        }
        if let Some(level) = self.log_level.as_deref() {
            if self.log_format.as_deref() != Some("JSON") {
                return Err(format!(
                    "function {name}: log_level needs log_format = \"JSON\" (Lambda sets \
                     application log levels for the JSON format only)"
                ));
            }
            if !LOG_LEVELS.contains(&level) {
                return Err(format!(
                    "function {name}: log_level '{level}': use one of {}",
                    LOG_LEVELS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// An environment on a free loopback port with the given role and no functions.
    pub fn new(role: RoleConfig) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            account_id: default_account(),
            region: default_region(),
            role,
            records: None,
            forward_logs: true,
            limits: true,
            secrets: BTreeMap::new(),
            parameters: BTreeMap::new(),
            functions: Vec::new(),
        }
    }

    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().replace('\n', " "))
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.listen.ip().is_loopback() {
            return Err(format!(
                "listen = {}: the environment only listens on loopback (127.0.0.0/8 or ::1); \
                 it has no authentication and runs processes on request",
                self.listen
            ));
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account_id '{}': use 12 digits", self.account_id));
        }
        if self.role.external_id.is_empty() {
            return Err("role.external_id is empty: Temporal requires one".to_owned());
        }
        self.functions.iter().try_for_each(FunctionConfig::validate)
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9000))
}
fn default_account() -> String {
    "123456789012".to_owned()
}
fn default_region() -> String {
    "us-east-1".to_owned()
}
fn default_version() -> String {
    "1".to_owned()
}
fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_memory() -> u32 {
    128
}
fn default_async_retries() -> u32 {
    2
}
fn default_async_retry_delays_ms() -> Vec<u64> {
    vec![60_000, 120_000]
}
fn default_handler() -> String {
    "bootstrap".to_owned()
}
/// Lambda's application log levels.
const LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
fn default_concurrency() -> u32 {
    10
}
fn yes() -> bool {
    true
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_with_defaults() {
        let config = Config::from_toml(
            r#"
            [role]
            arn = "arn:aws:iam::123456789012:role/r"
            external_id = "x"
            [[function]]
            name = "greeting"
            command = ["./bootstrap"]
            task_root = "."
            timeout_secs = 30
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        let function = &config.functions[0];
        assert_eq!(function.timeout, Duration::from_secs(30));
        assert_eq!((function.memory_mb, function.concurrency), (128, 10));
        assert_eq!(function.version, "1");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn non_loopback_listen_addresses_are_refused() {
        let mut config = Config::new(RoleConfig {
            arn: "arn:aws:iam::123456789012:role/r".to_owned(),
            external_id: "x".to_owned(),
        });
        config.listen = "0.0.0.0:9000".parse().unwrap();
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("only listens on loopback")
        );
        config.listen = "[::1]:9000".parse().unwrap();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn bad_functions_are_explained() {
        let mut function = FunctionConfig::new("bad name", vec!["x".into()], ".");
        assert!(function.validate().unwrap_err().contains("letters, digits"));
        function.name = "ok".into();
        function.timeout = Duration::from_secs(901);
        assert!(function.validate().unwrap_err().contains("1-900"));
        function.timeout = Duration::from_secs(3);
        function.command.clear();
        assert!(
            function
                .validate()
                .unwrap_err()
                .contains("command is empty")
        );
        function.command.push("b".into());
        function.log_level = Some("INFO".into());
        assert!(
            function
                .validate()
                .unwrap_err()
                .contains("needs log_format")
        );
        function.log_format = Some("json".into());
        assert!(
            function
                .validate()
                .unwrap_err()
                .contains("use Text or JSON")
        );
        function.log_format = Some("JSON".into());
        function.log_level = Some("VERBOSE".into());
        assert!(
            function
                .validate()
                .unwrap_err()
                .contains("use one of TRACE")
        );
        function.log_level = Some("FATAL".into());
        assert!(function.validate().is_ok());
        function.async_retries = 3;
        assert!(function.validate().unwrap_err().contains("0-2"));
        function.async_retries = 2;
        function.async_retry_delays_ms = vec![100];
        assert!(
            function
                .validate()
                .unwrap_err()
                .contains("one delay per retry")
        );
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let text = include_str!("../../../lambda-local.example.toml");
        let config = Config::from_toml(text).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.functions[0].env["TEMPORAL_TASK_QUEUE"],
            "serverless-task-queue-1"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::from_toml("[role]\narn = \"a\"\nexternal_id = \"b\"\ntimeout = 3\n")
            .unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }
}
