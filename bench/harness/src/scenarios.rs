//! What is measured: one workflow against a cold or a warm function, and a burst of workflows
//! against a function with a given reserved concurrency, for any workload and function shape.
//! Each returns raw figures; medians, spreads and ratios are left to the report.
//!
//! A scenario runs its workflows in the lab's turn (no other implementation works meanwhile) and
//! then, outside it, waits for its function to come to rest, so one implementation's idle tail
//! (a worker polling until its deadline) overlaps the next one's work.

use std::time::Duration;

use lambda_local::InvocationRecord;
use serde::Serialize;

use crate::{
    implementations::Implementation,
    lab::{FunctionShape, Lab, WorkflowRun, now_ms, run_workload},
    workloads::Workload,
};

/// How long to wait for things, by mode.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Patience {
    /// For one workflow's result.
    pub workflow_secs: u64,
    /// For a function's invocations to end after its workflows completed.
    pub drain_secs: u64,
}

/// What a scenario's invocations cost, as Lambda would bill them.
#[derive(Debug, Serialize)]
pub struct Bill {
    pub invocations: usize,
    pub billed_ms: u64,
    pub max_memory_mb: u64,
}

impl Bill {
    fn of(records: &[InvocationRecord]) -> Self {
        Self {
            invocations: records.len(),
            billed_ms: records.iter().map(|r| r.billed_duration_ms).sum(),
            max_memory_mb: records
                .iter()
                .map(|r| r.max_memory_used_mb)
                .max()
                .unwrap_or(0),
        }
    }
}

/// One workflow, started against an idle function.
#[derive(Debug, Serialize)]
pub struct Single {
    /// `cold` (the function's environments were discarded first) or `warm` (one waits frozen).
    pub kind: &'static str,
    pub workflow_id: String,
    pub error: Option<String>,
    /// Client-side start to result.
    pub e2e_ms: u64,
    /// Client-side start to the first invocation reaching lambda-local (the server's reaction,
    /// including its batching of tasks that found no poller).
    pub start_to_invoke_ms: Option<i64>,
    /// First invocation received to the first workflow task handed to a poller: the time from
    /// invoke to the worker's first successful poll (init, connect, worker start, poll).
    pub invoke_to_first_task_ms: Option<i64>,
    /// Init duration of the first invocation, when it was a cold start.
    pub init_ms: Option<f64>,
    pub first_invocation_cold: Option<bool>,
    /// The invocations the workflow caused, until the function was idle again.
    #[serde(flatten)]
    pub bill: Bill,
}

/// Runs one workflow against the function of `shape` (one environment), `cold` or warm, and
/// waits for the function to rest.
pub async fn single(
    lab: &Lab,
    implementation: &Implementation,
    workload: Workload,
    shape: FunctionShape,
    cold: bool,
    workflow_id: String,
    patience: Patience,
) -> Single {
    let name = &implementation.name;
    let mut error = None;
    let turn = lab.turn().await;
    if cold && let Err(e) = lab.reset(implementation, shape) {
        error = Some(format!("cannot reset the function: {e}"));
    }
    let run = lab
        .run_workflow(
            workload,
            &Lab::task_queue(implementation),
            &workflow_id,
            Duration::from_secs(patience.workflow_secs),
        )
        .await;
    drop(turn);
    if let Err(e) = &run.result {
        error.get_or_insert_with(|| e.clone());
        lab.terminate(&workflow_id).await;
    }
    if !lab
        .wait_idle(name, Duration::from_secs(patience.drain_secs))
        .await
    {
        error.get_or_insert_with(|| {
            format!(
                "invocations still running {}s after the workflow",
                patience.drain_secs
            )
        });
        lab.remove(name).await;
    }
    let mut records = lab.records_since(name, run.started_at_ms);
    records.sort_by_key(|r| r.received_at_ms);
    if error.is_some() {
        error = Some(explain(error.unwrap_or_default(), &records));
    }
    let first = records.first();
    let first_task = lab.first_task_started_ms(&workflow_id).await;
    Single {
        kind: if cold { "cold" } else { "warm" },
        e2e_ms: run.ended_at_ms.saturating_sub(run.started_at_ms),
        start_to_invoke_ms: first.map(|r| r.received_at_ms as i64 - run.started_at_ms as i64),
        invoke_to_first_task_ms: first
            .zip(first_task)
            .map(|(r, t)| t as i64 - r.received_at_ms as i64),
        init_ms: first.and_then(|r| r.init_duration_ms),
        first_invocation_cold: first.map(|r| r.cold_start),
        bill: Bill::of(&records),
        workflow_id,
        error,
    }
}

/// A burst of workflows started at once against a function with `concurrency` slots, its
/// environments discarded first (a burst arriving at a function scaled to zero).
#[derive(Debug, Serialize)]
pub struct Burst {
    pub concurrency: u32,
    pub workflows: usize,
    pub completed: usize,
    /// The first few distinct errors.
    pub errors: Vec<String>,
    /// First start to last completion.
    pub elapsed_ms: u64,
    pub throughput_per_s: f64,
    /// Start to result of each completed workflow.
    pub latencies_ms: Vec<u64>,
    pub cold_starts: usize,
    /// The invocations the burst caused, until the function was idle again.
    #[serde(flatten)]
    pub bill: Bill,
    /// Whether every invocation ended within the drain patience.
    pub drained: bool,
}

pub async fn burst(
    lab: &Lab,
    implementation: &Implementation,
    workload: Workload,
    shape: FunctionShape,
    workflows: usize,
    tag: &str,
    patience: Patience,
) -> Burst {
    let name = &implementation.name;
    let mut errors = Vec::new();
    let turn = lab.turn().await;
    if let Err(e) = lab.reset(implementation, shape) {
        errors.push(format!("cannot reset the function: {e}"));
    }
    let started_at_ms = now_ms();
    let runs: Vec<_> = (0..workflows)
        .map(|i| {
            tokio::spawn(run_workload(
                lab.client(),
                workload,
                Lab::task_queue(implementation),
                format!("{name}-{tag}-{i}"),
                Duration::from_secs(patience.workflow_secs),
            ))
        })
        .collect();
    let mut finished: Vec<(usize, WorkflowRun)> = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        match run.await {
            Ok(run) => finished.push((i, run)),
            Err(e) => errors.push(format!("workflow task panicked: {e}")),
        }
    }
    drop(turn);
    let mut latencies_ms = Vec::new();
    let mut last_end = started_at_ms;
    for (i, run) in &finished {
        match &run.result {
            Ok(_) => {
                latencies_ms.push(run.ended_at_ms.saturating_sub(run.started_at_ms));
                last_end = last_end.max(run.ended_at_ms);
            }
            Err(e) => {
                if errors.len() < 5 && !errors.contains(e) {
                    errors.push(e.clone());
                }
                lab.terminate(&format!("{name}-{tag}-{i}")).await;
            }
        }
    }
    let drained = lab
        .wait_idle(name, Duration::from_secs(patience.drain_secs))
        .await;
    if !drained {
        lab.remove(name).await;
    }
    let records = lab.records_since(name, started_at_ms);
    let completed = latencies_ms.len();
    let elapsed_ms = last_end - started_at_ms;
    if completed < workflows {
        let summary = explain(format!("{completed} of {workflows} completed"), &records);
        errors.insert(0, summary);
    }
    Burst {
        concurrency: shape.concurrency,
        workflows,
        completed,
        errors,
        elapsed_ms,
        throughput_per_s: if elapsed_ms > 0 {
            completed as f64 * 1000.0 / elapsed_ms as f64
        } else {
            0.0
        },
        latencies_ms,
        cold_starts: records.iter().filter(|r| r.cold_start).count(),
        bill: Bill::of(&records),
        drained,
    }
}

/// Adds what the invocations said to an error: a peer that cannot run shows why here
/// (init errors, crashes), and the functions' own output is in the harness log.
fn explain(error: String, records: &[InvocationRecord]) -> String {
    let failed = records.iter().find(|r| r.error_message.is_some());
    match failed {
        Some(r) => format!(
            "{error}; invocation {} ended {:?}: {} {}",
            r.request_id,
            r.outcome,
            r.error_type.as_deref().unwrap_or_default(),
            r.error_message.as_deref().unwrap_or_default()
        ),
        None if records.is_empty() => format!("{error}; the server made no invocation"),
        None => format!("{error}; {} invocations, none failed", records.len()),
    }
}
