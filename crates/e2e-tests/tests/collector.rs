//! The `otel` path as deployed with the ADOT Lambda layer: the worker (test-worker, built with
//! the `otel` feature) exports OTLP to a real OpenTelemetry Collector built from the collector's
//! Go modules at the layer's release (`collector/`, v0.117.0: the OTLP receiver, the `awsxray`
//! and `awsemf` exporters), which runs the shipped `examples/greeting/otel-collector-config.yaml`
//! with only its endpoints changed: OTLP on a free loopback port, both exporters pointed at
//! lambda-local, which records the X-Ray `PutTraceSegments` and CloudWatch Logs `PutLogEvents`
//! calls. The collector is built once with the machine's `go` into `target/tools`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

mod common;

use greeting::GreetingWorkflow;
use lambda_local::{
    CloudWatchLogEvent, FunctionConfig, InvocationRecord, TraceSegment,
    temporal::{default_tools_dir, verbose},
};
use opentelemetry::trace::TracerProvider as _;
use temporal_lambda_worker::otel::XrayIdGenerator;
use temporalio_client::{Client, ClientOptions, ConnectionOptions, Url, WorkflowStartOptions};
use temporalio_sdk::opentelemetry::OpenTelemetryPlugin;

/// The release of every collector module in `collector/go.mod`, and of the ADOT layer the
/// deploy script names (`aws-otel-collector-<arch>-ver-0-117-0`).
const COLLECTOR_RELEASE: &str = "0.117.0";
const FUNCTION: &str = "collector-worker";
/// Ours again, with cumulative metrics (the OpenTelemetry default).
const CUMULATIVE_FUNCTION: &str = "collector-cumulative-worker";
/// The Go package's worker, on the same collector.
const GO_FUNCTION: &str = "collector-go-worker";
/// The span of the starter's `start_workflow`; every other segment is the worker's.
const STARTER_SPAN: &str = "StartWorkflow:GreetingWorkflow";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the Go main package in `dir` (relative to this crate) into `target/tools/<name>`
/// with the machine's `go`; its build cache makes a rebuild of unchanged code take a moment.
fn go_build(dir: &str, name: &str) -> PathBuf {
    let binary = default_tools_dir().join(name);
    let status = Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .env("GOFLAGS", "-mod=readonly")
        // The lambdaworker modules are missing from the checksum database reachable here
        // (as for the benchmark's Go peer); go.sum still pins their hashes.
        .env("GONOSUMDB", "go.temporal.io/sdk/contrib/aws")
        .status()
        .expect("the collector and the Go worker are built with `go`, which was not found");
    assert!(status.success(), "go build of {dir}: {status}");
    binary
}

/// A running collector; killed on drop, and its log printed when a test failed.
struct Collector {
    child: Child,
    otlp_address: String,
    log: PathBuf,
}

impl Collector {
    /// Runs the shipped configuration, its OTLP receiver on a free port and its exporters
    /// sending to `aws_endpoint` with the credentials and region of `aws_environment`.
    fn start(aws_endpoint: &str, aws_environment: &[(String, String)]) -> Self {
        let otlp_address = common::free_address();
        let log = std::env::temp_dir().join(format!("collector-{}.log", uuid::Uuid::new_v4()));
        let overrides = [
            format!("receivers::otlp::protocols::grpc::endpoint: {otlp_address}"),
            format!("exporters::awsxray::endpoint: {aws_endpoint}"),
            format!("exporters::awsemf::endpoint: {aws_endpoint}"),
            // The collector's own metrics would listen on a fixed port.
            "service::telemetry::metrics::level: none".to_owned(),
        ];
        let binary = go_build("collector", &format!("otelcol-lambda-{COLLECTOR_RELEASE}"));
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(repo_root().join("examples/greeting/otel-collector-config.yaml"));
        for setting in &overrides {
            command.arg("--config").arg(format!("yaml:{setting}"));
        }
        let child = command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(aws_environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let collector = Self {
            child,
            otlp_address,
            log,
        };
        common::wait_until(
            "the collector's OTLP receiver listens",
            Duration::from_secs(30),
            || std::net::TcpStream::connect(&collector.otlp_address).is_ok(),
        );
        collector
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() || verbose() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- the collector's log ----\n{log}");
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A starter that traces its workflow starts into the same collector, as a user's would.
async fn traced_client(
    temporal: &str,
    otlp: &str,
) -> (Client, opentelemetry_sdk::trace::SdkTracerProvider) {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(otlp)
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        // Batched: a simple exporter would block a runtime thread (lambda-local's, which the
        // collector's exporters call) until its export returns.
        .with_batch_exporter(exporter)
        .build();
    let plugin = OpenTelemetryPlugin::builder()
        .tracer(provider.tracer("starter"))
        .build();
    let url = Url::parse(&format!("http://{temporal}")).unwrap();
    let client = Client::connect(
        ConnectionOptions::new(url).build(),
        ClientOptions::new("default").plugin(plugin).build(),
    )
    .await
    .unwrap();
    (client, provider)
}

/// `1-<8 hex digits: epoch seconds>-<24 hex digits>`, X-Ray's trace id format.
fn is_xray_trace_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    let hex = |s: &str, len| s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit());
    parts.len() == 3 && parts[0] == "1" && hex(parts[1], 8) && hex(parts[2], 24)
}

fn text(value: &serde_json::Value, key: &str) -> String {
    value
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// What one workflow's invocations sent through the collector.
struct Observed {
    /// The invocations that ran its tasks: usually one; two when its first task came while an
    /// invocation was already stopping (its activity task then found no poller, and Temporal
    /// invoked again).
    records: Vec<InvocationRecord>,
    /// Its trace, the starter's segment first.
    trace: Vec<TraceSegment>,
    /// The EMF events that arrived while those invocations ran.
    events: Vec<CloudWatchLogEvent>,
}

impl Observed {
    /// The worker's segments: the trace but the starter's.
    fn worker_segments(&self) -> &[TraceSegment] {
        &self.trace[1..]
    }

    /// Every metric name of its EMF events.
    fn metric_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for event in &self.events {
            let emf: serde_json::Value = serde_json::from_str(&event.message).unwrap();
            for directive in emf["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
                for metric in directive["Metrics"].as_array().unwrap() {
                    names.insert(text(metric, "Name"));
                }
            }
        }
        names
    }

    /// The sum of counter `name`'s values over its EMF events (what CloudWatch would add up).
    fn counter_total(&self, name: &str) -> f64 {
        self.events
            .iter()
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.message).ok())
            .filter_map(|emf| emf[name].as_f64())
            .sum()
    }

    /// The sample count of histogram `name` in each of its EMF events (one per export).
    fn histogram_counts(&self, name: &str) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.message).ok())
            .filter_map(|emf| emf[name]["Count"].as_u64())
            .collect()
    }

    /// The resource attributes the X-Ray exporter kept on the worker's segments.
    fn resource_attributes(&self) -> BTreeSet<String> {
        self.worker_segments()
            .iter()
            .filter_map(|s| s.document["metadata"]["default"].as_object())
            .flat_map(|m| m.keys())
            .filter_map(|k| k.strip_prefix("otel.resource."))
            .map(str::to_owned)
            .collect()
    }
}

/// Runs `rounds` greeting workflows one after the other through `function`, each started by a
/// traced client, and returns what each invocation sent.
fn run_greetings(
    shared: &common::Shared,
    function: &str,
    otlp: &str,
    rounds: usize,
) -> Vec<Observed> {
    let mut observed = Vec::new();
    for round in 1..=rounds {
        let (temporal, otlp) = (shared.server.address.clone(), format!("http://{otlp}"));
        let (task_queue, id) = (format!("{function}-tq"), format!("{function}-{round}"));
        let workflow_id = id.clone();
        let started_ms = common::epoch_ms();
        let starter = shared.run(async move {
            let (client, provider) = traced_client(&temporal, &otlp).await;
            let (workflow, name) = (GreetingWorkflow::run, "collector".to_owned());
            let patience = Duration::from_secs(60);
            let result =
                common::complete(&client, workflow, name, task_queue, workflow_id, patience).await;
            assert_eq!(result, "Hello, collector!");
            provider
        });
        // The invocations that ran the workflow's tasks (the Worker Controller may also invoke
        // the function when its version becomes current, before the workflow exists).
        let ran_it = |r: &InvocationRecord| {
            let tasks = r.workflow_tasks.unwrap_or(0) + r.activity_tasks.unwrap_or(0);
            r.ended_at_ms >= started_ms && tasks > 0
        };
        let ran = || -> Vec<InvocationRecord> {
            shared
                .records(function)
                .into_iter()
                .filter(ran_it)
                .collect()
        };
        let activities = |records: &[InvocationRecord]| -> u64 {
            records.iter().filter_map(|r| r.activity_tasks).sum()
        };
        common::wait_until("the invocations ended", Duration::from_secs(60), || {
            shared.lambda.in_flight(function) == 0 && activities(&ran()) > 0
        });
        let records = ran();
        let ran_once = activities(&records) == 1;
        assert!(
            ran_once,
            "workflow {round}'s activity ran once: {records:#?}"
        );
        // The starter's span, flushed off the runtime's threads (its exporter calls into the
        // collector, whose exporters call lambda-local on this runtime).
        shared.run(async move {
            tokio::task::spawn_blocking(move || starter.force_flush().unwrap())
                .await
                .unwrap()
        });
        let segments = shared.lambda.trace_segments();
        let start = segments
            .iter()
            .find(|s| {
                text(&s.document, "name") == STARTER_SPAN
                    && text(&s.document["metadata"]["default"], "temporalWorkflowID") == id
            })
            .expect("the starter's segment")
            .clone();
        let trace_id = text(&start.document, "trace_id");
        let mut trace = vec![start];
        trace.extend(segments.into_iter().filter(|s| {
            text(&s.document, "trace_id") == trace_id && text(&s.document, "name") != STARTER_SPAN
        }));
        let events = shared
            .lambda
            .log_events()
            .into_iter()
            .filter(|e| {
                records
                    .iter()
                    .any(|r| (r.started_at_ms..=r.ended_at_ms).contains(&e.received_at_ms))
            })
            .collect();
        observed.push(Observed {
            records,
            trace,
            events,
        });
    }
    observed
}

/// The Go package's worker (lambdaworker with its otel package), as a function of `shared`.
fn add_go_worker(shared: &common::Shared, otlp: &str) {
    let binary = go_build("go-otel-worker", "go-otel-worker");
    let mut function = FunctionConfig::new(
        GO_FUNCTION,
        vec![binary.display().to_string()],
        env!("CARGO_MANIFEST_DIR"),
    );
    function.timeout = Duration::from_secs(30);
    for (key, value) in [
        ("TEMPORAL_ADDRESS", shared.server.address.as_str()),
        ("TEMPORAL_TASK_QUEUE", &format!("{GO_FUNCTION}-tq")),
        ("GO_WORKER_DEPLOYMENT", GO_FUNCTION),
        ("GO_WORKER_BUILD_ID", "build-1"),
        // The Go package passes this to its exporters' WithEndpoint, which takes host:port.
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
    ] {
        function.env.insert(key.to_owned(), value.to_owned());
    }
    attach(shared, function);
}

fn attach(shared: &common::Shared, function: FunctionConfig) {
    let name = function.name.clone();
    {
        let _guard = shared.runtime.enter();
        shared.lambda.add_function(function).unwrap();
    }
    let arn = shared.lambda.version_arn(&name).unwrap();
    let server = &shared.server;
    shared
        .runtime
        .block_on(common::attach_current(server, &arn, &name, &shared.role));
}

#[test]
fn through_the_adot_collector_each_invocation_becomes_one_xray_trace_and_emf_deltas_before_it_ends()
{
    let shared = common::Shared::start("collector-external-id");
    let collector = Collector::start(
        &shared.lambda.endpoint(),
        &shared.lambda.aws_client_environment(),
    );
    let otlp = collector.otlp_address.clone();
    for (name, temporality) in [(FUNCTION, None), (CUMULATIVE_FUNCTION, Some("cumulative"))] {
        let mut function = common::test_worker(name, &shared.server.address, 30, 1);
        let env = &mut function.env;
        env.insert(
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            format!("http://{otlp}"),
        );
        if let Some(temporality) = temporality {
            let variable = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
            env.insert(variable.into(), temporality.into());
        }
        attach(&shared, function);
    }
    add_go_worker(&shared, &otlp);

    shared.dump_on_failure(FUNCTION, || {
        let ours = run_greetings(&shared, FUNCTION, &otlp, 2);
        assert_one_warm_environment(&ours);
        for (round, invocation) in ours.iter().enumerate() {
            let round = round + 1;
            assert_delivered_in_time(invocation);
            assert_one_xray_trace(invocation);
            let names = invocation.metric_names();
            for expected in [
                "temporal_workflow_completed",
                "temporal_activity_execution_latency",
                "temporal_request",
            ] {
                assert!(
                    names.contains(expected),
                    "invocation {round}: no {expected} in {names:?}"
                );
            }
            let completed = invocation.counter_total("temporal_workflow_completed");
            assert_eq!(completed, 1.0, "invocation {round}: one completed workflow");
            // The Lambda resource reaches X-Ray, as segment metadata.
            let resource = invocation.resource_attributes();
            for expected in [
                "service.name",
                "cloud.provider",
                "cloud.platform",
                "cloud.region",
                "faas.name",
                "faas.version",
                "faas.instance",
                "faas.max_memory",
                "aws.log.group.names",
            ] {
                assert!(resource.contains(expected), "no {expected} in {resource:?}");
            }
            for event in &invocation.events {
                assert_eq!(event.log_group, "/aws/lambda/temporal-worker-metrics");
                assert!(
                    event
                        .message
                        .contains(r#""Namespace":"TemporalLambdaWorker""#)
                );
            }
            // Deltas: each invocation counts its own activity, not the environment's so far.
            let counts = invocation.histogram_counts("temporal_activity_execution_latency");
            let count: u64 = counts.iter().sum();
            assert_eq!(
                count, 1,
                "invocation {round}: one activity execution: {counts:?}"
            );
        }
    });
    // Why deltas (histograms): with cumulative metrics the collector's awsemf exporter sends
    // histograms as they are, so the warm invocation's still holds the first one's activity.
    // (Its counters it turns into deltas, keeping each series' first value as the baseline.)
    shared.dump_on_failure(CUMULATIVE_FUNCTION, || {
        let cumulative = run_greetings(&shared, CUMULATIVE_FUNCTION, &otlp, 2);
        assert_one_warm_environment(&cumulative);
        // Each export of a cumulative histogram holds every sample so far.
        let counts = cumulative[1].histogram_counts("temporal_activity_execution_latency");
        assert_eq!(counts.iter().max(), Some(&2), "both activities: {counts:?}");
    });
    // The Go package on the same collector: lambdaworker's otel v0.1.1 with the newest Go SDK
    // (v1.51.0, as the benchmark's Go peer) cannot start: ApplyDefaults merges its resource
    // (semantic conventions 1.40.0) with the OpenTelemetry SDK's default one (1.41.0 from
    // go.opentelemetry.io/otel/sdk 1.44.0, which that SDK's gRPC requires) and fails.
    shared.dump_on_failure(GO_FUNCTION, || {
        let temporal = shared.server.address.clone();
        shared.run(async move {
            common::client(&temporal)
                .await
                .start_workflow(
                    GreetingWorkflow::run,
                    "collector".to_owned(),
                    WorkflowStartOptions::new(format!("{GO_FUNCTION}-tq"), GO_FUNCTION).build(),
                )
                .await
                .unwrap();
        });
        common::wait_until("the Go worker was invoked", Duration::from_secs(60), || {
            shared
                .lambda
                .records()
                .iter()
                .any(|r| r.function_name == GO_FUNCTION)
        });
        let record = shared
            .lambda
            .records()
            .into_iter()
            .find(|r| r.function_name == GO_FUNCTION)
            .unwrap();
        assert_eq!(record.error_type.as_deref(), Some("Runtime.ExitError"));
        let log = shared.lambda.logs(GO_FUNCTION);
        assert!(
            log.iter().any(|line| line
                .text
                .contains("creating OTel resource: conflicting Schema URL")),
            "the Go worker's cold start fails in otel.ApplyDefaults"
        );
    });
    drop(collector);
}

/// One process served both workflows, warm for the second, so a cumulative series would carry
/// the first into the second.
fn assert_one_warm_environment(rounds: &[Observed]) {
    let records: Vec<&InvocationRecord> = rounds.iter().flat_map(|r| &r.records).collect();
    assert!(
        records
            .windows(2)
            .all(|w| w[0].environment == w[1].environment),
        "one environment: {records:#?}"
    );
    assert!(
        rounds[1].records.iter().all(|r| !r.cold_start),
        "the second workflow's invocations are warm"
    );
}

/// Everything the worker exported arrived at X-Ray and CloudWatch Logs before the invocations
/// that produced it ended: the per-invocation flush goes through the collector synchronously.
fn assert_delivered_in_time(invocation: &Observed) {
    let end = invocation
        .records
        .iter()
        .map(|r| r.ended_at_ms)
        .max()
        .unwrap();
    assert!(invocation.trace.len() > 1, "no worker segment arrived");
    assert!(
        !invocation.events.is_empty(),
        "no CloudWatch Logs event arrived"
    );
    let latest = invocation
        .worker_segments()
        .iter()
        .map(|s| s.received_at_ms)
        .max()
        .unwrap();
    assert!(
        latest <= end,
        "a segment arrived {} ms after its invocation ended",
        latest - end
    );
}

/// The worker's segments and the starter's form one trace, with an X-Ray trace id.
fn assert_one_xray_trace(invocation: &Observed) {
    let trace_id = text(&invocation.trace[0].document, "trace_id");
    assert!(is_xray_trace_id(&trace_id), "X-Ray trace id: {trace_id}");
    let worker = invocation.worker_segments();
    // X-Ray names a segment after its service: the workflow's and the activity's run (server
    // spans) are segments named after the function; starting the activity is a subsegment
    // that keeps its span name.
    let mut names: Vec<String> = worker.iter().map(|s| text(&s.document, "name")).collect();
    names.sort();
    let documents = || worker.iter().map(|s| &s.document).collect::<Vec<_>>();
    let activity_run = worker.iter().any(|s| {
        text(&s.document, "name") == FUNCTION
            && text(&s.document["metadata"]["default"], "temporalActivityType") == "hello"
    });
    assert!(activity_run, "the activity's run in {:#?}", documents());
    if invocation.records.len() > 1 {
        // Seen once, when the workflow's tasks ran in two invocations: its run's segment did
        // not arrive; the activity's start and run did.
        assert!(
            names
                .iter()
                .all(|n| n == FUNCTION || n == "StartActivity:hello"),
            "{names:?}"
        );
        return;
    }
    assert_eq!(
        names,
        ["StartActivity:hello", FUNCTION, FUNCTION],
        "the workflow run, the activity run and the activity start in {:#?}",
        documents()
    );
    // The workflow run continues the starter's span.
    let start_id = text(&invocation.trace[0].document, "id");
    assert!(
        worker
            .iter()
            .any(|s| text(&s.document, "parent_id") == start_id),
        "a worker segment is the child of the starter's"
    );
}
