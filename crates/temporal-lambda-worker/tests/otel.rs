//! The `otel` feature against a real OTLP/gRPC receiver (built here on the official
//! opentelemetry-proto service definitions) and the real dev server.

mod support;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use greeting::GreetingWorkflow;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::any_value::Value,
    resource::v1::Resource,
    trace::v1::Span,
};
use support::{dev_server, lambda_event, unique};
use temporal_lambda_worker::{
    LambdaWorker, Version,
    client::{
        Client, ClientOptions, ConnectionOptions, Url, WorkflowGetResultOptions,
        WorkflowStartOptions,
    },
    lambda_runtime::Service,
    otel::{self, OtelOptions, XrayIdGenerator},
};
use temporalio_sdk::opentelemetry::OpenTelemetryPlugin;

/// What the receiver got.
#[derive(Clone, Default)]
struct Received {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Received {
    /// Every span received, with its resource.
    fn spans(&self) -> Vec<(Resource, Span)> {
        let mut spans = Vec::new();
        for request in self.traces.lock().unwrap().iter() {
            for resource_spans in &request.resource_spans {
                let resource = resource_spans.resource.clone().unwrap_or_default();
                for scope in &resource_spans.scope_spans {
                    spans.extend(scope.spans.iter().map(|s| (resource.clone(), s.clone())));
                }
            }
        }
        spans
    }

    fn metric_names(&self) -> HashSet<String> {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| m.name.clone())
            .collect()
    }

    fn metric_resources(&self) -> Vec<Resource> {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .filter_map(|r| r.resource.clone())
            .collect()
    }
}

/// Starts the receiver on a free loopback port; returns what it receives and its endpoint.
async fn start_receiver() -> (Received, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let received = Received::default();
    let service = received.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(service.clone()))
            .add_service(MetricsServiceServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (received, endpoint)
}

fn attribute(resource: &Resource, key: &str) -> Option<String> {
    resource
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A worker exporting to `endpoint` as service `otel-test`, polling its own task queue.
fn worker(endpoint: &str) -> (LambdaWorker, String) {
    let server = dev_server();
    let version = Version::new(unique("otel"), "build-1");
    server.set_current_version(&version.deployment_name, &version.build_id);
    let task_queue = unique("otel-tq");
    let (address, queue, endpoint) = (
        format!("http://{}", server.address),
        task_queue.clone(),
        endpoint.to_owned(),
    );
    let worker = LambdaWorker::new(version, move |options| {
        options.connection.target = Url::parse(&address)?;
        options.worker.task_queue = queue;
        greeting::configure(options)?;
        otel::apply_defaults(
            options,
            OtelOptions {
                endpoint: Some(endpoint),
                service_name: Some("otel-test".into()),
                ..Default::default()
            },
        )?;
        Ok(())
    })
    .unwrap();
    (worker, task_queue)
}

/// A starter that traces its workflow starts (and propagates the context) like a user's would.
async fn starter(endpoint: &str) -> (Client, opentelemetry_sdk::trace::SdkTracerProvider) {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_simple_exporter(exporter)
        .build();
    let plugin = OpenTelemetryPlugin::builder()
        .tracer(provider.tracer("starter"))
        .build();
    let target = Url::parse(&format!("http://{}", dev_server().address)).unwrap();
    let client = Client::connect(
        ConnectionOptions::new(target).build(),
        ClientOptions::new("default").plugin(plugin).build(),
    )
    .await
    .unwrap();
    (client, provider)
}

async fn run_greeting(
    worker: &mut LambdaWorker,
    client: &Client,
    task_queue: &str,
    name: &str,
) -> Vec<u8> {
    let workflow_id = unique("otel-wf");
    let handle = client
        .start_workflow(
            GreetingWorkflow::run,
            name.to_owned(),
            WorkflowStartOptions::new(task_queue.to_owned(), workflow_id).build(),
        )
        .await
        .unwrap();
    let event = lambda_event(name, Duration::from_secs(10));
    let response = worker.call(event).await.unwrap();
    assert_eq!(response.activity_tasks, 1, "{response:?}");
    let result = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(result, format!("Hello, {name}!"));
    serde_json::to_vec(&response).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invocation_delivers_one_trace_and_the_sdk_metrics_before_it_returns() {
    let (received, endpoint) = start_receiver().await;
    let (mut worker, task_queue) = worker(&endpoint);
    let (client, starter_provider) = starter(&endpoint).await;
    run_greeting(&mut worker, &client, &task_queue, "traced").await;
    // Checked right after the invocation returned: its flush delivered everything.
    let spans = received.spans();
    let worker_spans: Vec<_> = spans
        .iter()
        .filter(|(resource, _)| attribute(resource, "service.name").as_deref() == Some("otel-test"))
        .collect();
    let names: Vec<&str> = worker_spans.iter().map(|(_, s)| s.name.as_str()).collect();
    assert!(names.iter().any(|n| n.contains("RunWorkflow")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("RunActivity")), "{names:?}");
    starter_provider.force_flush().unwrap();
    let spans = received.spans();
    let start = spans
        .iter()
        .find(|(_, s)| s.name.contains("StartWorkflow"))
        .map(|(_, s)| s.clone())
        .expect("the starter's span");
    for (_, span) in &worker_spans {
        assert_eq!(
            hex(&span.trace_id),
            hex(&start.trace_id),
            "one trace: {}",
            span.name
        );
    }
    let seconds = u32::from_be_bytes(start.trace_id[..4].try_into().unwrap()) as u64;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        now.abs_diff(seconds) < 300,
        "X-Ray trace id starts with the epoch seconds"
    );
    let resource = &worker_spans[0].0;
    assert_eq!(
        attribute(resource, "cloud.provider").as_deref(),
        Some("aws")
    );

    let metrics = received.metric_names();
    for expected in [
        "workflow_completed",
        "activity_execution_latency",
        "request",
    ] {
        assert!(
            metrics.iter().any(|m| m.contains(expected)),
            "no {expected} metric in {metrics:?}"
        );
    }
    assert!(
        received
            .metric_resources()
            .iter()
            .all(|r| attribute(r, "service.name").as_deref() == Some("otel-test"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn three_warm_invocations_each_flush_their_own_telemetry_once() {
    let (received, endpoint) = start_receiver().await;
    let (mut worker, task_queue) = worker(&endpoint);
    let (client, _starter_provider) = starter(&endpoint).await;
    for round in 1..=3 {
        run_greeting(&mut worker, &client, &task_queue, &format!("round{round}")).await;
        let activity_spans = received
            .spans()
            .iter()
            .filter(|(_, s)| s.name.contains("RunActivity"))
            .count();
        assert_eq!(
            activity_spans, round,
            "each invocation's activity span, once"
        );
    }
    let spans = received.spans();
    let ids: HashSet<Vec<u8>> = spans.iter().map(|(_, s)| s.span_id.clone()).collect();
    assert_eq!(ids.len(), spans.len(), "no span was exported twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_is_down_costs_nothing_but_one_warning() {
    use std::io::Write;
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);
    impl Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Logs::default();
    let writer = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    // Nothing listens on port 1.
    let (mut worker, _task_queue) = worker("http://127.0.0.1:1");
    for round in 0..2 {
        let event = lambda_event(&format!("down-{round}"), Duration::from_secs(9));
        let deadline = support::deadline_of(&event);
        worker.call(event).await.unwrap();
        assert!(SystemTime::now() < deadline, "returned within its budget");
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings = text.matches("telemetry could not be exported").count();
    assert_eq!(warnings, 1, "one warning for the outage: {text}");
}
