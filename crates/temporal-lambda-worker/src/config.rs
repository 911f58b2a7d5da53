//! Where the Temporal client configuration comes from.
//!
//! The file is found in this order: `TEMPORAL_CONFIG_FILE`, then `temporal.toml` in
//! `$LAMBDA_TASK_ROOT` (where Lambda unpacks the deployment package), then `temporal.toml` in the
//! working directory. With no file, environment variables alone apply. Temporal's envconfig
//! variables (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`,
//! `TEMPORAL_PROFILE`, `TEMPORAL_GRPC_META_*`) apply on top of the file.
//!
//! Settings the Rust SDK would silently drop are rejected with an error instead, so a worker never
//! runs with a configuration other than the one written down.

use std::path::{Path, PathBuf};

use temporalio_client::{
    ClientOptions, ConnectionOptions,
    envconfig::{ClientConfigProfile, ConfigError, DataSource, LoadClientConfigProfileOptions},
};
use temporalio_common::envconfig::load_client_config_profile;

use crate::{Error, environment::Environment};

/// File name looked for in `$LAMBDA_TASK_ROOT` and the working directory.
pub const CONFIG_FILE_NAME: &str = "temporal.toml";

/// Connection and client options, and the file they came from.
#[derive(Clone)]
pub(crate) struct ClientConfig {
    pub(crate) connection: ConnectionOptions,
    pub(crate) client: ClientOptions,
    pub(crate) file: Option<PathBuf>,
}

/// The config file to read, if any.
pub(crate) fn config_file(env: &Environment) -> Result<Option<PathBuf>, Error> {
    if let Some(named) = env.get("TEMPORAL_CONFIG_FILE") {
        let path = env.cwd.join(named);
        // An explicitly named file that is missing is a mistake, not a request for defaults.
        return if path.exists() {
            Ok(Some(path))
        } else {
            Err(Error::ConfigFileMissing { path })
        };
    }
    let candidates = env
        .get("LAMBDA_TASK_ROOT")
        .map(|root| Path::new(root).join(CONFIG_FILE_NAME))
        .into_iter()
        .chain(std::iter::once(env.cwd.join(CONFIG_FILE_NAME)));
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// Loads the client configuration from the config file (if any) and the environment.
pub(crate) fn load(env: &Environment) -> Result<ClientConfig, Error> {
    let file = config_file(env)?;
    let file_error = |problem: String| match &file {
        Some(path) => Error::ConfigFile {
            path: path.clone(),
            problem,
        },
        None => Error::ClientConfig(problem),
    };
    let data = file
        .as_ref()
        .map(|path| {
            std::fs::read(path).map_err(|e| Error::ConfigFile {
                path: path.clone(),
                problem: format!("cannot read it: {e}"),
            })
        })
        .transpose()?;
    if let (Some(path), Some(bytes)) = (&file, &data) {
        check_toml(path, bytes)?;
    }
    if data.is_none()
        && let Some(profile) = env.get("TEMPORAL_PROFILE")
    {
        return Err(Error::ClientConfig(format!(
            "TEMPORAL_PROFILE is '{profile}' but no config file was found (looked for \
             TEMPORAL_CONFIG_FILE, $LAMBDA_TASK_ROOT/{CONFIG_FILE_NAME}, ./{CONFIG_FILE_NAME}): \
             ship a {CONFIG_FILE_NAME} with that profile or unset TEMPORAL_PROFILE"
        )));
    }
    let options = LoadClientConfigProfileOptions::builder()
        .maybe_config_source(data.map(DataSource::Data))
        // A misspelt key (`adress`) must not silently fall back to the default.
        .config_file_strict(true)
        // Without a file of ours, never fall back to the SDK's home-directory default.
        .disable_file(file.is_none())
        .build();
    let profile = load_client_config_profile(options, Some(&env.vars)).map_err(|e| match e {
        ConfigError::ProfileNotFound(name) => file_error(format!(
            "profile '{name}' is not in the file: add a [profile.{name}] table or fix TEMPORAL_PROFILE"
        )),
        ConfigError::InvalidConfig(msg) => file_error(one_line(&msg)),
        ConfigError::LoadError(e) => file_error(one_line(&e.to_string())),
    })?;
    let profile = resolve_tls_files(reject_dropped_settings(profile)?)?;
    check_address(profile.address.as_deref())?;
    let namespace = profile
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let connection =
        ConnectionOptions::try_from(profile).map_err(|e| Error::ClientConfig(e.to_string()))?;
    Ok(ClientConfig {
        connection,
        client: ClientOptions::new(namespace).build(),
        file,
    })
}

/// Parses the file once on our side so that a syntax error is reported on one line, with its
/// position, rather than as the parser's multi-line snippet.
fn check_toml(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let problem = |problem: String| Error::ConfigFile {
        path: path.to_owned(),
        problem,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| problem(format!("not UTF-8 text ({e}): save it as UTF-8")))?;
    toml::from_str::<toml::Table>(text).map(drop).map_err(|e| {
        let at = e.span().map_or(0, |span| span.start).min(text.len());
        let line = text[..at].matches('\n').count() + 1;
        let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
        problem(format!(
            "invalid TOML at line {line}, column {column}: {}",
            e.message().trim()
        ))
    })
}

/// The parser's multi-line report (position, a snippet of the file, the problem) as one line:
/// the position and the problem.
fn one_line(report: &str) -> String {
    let mut lines = report.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    // Snippet lines are the quoted file (`2 | adress = ...`) and its markers (`| ^^^`).
    let snippet = |l: &&str| {
        l.starts_with('|')
            || l.split_once(" |")
                .is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok())
    };
    let problem = lines.rfind(|l| !snippet(l));
    match problem {
        Some(problem) => format!(
            "{}: {problem}",
            first.trim_start_matches("TOML parse error ")
        ),
        None => first.to_owned(),
    }
}

/// Fails on settings that the SDK's conversion to connection options would ignore.
fn reject_dropped_settings(profile: ClientConfigProfile) -> Result<ClientConfigProfile, Error> {
    if profile
        .tls
        .as_ref()
        .is_some_and(|tls| tls.disable_host_verification)
    {
        return Err(Error::ClientConfig(
            "tls.disable_host_verification (TEMPORAL_TLS_DISABLE_HOST_VERIFICATION) is not \
             supported by the Temporal Rust SDK: set tls.server_name to the name in the server's \
             certificate, or tls.server_ca_cert to the CA that signed it"
                .to_owned(),
        ));
    }
    if profile
        .codec
        .as_ref()
        .is_some_and(|codec| codec.endpoint.is_some() || codec.auth.is_some())
    {
        return Err(Error::ClientConfig(
            "codec.endpoint/codec.auth (TEMPORAL_CODEC_*) are not supported by the Temporal Rust \
             SDK: remove them and set a payload codec on options.client.data_converter in configure"
                .to_owned(),
        ));
    }
    Ok(profile)
}

/// Reads TLS files up front so that an unreadable one is reported with its path and setting.
fn resolve_tls_files(mut profile: ClientConfigProfile) -> Result<ClientConfigProfile, Error> {
    if let Some(tls) = profile.tls.as_mut() {
        for (setting, source) in [
            ("tls.client_cert", &mut tls.client_cert),
            ("tls.client_key", &mut tls.client_key),
            ("tls.server_ca_cert", &mut tls.server_ca_cert),
        ] {
            if let Some(DataSource::Path(path)) = source {
                let data = std::fs::read(&*path).map_err(|e| {
                    Error::ClientConfig(format!(
                        "{setting}: cannot read '{path}': {e}: fix the path or the file's permissions"
                    ))
                })?;
                *source = Some(DataSource::Data(data));
            }
        }
    }
    Ok(profile)
}

/// Rejects an address without a port, which would otherwise silently go to port 80 or 443.
fn check_address(address: Option<&str>) -> Result<(), Error> {
    let Some(address) = address else {
        return Ok(());
    };
    let authority = address
        .split_once("://")
        .map_or(address, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, port)| port),
        None => authority.rsplit_once(':').map(|(_, port)| port),
    };
    match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(Error::ClientConfig(format!(
            "address '{address}' has no port: write host:port, for example \
             localhost:7233 or <namespace>.<account>.tmprl.cloud:7233"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with_file(content: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), content).unwrap();
        dir
    }

    fn load_err(env: &Environment) -> Error {
        match load(env) {
            Err(e) => e,
            Ok(_) => panic!("expected a configuration error"),
        }
    }

    fn env_in(cwd: &Path) -> Environment {
        Environment {
            cwd: cwd.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn explicit_file_wins_over_task_root_and_cwd() {
        let (explicit, root, cwd) = (dir_with_file(""), dir_with_file(""), dir_with_file(""));
        let explicit_file = explicit.path().join(CONFIG_FILE_NAME);
        let env = env_in(cwd.path())
            .with("TEMPORAL_CONFIG_FILE", explicit_file.to_str().unwrap())
            .with("LAMBDA_TASK_ROOT", root.path().to_str().unwrap());
        assert_eq!(config_file(&env).unwrap(), Some(explicit_file));
    }

    #[test]
    fn task_root_wins_over_cwd() {
        let (root, cwd) = (dir_with_file(""), dir_with_file(""));
        let env = env_in(cwd.path()).with("LAMBDA_TASK_ROOT", root.path().to_str().unwrap());
        assert_eq!(
            config_file(&env).unwrap(),
            Some(root.path().join(CONFIG_FILE_NAME))
        );
    }

    #[test]
    fn cwd_is_the_last_resort_and_no_file_means_none() {
        let cwd = dir_with_file("");
        let empty_root = tempfile::tempdir().unwrap();
        let env = env_in(cwd.path()).with("LAMBDA_TASK_ROOT", empty_root.path().to_str().unwrap());
        assert_eq!(
            config_file(&env).unwrap(),
            Some(cwd.path().join(CONFIG_FILE_NAME))
        );
        assert_eq!(config_file(&env_in(empty_root.path())).unwrap(), None);
    }

    #[test]
    fn missing_explicit_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path()).with("TEMPORAL_CONFIG_FILE", "nope.toml");
        let err = config_file(&env).unwrap_err().to_string();
        assert!(
            err.contains("nope.toml") && err.contains("TEMPORAL_CONFIG_FILE"),
            "{err}"
        );
    }

    #[test]
    fn no_file_means_environment_only() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path())
            .with("TEMPORAL_ADDRESS", "temporal.internal:7233")
            .with("TEMPORAL_NAMESPACE", "prod");
        let config = load(&env).unwrap();
        assert_eq!(config.file, None);
        assert_eq!(
            config.connection.target.as_str(),
            "http://temporal.internal:7233/"
        );
        assert_eq!(config.client.namespace, "prod");
    }

    #[test]
    fn file_values_load_and_environment_overrides_them() {
        let dir = dir_with_file(
            "[profile.default]\naddress = \"file-host:7233\"\nnamespace = \"from-file\"\n\
             [profile.default.grpc_meta]\nx-team = \"payments\"\n",
        );
        let config = load(&env_in(dir.path())).unwrap();
        assert_eq!(config.connection.target.as_str(), "http://file-host:7233/");
        assert_eq!(config.client.namespace, "from-file");
        assert_eq!(
            config.connection.headers.as_ref().unwrap()["x-team"],
            "payments"
        );
        let env = env_in(dir.path()).with("TEMPORAL_NAMESPACE", "from-env");
        assert_eq!(load(&env).unwrap().client.namespace, "from-env");
    }

    #[test]
    fn profile_is_selected_by_temporal_profile() {
        let dir = dir_with_file(
            "[profile.default]\naddress = \"a:1\"\n[profile.staging]\naddress = \"b:2\"\n",
        );
        let env = env_in(dir.path()).with("TEMPORAL_PROFILE", "staging");
        assert_eq!(
            load(&env).unwrap().connection.target.as_str(),
            "http://b:2/"
        );
        let env = env_in(dir.path()).with("TEMPORAL_PROFILE", "prod");
        let err = load_err(&env).to_string();
        assert!(
            err.contains("profile 'prod'") && err.contains("temporal.toml"),
            "{err}"
        );
    }

    #[test]
    fn parse_error_names_the_file_and_the_problem() {
        let dir = dir_with_file("[profile.default\naddress = ");
        let err = load_err(&env_in(dir.path()));
        let msg = err.to_string();
        assert!(matches!(err, Error::ConfigFile { .. }), "{err:?}");
        assert!(
            msg.contains(&dir.path().join(CONFIG_FILE_NAME).display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("invalid TOML at line 1, column 17"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_file() {
        for (text, key) in [
            ("[profile.default]\nadress = \"temporal:7233\"\n", "adress"),
            (
                "[profile.default.tls]\nserver_ca_cert = \"ca.pem\"\n",
                "server_ca_cert",
            ),
            (
                "[profiles.default]\naddress = \"temporal:7233\"\n",
                "profiles",
            ),
        ] {
            let dir = dir_with_file(text);
            let err = load_err(&env_in(dir.path()));
            let msg = err.to_string();
            assert!(matches!(err, Error::ConfigFile { .. }), "{err:?}");
            assert!(msg.contains(&format!("`{key}`")), "{msg}");
            assert!(msg.contains(CONFIG_FILE_NAME), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }

    #[test]
    fn api_key_turns_tls_on() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path())
            .with("TEMPORAL_ADDRESS", "ns.acct.tmprl.cloud:7233")
            .with("TEMPORAL_API_KEY", "secret-key");
        let config = load(&env).unwrap();
        assert_eq!(config.connection.api_key.as_deref(), Some("secret-key"));
        assert!(config.connection.tls_options.is_some());
        assert_eq!(config.connection.target.scheme(), "https");
    }

    #[test]
    fn dropped_settings_are_rejected_not_lost() {
        let dir = dir_with_file(
            "[profile.default]\naddress = \"h:7233\"\n[profile.default.tls]\n\
             disable_host_verification = true\n",
        );
        let err = load_err(&env_in(dir.path())).to_string();
        assert!(
            err.contains("disable_host_verification") && err.contains("server_name"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path()).with("TEMPORAL_CODEC_ENDPOINT", "http://codec");
        let err = load_err(&env).to_string();
        assert!(err.contains("codec"), "{err}");
    }

    #[test]
    fn unreadable_tls_file_names_setting_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path())
            .with("TEMPORAL_ADDRESS", "h:7233")
            .with("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "/no/such/ca.pem");
        let err = load_err(&env).to_string();
        assert!(
            err.contains("tls.server_ca_cert") && err.contains("/no/such/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn address_needs_a_port() {
        for ok in ["h:7233", "http://h:7233", "https://h:7233/x", "[::1]:7233"] {
            assert!(check_address(Some(ok)).is_ok(), "{ok}");
        }
        for bad in ["h", "http://h", "h:", "[::1]", "h:port"] {
            let err = check_address(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("has no port"), "{bad}: {err}");
        }
    }

    #[test]
    fn profile_without_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path()).with("TEMPORAL_PROFILE", "prod");
        let err = load_err(&env).to_string();
        assert!(
            err.contains("TEMPORAL_PROFILE") && err.contains("no config file"),
            "{err}"
        );
    }
}
