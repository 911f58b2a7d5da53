//! TLS, API keys and mTLS for real, end to end: the worker (`test-worker`, invoked by the dev
//! server's Worker Controller in lambda-local) reaches the Temporal dev server only through a
//! TLS-terminating gRPC proxy (nginx) that checks an API key, or a client certificate. The dev
//! server stays plaintext on loopback; the tests start workflows and read results on it directly.
//!
//! Each case also looks for its secrets (the API keys, the client key) in everything the run
//! printed: the function's whole log (stdout, stderr, START/END/REPORT lines), its invocation
//! records, and nginx's logs; and checks that there was something to look in.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::OnceLock,
    time::{Duration, Instant},
};

mod common;
#[path = "security/pki.rs"]
mod pki;
#[path = "security/proxy.rs"]
mod proxy;
#[path = "security/secrets.rs"]
mod secrets;

use greeting::GreetingWorkflow;
use lambda_local::{FunctionConfig, InvocationRecord, LogSource, Outcome};
use pki::Pki;
use proxy::{Proxy, ProxyOptions};
use secrets::Secrets;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

struct Fixture {
    shared: common::Shared,
    pki: Pki,
    /// The key the proxies accept, and one they refuse.
    api_key: String,
    wrong_key: String,
}

/// One local environment, one dev server and one set of certificates for every test here.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        shared: common::Shared::start("security-external-id"),
        pki: Pki::generate(),
        api_key: format!("tlw-test-key-{}", uuid::Uuid::new_v4().simple()),
        wrong_key: format!("tlw-wrong-key-{}", uuid::Uuid::new_v4().simple()),
    })
}

impl std::ops::Deref for Fixture {
    type Target = common::Shared;

    fn deref(&self) -> &common::Shared {
        &self.shared
    }
}

/// How a function's worker finds and authenticates to Temporal.
struct Worker<'a> {
    name: &'a str,
    /// Environment variables (on top of the task queue and version).
    env: Vec<(&'static str, String)>,
    /// A `temporal.toml` for its task root, if any.
    toml: Option<String>,
}

impl Fixture {
    /// A proxy presenting the trusted server certificate and requiring the API key.
    fn proxy(&self) -> Proxy {
        Proxy::start(&ProxyOptions {
            server_cert: &self.pki.server.cert,
            server_key: &self.pki.server.key,
            api_key: Some(&self.api_key),
            client_ca: None,
            upstream: &self.server.address,
        })
    }

    /// Every secret of the run.
    fn secrets(&self) -> Secrets {
        let mut secrets = Secrets::default();
        secrets.add("the API key", &self.api_key);
        secrets.add("the wrong API key", &self.wrong_key);
        secrets.add_pem_key("the client key", &self.pki.client.key_pem());
        secrets.add_pem_key("the server key", &self.pki.server.key_pem());
        secrets
    }

    /// Registers `test-worker` as function `worker.name` (task root: a fresh directory with the
    /// worker's `temporal.toml`, if any) and attaches it to version `build-1` of deployment
    /// `worker.name`, which invokes it once to register the task queue. Returns the task queue
    /// and the task root, which must live as long as the function.
    fn deploy(&'static self, worker: &Worker) -> (String, tempfile::TempDir) {
        let task_root = tempfile::tempdir().unwrap();
        if let Some(toml) = &worker.toml {
            std::fs::write(task_root.path().join("temporal.toml"), toml).unwrap();
        }
        let name = worker.name.to_owned();
        let task_queue = format!("{name}-tq");
        let mut function = FunctionConfig::new(
            &name,
            vec![env!("CARGO_BIN_EXE_test-worker").to_owned()],
            task_root.path(),
        );
        function.timeout = Duration::from_secs(12);
        let mut env: BTreeMap<String, String> = [
            ("TEMPORAL_TASK_QUEUE", task_queue.clone()),
            ("TEST_WORKER_DEPLOYMENT", name.clone()),
            ("TEST_WORKER_BUILD_ID", "build-1".to_owned()),
            // Stricter than the default (info): debug lines must not carry secrets either.
            (
                "RUST_LOG",
                std::env::var("SECURITY_TEST_LOG_LEVEL").unwrap_or_else(|_| "debug".to_owned()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(worker.env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        function.env = env;
        {
            let _guard = self.runtime.enter();
            self.lambda.add_function(function).unwrap();
        }
        let arn = self.lambda.version_arn(&name).unwrap();
        let role = self.role.clone();
        let server = &self.server;
        self.run(async move {
            server
                .create_lambda_version(&name, "build-1", &arn, &role)
                .await
                .unwrap();
        });
        (task_queue, task_root)
    }

    /// Deploys `worker`, completes a greeting workflow through it, and checks that every
    /// invocation succeeded and that nothing printed a secret; returns the records.
    fn greets_without_printing_secrets(
        &'static self,
        worker: &Worker,
        proxy: &Proxy,
    ) -> Vec<InvocationRecord> {
        let (task_queue, _root) = self.deploy(worker);
        let greeting = self.greet(worker.name, task_queue);
        assert_eq!(greeting, format!("Hello, {}!", worker.name));
        self.settle(worker.name);
        let records = self.records(worker.name);
        assert!(
            records.iter().all(|r| r.outcome == Outcome::Success),
            "{records:?}"
        );
        self.assert_no_secret_printed(worker.name, proxy);
        records
    }

    /// Makes the function's version current and runs a greeting workflow to completion.
    fn greet(&'static self, name: &str, task_queue: String) -> String {
        let name = name.to_owned();
        self.run(async move {
            common::make_current(&self.server, &name).await;
            let client = common::client(&self.server.address).await;
            let handle = client
                .start_workflow(
                    GreetingWorkflow::run,
                    name.clone(),
                    WorkflowStartOptions::new(task_queue, format!("{name}-1")).build(),
                )
                .await
                .unwrap();
            tokio::time::timeout(
                Duration::from_secs(90),
                handle.get_result(WorkflowGetResultOptions::default()),
            )
            .await
            .expect("the workflow completed within 90s")
            .unwrap()
        })
    }

    /// Waits for the function's first invocation (the one attaching the version made) to end.
    fn first_invocation(&self, function: &str) -> InvocationRecord {
        let started = Instant::now();
        loop {
            if let Some(record) = self.records(function).into_iter().next() {
                return record;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{function} was not invoked within 60s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until no invocation of the function is running, so its log is complete.
    fn settle(&self, function: &str) {
        let started = Instant::now();
        while self.lambda.in_flight(function) > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{function} kept running"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The function's whole log as text.
    fn log_text(&self, function: &str) -> String {
        self.lambda
            .logs(function)
            .iter()
            .map(|line| format!("{:?} {}\n", line.source, line.text))
            .collect()
    }

    /// Asserts that nothing the run printed for `function` (its log and records) or `proxy`
    /// printed holds a secret, and that there was something to look in: the function wrote
    /// lines on stderr and the proxy logged requests.
    fn assert_no_secret_printed(&self, function: &str, proxy: &Proxy) {
        self.settle(function);
        let secrets = self.secrets();
        let log = self.lambda.logs(function);
        let stderr_lines = log.iter().filter(|l| l.source == LogSource::Stderr).count();
        assert!(
            stderr_lines >= 3,
            "{function} logged only {stderr_lines} stderr lines: nothing to search"
        );
        let records = self.records(function);
        assert!(!records.is_empty(), "{function}: no invocation record");
        assert!(
            !proxy.access_log().is_empty(),
            "the proxy logged no request"
        );
        let records_json: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        if std::env::var_os("SECURITY_TEST_DUMP").is_some() {
            eprintln!(
                "=== {function}: log, records, nginx (redacted) ===\n{}\n{}\n{}",
                secrets.redact(&self.log_text(function)),
                secrets.redact(&records_json),
                secrets.redact(&proxy.own_logs())
            );
        }
        let mut findings = secrets.findings(&format!("{function}'s log"), &self.log_text(function));
        findings.extend(secrets.findings(&format!("{function}'s records"), &records_json));
        findings.extend(secrets.findings("nginx's logs", &proxy.own_logs()));
        assert!(
            findings.is_empty(),
            "secrets were printed (redacted here):\n{}",
            findings.join("\n")
        );
    }
}

/// Asserts that an invocation failed in the worker with an error naming `address` and
/// containing each of `expected` (case-insensitive); the message shown redacted.
fn assert_failed_with(record: &InvocationRecord, address: &str, expected: &[&str]) {
    let secrets = fixture().secrets();
    let message = record.error_message.clone().unwrap_or_default();
    let shown = secrets.redact(&message);
    assert_eq!(record.outcome, Outcome::Error, "{shown}");
    assert_eq!(
        record.error_type.as_deref(),
        Some("TemporalLambdaWorker.Connect"),
        "{shown}"
    );
    assert!(
        message.contains(&format!("cannot connect to Temporal at https://{address}")),
        "names the address: {shown}"
    );
    for word in expected {
        assert!(
            message.to_lowercase().contains(&word.to_lowercase()),
            "says '{word}': {shown}"
        );
    }
}

fn pem(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_worker_configured_by_temporal_toml_connects_through_tls_with_an_api_key() {
    let fixture = fixture();
    let proxy = fixture.proxy();
    let toml = format!(
        "[profile.default]\naddress = \"{}\"\nnamespace = \"default\"\napi_key = \"{}\"\n\n\
         [profile.default.tls]\nserver_ca_cert_path = \"{}\"\n",
        proxy.address(),
        fixture.api_key,
        fixture.pki.ca.cert.display()
    );
    let worker = Worker {
        name: "tls-toml",
        env: Vec::new(),
        toml: Some(toml),
    };
    let records = fixture.greets_without_printing_secrets(&worker, &proxy);
    assert!(
        records.iter().any(|r| r.activity_tasks == Some(1)),
        "{records:?}"
    );
}

#[test]
fn a_worker_configured_by_environment_variables_only_connects_through_tls_with_an_api_key() {
    let fixture = fixture();
    let proxy = fixture.proxy();
    let worker = Worker {
        name: "tls-env",
        env: vec![
            ("TEMPORAL_ADDRESS", proxy.address()),
            ("TEMPORAL_API_KEY", fixture.api_key.clone()),
            (
                "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
                pem(&fixture.pki.ca.cert),
            ),
        ],
        toml: None,
    };
    fixture.greets_without_printing_secrets(&worker, &proxy);
}

#[test]
fn a_wrong_api_key_fails_the_invocation_with_unauthenticated_naming_the_address() {
    let fixture = fixture();
    let proxy = fixture.proxy();
    let worker = Worker {
        name: "wrong-key",
        env: vec![
            ("TEMPORAL_ADDRESS", proxy.address()),
            ("TEMPORAL_API_KEY", fixture.wrong_key.clone()),
            (
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
                fixture.pki.ca.cert.display().to_string(),
            ),
        ],
        toml: None,
    };
    let _root = fixture.deploy(&worker);
    let record = fixture.first_invocation(worker.name);
    assert_failed_with(
        &record,
        &proxy.address(),
        &["Unauthenticated", "missing or wrong API key"],
    );
    // The worker logged it too, and did not panic.
    let log = fixture.log_text(worker.name);
    assert!(
        log.contains("invocation failed"),
        "{}",
        fixture.secrets().redact(&log)
    );
    assert!(
        !log.contains("panicked"),
        "{}",
        fixture.secrets().redact(&log)
    );
    fixture.assert_no_secret_printed(worker.name, &proxy);
}

#[test]
fn an_untrusted_server_certificate_fails_the_invocation_with_a_tls_error_naming_the_address() {
    let fixture = fixture();
    let proxy = Proxy::start(&ProxyOptions {
        server_cert: &fixture.pki.rogue_server.cert,
        server_key: &fixture.pki.rogue_server.key,
        api_key: Some(&fixture.api_key),
        client_ca: None,
        upstream: &fixture.server.address,
    });
    let worker = Worker {
        name: "untrusted-cert",
        env: vec![
            ("TEMPORAL_ADDRESS", proxy.address()),
            ("TEMPORAL_API_KEY", fixture.api_key.clone()),
            (
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
                fixture.pki.ca.cert.display().to_string(),
            ),
        ],
        toml: None,
    };
    let _root = fixture.deploy(&worker);
    let record = fixture.first_invocation(worker.name);
    assert_failed_with(&record, &proxy.address(), &["certificate", "UnknownIssuer"]);
    let log = fixture.log_text(worker.name);
    assert!(
        !log.contains("panicked"),
        "{}",
        fixture.secrets().redact(&log)
    );
    // The TLS handshake failed, so no request reached nginx's access log; its error log has
    // the handshake instead.
    assert!(proxy.access_log().is_empty());
    let secrets = fixture.secrets();
    fixture.settle(worker.name);
    let mut findings = secrets.findings("log", &log);
    findings.extend(secrets.findings("nginx", &proxy.own_logs()));
    findings.extend(secrets.findings(
        "records",
        &serde_json::to_string(&fixture.records(worker.name)).unwrap(),
    ));
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

#[test]
fn mtls_with_the_client_certificate_completes_a_workflow_and_without_it_fails_clearly() {
    let fixture = fixture();
    let proxy = Proxy::start(&ProxyOptions {
        server_cert: &fixture.pki.server.cert,
        server_key: &fixture.pki.server.key,
        api_key: None,
        client_ca: Some(&fixture.pki.client_ca.cert),
        upstream: &fixture.server.address,
    });
    let ca = fixture.pki.ca.cert.display().to_string();
    let with_cert = Worker {
        name: "mtls",
        env: vec![
            ("TEMPORAL_ADDRESS", proxy.address()),
            ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", ca.clone()),
            (
                "TEMPORAL_TLS_CLIENT_CERT_PATH",
                fixture.pki.client.cert.display().to_string(),
            ),
            (
                "TEMPORAL_TLS_CLIENT_KEY_PATH",
                fixture.pki.client.key.display().to_string(),
            ),
        ],
        toml: None,
    };
    fixture.greets_without_printing_secrets(&with_cert, &proxy);

    let without_cert = Worker {
        name: "mtls-no-cert",
        env: vec![
            ("TEMPORAL_ADDRESS", proxy.address()),
            ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", ca),
        ],
        toml: None,
    };
    let _root = fixture.deploy(&without_cert);
    let record = fixture.first_invocation(without_cert.name);
    assert_failed_with(
        &record,
        &proxy.address(),
        &["Unauthenticated", "client certificate"],
    );
    fixture.assert_no_secret_printed(without_cert.name, &proxy);
}

/// The search above can fail: a function that prints its API key and client key is caught in
/// its log and in its record (whose error quotes its last stderr lines), and the report of the
/// findings is itself redacted.
#[test]
fn a_function_that_prints_its_secrets_is_caught() {
    let fixture = fixture();
    let key_path = fixture.pki.client.key.display().to_string();
    let mut function = FunctionConfig::new(
        "leaky",
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "echo \"starting with key $TEMPORAL_API_KEY\"; cat \"$TEMPORAL_TLS_CLIENT_KEY_PATH\" >&2; exit 1"
                .to_owned(),
        ],
        env!("CARGO_MANIFEST_DIR"),
    );
    function
        .env
        .insert("TEMPORAL_API_KEY".into(), fixture.api_key.clone());
    function
        .env
        .insert("TEMPORAL_TLS_CLIENT_KEY_PATH".into(), key_path);
    {
        let _guard = fixture.runtime.enter();
        fixture.lambda.add_function(function).unwrap();
    }
    let endpoint = fixture.lambda.endpoint();
    let status = fixture.run(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = endpoint.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "POST /2015-03-31/functions/leaky/invocations HTTP/1.1\r\nHost: {address}\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response.lines().next().unwrap_or_default().to_owned()
    });
    assert!(status.contains("200"), "{status}");
    let secrets = fixture.secrets();
    let log = fixture.log_text("leaky");
    let in_log = secrets.findings("leaky's log", &log);
    assert!(
        in_log.iter().any(|f| f.contains("the API key")),
        "{in_log:?}"
    );
    assert!(
        in_log.iter().any(|f| f.contains("the client key")),
        "{in_log:?}"
    );
    let records = serde_json::to_string(&fixture.records("leaky")).unwrap();
    let in_records = secrets.findings("leaky's records", &records);
    assert!(
        in_records.iter().any(|f| f.contains("the client key")),
        "{in_records:?}"
    );
    let report = in_log.join("\n") + &in_records.join("\n");
    assert!(
        secrets.findings("the report", &report).is_empty(),
        "the findings are redacted"
    );
    assert!(report.contains("[REDACTED]"));
}

/// A TLS setting the worker cannot use stops it before it serves anything, and the invocation
/// record says why: the worker reports its one-line setup error to `/runtime/init/error`, with
/// an `errorType` naming the kind of problem, before it exits.
#[test]
fn an_unreadable_tls_file_stops_the_worker_at_init_and_the_record_says_why() {
    let fixture = fixture();
    let worker = Worker {
        name: "tls-missing-ca",
        env: vec![
            ("TEMPORAL_ADDRESS", "127.0.0.1:7233".to_owned()),
            ("TEMPORAL_API_KEY", fixture.api_key.clone()),
            (
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
                "/nonexistent/ca.pem".to_owned(),
            ),
        ],
        toml: None,
    };
    let _root = fixture.deploy(&worker);
    let record = fixture.first_invocation(worker.name);
    let secrets = fixture.secrets();
    let message = record.error_message.clone().unwrap_or_default();
    assert_eq!(
        record.outcome,
        Outcome::InitError,
        "{}",
        secrets.redact(&message)
    );
    // The runtime reported the reason to /init/error (so an invoke answers with it), then
    // exited.
    assert_eq!(
        record.error_type.as_deref(),
        Some("TemporalLambdaWorker.Config")
    );
    assert!(
        message.starts_with(
            "Temporal client configuration: tls.server_ca_cert: cannot read '/nonexistent/ca.pem'",
        ),
        "{}",
        secrets.redact(&message)
    );
    fixture.settle(worker.name);
    let mut findings = secrets.findings("log", &fixture.log_text(worker.name));
    findings.extend(secrets.findings(
        "records",
        &serde_json::to_string(&fixture.records(worker.name)).unwrap(),
    ));
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

#[test]
fn an_api_key_and_client_key_read_from_the_stores_connect_and_are_never_printed() {
    let fixture = fixture();
    // mTLS and an API key at once: the key from Secrets Manager, the client certificate's
    // private key from Parameter Store, both through the Parameters and Secrets extension's
    // endpoint (which lambda-local serves).
    let proxy = Proxy::start(&ProxyOptions {
        server_cert: &fixture.pki.server.cert,
        server_key: &fixture.pki.server.key,
        api_key: Some(&fixture.api_key),
        client_ca: Some(&fixture.pki.client_ca.cert),
        upstream: &fixture.server.address,
    });
    fixture
        .lambda
        .set_secret("tls-stores/api-key", &fixture.api_key);
    fixture
        .lambda
        .set_parameter("/tls-stores/client-key", &fixture.pki.client.key_pem());
    let worker = Worker {
        name: "tls-stores",
        env: vec![
            ("TEMPORAL_ADDRESS", proxy.address()),
            (
                "TEMPORAL_API_KEY_SECRET",
                "secretsmanager:tls-stores/api-key".to_owned(),
            ),
            (
                "TEMPORAL_TLS_CLIENT_KEY_DATA_SECRET",
                "ssm:/tls-stores/client-key".to_owned(),
            ),
            (
                "TEMPORAL_TLS_CLIENT_CERT_DATA",
                pem(&fixture.pki.client.cert),
            ),
            (
                "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
                pem(&fixture.pki.ca.cert),
            ),
        ],
        toml: None,
    };
    fixture.greets_without_printing_secrets(&worker, &proxy);
}

#[test]
fn a_missing_secret_stops_the_worker_at_init_naming_it_and_the_fix() {
    let fixture = fixture();
    let worker = Worker {
        name: "secret-missing",
        env: vec![
            ("TEMPORAL_ADDRESS", "127.0.0.1:7233".to_owned()),
            (
                "TEMPORAL_API_KEY_SECRET",
                "secretsmanager:nobody/made/this".to_owned(),
            ),
        ],
        toml: None,
    };
    let _root = fixture.deploy(&worker);
    let record = fixture.first_invocation(worker.name);
    assert_eq!(record.outcome, Outcome::InitError, "{record:?}");
    assert_eq!(
        record.error_type.as_deref(),
        Some("TemporalLambdaWorker.Secret")
    );
    assert_eq!(
        record.error_message.as_deref(),
        Some(
            "TEMPORAL_API_KEY_SECRET = secretsmanager:nobody/made/this: it does not exist (in \
             this account and region): create it, or fix the name"
        )
    );
}
