//! The fault soak: a steady stream of workflows through the real dev server's Worker Controller
//! and lambda-local while faults rotate (the server killed and restarted, SIGTERM to every
//! environment, an environment killed at its timeout, and, in soaks of 5 minutes or more, quiet
//! gaps longer than the gRPC keepalive), for `SOAK_SECS` (60 s in `cargo test`; `scripts/soak`
//! runs 15 minutes). Every workflow completes exactly once, no invocation overruns its deadline,
//! and every wait for a timeout is one a fault caused.

use std::{
    collections::HashSet,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

mod common;

use common::{
    History,
    faults::{assert_three_steps_each, steps_outcomes},
    wait_until,
};
use e2e_tests::{OutlivesTimeoutWorkflow, StepsWorkflow};
use lambda_local::{InvocationRecord, Outcome};
use temporalio_client::{
    WorkflowGetResultOptions, WorkflowIdReusePolicy, WorkflowStartOptions,
    errors::WorkflowStartError,
};

type Fixture = common::Shared;

/// One lambda-local for the soak (its dev server is its own, restartable).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::start("soak-external-id"))
}

/// How long the soak injects faults: `SOAK_SECS` seconds, 60 unless set (what `cargo test`
/// and CI run); `scripts/soak` runs it for 15 minutes.
fn soak_duration() -> Duration {
    match std::env::var("SOAK_SECS") {
        Ok(secs) => Duration::from_secs(
            secs.parse()
                .unwrap_or_else(|_| panic!("SOAK_SECS={secs}: give a number of seconds")),
        ),
        Err(_) => Duration::from_secs(60),
    }
}

/// The faults the soak injects, one after another in this order, with work flowing in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The server is killed (SIGKILL) and comes back 3 s later with its state.
    ServerRestart,
    /// Lambda's shutdown phase for every environment, busy or frozen: SIGTERM, SIGKILL 500 ms
    /// later.
    Sigterm,
    /// An activity blocks the only thread of its environment, which is killed at the timeout.
    /// (The next [`Fault::Sigterm`] comes over 15 s later, once that kill is done.)
    KilledAtTimeout,
    /// No work arrives for 50 s, longer than the client's keepalive interval plus its
    /// timeout, while environments sit frozen on idle connections (soaks of 5 minutes or more).
    QuietGap,
}

/// Time between one fault and the next, for work to flow.
const SOAK_CALM: Duration = Duration::from_secs(8);
/// Time between two workflow starts of the soak's steady stream.
const SOAK_SPACING: Duration = Duration::from_millis(400);

/// The soak's steady stream of workflows.
#[derive(Default)]
struct Arrivals {
    /// The ids of the workflows started so far.
    started: std::sync::Mutex<Vec<String>>,
    paused: AtomicBool,
    stopped: AtomicBool,
}

impl Arrivals {
    fn started(&self) -> Vec<String> {
        self.started.lock().unwrap().clone()
    }

    /// Starts a [`StepsWorkflow`] of three 200 ms steps every [`SOAK_SPACING`] until stopped,
    /// retrying each start while the server is away, as a client with production traffic
    /// would. Each id is used once (a start whose reply was lost shows as already started).
    async fn run(self: Arc<Self>, address: String, task_queue: String, prefix: String) {
        let client = common::client(&address).await;
        let mut next = 0;
        while !self.stopped.load(Ordering::SeqCst) {
            tokio::time::sleep(SOAK_SPACING).await;
            if self.paused.load(Ordering::SeqCst) {
                continue;
            }
            let id = format!("{prefix}-{next}");
            next += 1;
            let options = WorkflowStartOptions::new(task_queue.clone(), id.clone())
                .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
                .build();
            loop {
                match client
                    .start_workflow(StepsWorkflow::run, (3, 200), options.clone())
                    .await
                {
                    Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            self.started.lock().unwrap().push(id);
        }
    }
}

const NAME: &str = "soak-faults";

#[test]
fn a_soak_of_rotating_faults_loses_no_workflow_duplicates_none_and_overruns_no_deadline() {
    // A failure seen only in CI can then be read from its output.
    fixture().dump_on_failure(NAME, soak_with_rotating_faults);
}

fn soak_with_rotating_faults() {
    const TIMEOUT: Duration = Duration::from_secs(15);
    let duration = soak_duration();
    let fixture = fixture();
    // The default single-threaded runtime, so a blocking activity really blocks its worker.
    let (mut server, _state) = fixture.deploy_restartable(NAME, TIMEOUT, 4, &[]);
    let address = server.address.clone();
    let task_queue = format!("{NAME}-tq");
    let arrivals = Arc::new(Arrivals::default());
    let stream = fixture.runtime.spawn(Arc::clone(&arrivals).run(
        address.clone(),
        task_queue.clone(),
        NAME.to_owned(),
    ));

    let mut rotation = vec![Fault::ServerRestart, Fault::Sigterm, Fault::KilledAtTimeout];
    if duration >= Duration::from_secs(300) {
        rotation.push(Fault::QuietGap);
    }
    let mut injected = Vec::new();
    let mut outages = Vec::new();
    let mut blockers = Vec::new();
    let mut blocker_starts = Vec::new();
    let mut sigterms = Vec::new();
    let mut retired = 0;
    let soak_started = Instant::now();
    while soak_started.elapsed() < duration {
        std::thread::sleep(SOAK_CALM);
        let fault = rotation[injected.len() % rotation.len()];
        eprintln!(
            "soak {:>4} s: {fault:?} at {} ms since the epoch",
            soak_started.elapsed().as_secs(),
            common::epoch_ms()
        );
        match fault {
            Fault::ServerRestart => {
                let down = common::epoch_ms();
                server = fixture.run(async move {
                    server.kill().await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    server.restart().await.unwrap();
                    server
                });
                outages.push((down, common::epoch_ms()));
            }
            Fault::Sigterm => {
                sigterms.push(common::epoch_ms());
                let retirements =
                    fixture.run(async move { fixture.lambda.retire_environments(NAME).await });
                // Each one answered its invocation and exited inside Lambda's 500 ms.
                assert!(
                    retirements.iter().all(|r| r.exited_after.is_some()),
                    "killed at the limit: {retirements:?}"
                );
                retired += retirements.len();
            }
            Fault::KilledAtTimeout => {
                let id = format!("{NAME}-blocker-{}", blockers.len());
                blockers.push(id.clone());
                blocker_starts.push(common::epoch_ms());
                let (address, task_queue) = (address.clone(), task_queue.clone());
                fixture.run(async move {
                    common::client(&address)
                        .await
                        .start_workflow(
                            OutlivesTimeoutWorkflow::run,
                            (),
                            WorkflowStartOptions::new(task_queue, id).build(),
                        )
                        .await
                        .unwrap();
                });
            }
            Fault::QuietGap => {
                arrivals.paused.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(50));
                arrivals.paused.store(false, Ordering::SeqCst);
            }
        }
        injected.push(fault);
    }
    let faults_ended = Instant::now();

    // Work keeps arriving until everything started during the faults has completed (retried
    // activities wait for an invocation, which new work brings); then the stream stops and
    // its last workflows complete too.
    let during = arrivals.started();
    let patience = Duration::from_secs(180);
    let steps = fixture.run(steps_outcomes(address.clone(), during.clone(), patience));
    let blocked: Vec<(u32, History)> = fixture.run({
        let (address, ids) = (address.clone(), blockers.clone());
        async move {
            let client = common::client(&address).await;
            let mut blocked = Vec::new();
            for id in ids {
                let handle = client.get_workflow_handle::<OutlivesTimeoutWorkflow>(id.clone());
                let result = handle.get_result(WorkflowGetResultOptions::default());
                let attempt = tokio::time::timeout(patience, result)
                    .await
                    .unwrap_or_else(|_| panic!("{id} completed within {patience:?}"))
                    .unwrap();
                let history = History::fetch(&client, &id).await;
                history.assert_completed_once(1);
                blocked.push((attempt, history));
            }
            blocked
        }
    });
    let blocked_attempts: Vec<u32> = blocked.iter().map(|(attempt, _)| *attempt).collect();
    arrivals.stopped.store(true, Ordering::SeqCst);
    fixture.run(async move { stream.await.unwrap() });
    let last = arrivals.started().split_off(during.len());
    let last_steps = fixture.run(steps_outcomes(address.clone(), last.clone(), patience));
    let drained_after = faults_ended.elapsed();
    wait_until("the invocations ended", Duration::from_secs(90), || {
        fixture.lambda.in_flight(NAME) == 0
    });

    // Nothing lost, nothing done twice: every workflow returned 1 + 2 + 3 and its history shows
    // one completion, each step scheduled and completed exactly once.
    assert_three_steps_each(&steps);
    assert_three_steps_each(&last_steps);
    // No task waited for a timeout unless a fault caused it: handed to a worker while the server
    // was away (or a moment either side), to one that SIGTERM stopped mid-invocation (no time to
    // drain), or while a blocking activity held an environment that was then killed at its
    // timeout with its polls still at the server.
    let near = |lost_at: i64, from: u64, to: u64| {
        lost_at + 2_000 >= from as i64 && lost_at <= to as i64 + 2_000
    };
    let fault_of = |lost_at: i64| {
        if outages.iter().any(|&(down, up)| near(lost_at, down, up)) {
            Some("the server restart")
        } else if blocker_starts
            .iter()
            .any(|&at| near(lost_at, at, at + TIMEOUT.as_millis() as u64))
        {
            Some("an environment killed at its timeout")
        } else if sigterms.iter().any(|&at| near(lost_at, at, at + 500)) {
            Some("SIGTERM")
        } else {
            None
        }
    };
    let mut caused = Vec::new();
    let mut uncaused = Vec::new();
    let histories = steps.iter().chain(&last_steps).map(|(_, h)| (h, vec![]));
    let blocked = blocked
        .iter()
        .map(|(attempt, h)| (h, vec![("block_first_attempt", *attempt)]));
    for (history, on_purpose) in histories.chain(blocked) {
        for wait in history.timeout_waits(&on_purpose) {
            match fault_of(wait.lost_at_ms) {
                Some(fault) => caused.push(format!("{} (caused by {fault})", wait.line)),
                None => uncaused.push(wait.line),
            }
        }
    }
    assert!(
        uncaused.is_empty(),
        "tasks waited for timeouts no fault caused:\n{}",
        uncaused.join("\n")
    );
    // The blocking first attempt never finished; a retry did.
    assert!(
        blocked_attempts.iter().all(|&a| a >= 2),
        "{blocked_attempts:?}"
    );

    let records = fixture.records(NAME);
    let count = |outcome: Outcome| records.iter().filter(|r| r.outcome == outcome).count();
    let in_outage = |r: &InvocationRecord| {
        outages
            .iter()
            .any(|&(down, up)| r.started_at_ms <= up && down <= r.ended_at_ms)
    };
    for r in &records {
        match r.outcome {
            // Only the environments an injected blocking activity held were killed.
            Outcome::Timeout => {}
            Outcome::Success => assert!(r.ended_at_ms <= r.deadline_ms, "overran: {r:?}"),
            // An invocation may fail while the server is away, in time and saying where.
            Outcome::Error => {
                assert!(in_outage(r), "failed with the server up: {r:?}");
                assert!(r.ended_at_ms <= r.deadline_ms, "overran: {r:?}");
                let message = r.error_message.as_deref().unwrap_or_default();
                assert!(message.contains(&address), "a clear error: {r:?}");
            }
            Outcome::Crashed | Outcome::InitError => panic!("the process died: {r:?}"),
        }
    }
    assert!(count(Outcome::Timeout) <= blockers.len(), "{records:?}");
    if !blockers.is_empty() {
        assert!(
            count(Outcome::Timeout) >= 1,
            "a blocker was killed: {records:?}"
        );
    }
    if injected.contains(&Fault::Sigterm) {
        assert!(
            records
                .iter()
                .any(|r| common::response(r, "stopped_by") == "sigterm"),
            "an invocation was stopped by SIGTERM: {records:?}"
        );
    }
    let environments: HashSet<u32> = records.iter().map(|r| r.environment).collect();
    let of = |fault: Fault| injected.iter().filter(|&&f| f == fault).count();
    eprintln!(
        "soak: {} s of faults: {} server restarts, {} SIGTERM rounds ({retired} environments \
         retired), {} thread-blocking activities, {} quiet gaps; {} workflows \
         completed exactly once, the last {} s after the last fault; {} invocations in {} \
         environments: {} succeeded, {} failed while the server was away, {} killed at the \
         timeout; {} tasks waited for a timeout a fault caused{}",
        duration.as_secs(),
        of(Fault::ServerRestart),
        of(Fault::Sigterm),
        of(Fault::KilledAtTimeout),
        of(Fault::QuietGap),
        steps.len() + last_steps.len() + blockers.len(),
        drained_after.as_secs(),
        records.len(),
        environments.len(),
        count(Outcome::Success),
        count(Outcome::Error),
        count(Outcome::Timeout),
        caused.len(),
        caused
            .iter()
            .map(|w| format!("\n  {w}"))
            .collect::<String>(),
    );
    fixture.run(async move { server.stop().await });
}
