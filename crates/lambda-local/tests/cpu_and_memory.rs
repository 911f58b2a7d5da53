//! Lambda's CPU share and memory limit, enforced per execution environment: a function measures
//! the CPU it gets at 128 MB (about 7 % of a CPU) and at 1,769 MB (one CPU), and one that
//! allocates past its memory size dies as on Lambda (`Runtime.OutOfMemory`) while the next
//! invocation gets a new environment. With the limits turned off, records say so.
//!
//! These need root and the cgroup v1 `cpu` and `memory` controllers (as CI has); elsewhere they
//! fail saying so, since every other figure of this project depends on the limits.

mod common;

use common::{invoke, python_function, start, start_with};
use lambda_local::{Limits, LocalLambda, Outcome, cpu_share};

/// How long each measurement keeps the CPU busy: 20 periods of the CPU controller.
const SPIN_S: f64 = 2.0;
/// A measured share may exceed its allotment by this fraction (the controller enforces the
/// quota per 100 ms period, so one period's overrun at most)...
const OVER: f64 = 0.15;
/// ...and fall short of it by this one (another test process may hold the other core).
const UNDER: f64 = 0.40;

/// The fraction of one CPU a function of `memory_mb` measured over [`SPIN_S`] seconds with
/// `processes` busy processes.
async fn measured_share(lambda: &LocalLambda, memory_mb: u32, processes: u32) -> f64 {
    let name = format!("spin-{memory_mb}-{processes}");
    let mut function = python_function(&name);
    function.memory_mb = memory_mb;
    lambda.add_function(function).unwrap();
    let event = format!(r#"{{"spin_s": {SPIN_S}, "processes": {processes}}}"#);
    let (_, body) = invoke(lambda, &name, &event).await;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let record = lambda
        .records()
        .into_iter()
        .rfind(|r| r.function_name == name)
        .unwrap();
    assert_eq!(
        record.limits,
        Limits::Cgroup,
        "the environment ran unlimited: run the tests as root on a host with the cgroup v1 \
         cpu and memory controllers (lambda-local said why at start)"
    );
    answer["cpu_s"].as_f64().unwrap() / answer["wall_s"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_environment_gets_the_cpu_share_of_its_memory_size() {
    let lambda = start().await;
    // One at a time, so the measurements do not compete for the host's cores.
    let small = measured_share(&lambda, 128, 1).await;
    let small_two_processes = measured_share(&lambda, 128, 2).await;
    let one_vcpu = measured_share(&lambda, 1769, 1).await;
    println!(
        "measured CPU share: 128 MB {small:.3} (two processes together {small_two_processes:.3}), \
         1769 MB {one_vcpu:.3}; allotted {:.3} and {:.3}",
        cpu_share(128),
        cpu_share(1769)
    );
    for (what, measured, allotted) in [
        ("128 MB", small, cpu_share(128)),
        (
            "128 MB, two processes together (the share is the environment's)",
            small_two_processes,
            cpu_share(128),
        ),
        ("1769 MB", one_vcpu, cpu_share(1769)),
    ] {
        assert!(
            measured <= allotted * (1.0 + OVER) && measured >= allotted * (1.0 - UNDER),
            "{what}: measured {measured:.3} of a CPU, allotted {allotted:.3} \
             (+{OVER}/-{UNDER} allowed)"
        );
    }
    // So the ratio between the sizes is the ratio of their shares (13.8), within the same bounds.
    let ratio = one_vcpu / small;
    let expected = cpu_share(1769) / cpu_share(128);
    assert!(
        ratio >= expected * (1.0 - UNDER) / (1.0 + OVER)
            && ratio <= expected * (1.0 + OVER) / (1.0 - UNDER),
        "1769 MB / 128 MB: measured {ratio:.1}, allotted {expected:.1}"
    );
    lambda.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_over_the_memory_size_kills_the_environment_as_lambda_reports_it() {
    let lambda = start().await;
    lambda.add_function(python_function("allocates")).unwrap();
    // Within 128 MB all is well, and the environment stays warm.
    invoke(&lambda, "allocates", r#"{"allocate_mb": 40}"#).await;
    // Past it, the kernel kills the process; the caller gets Lambda's error.
    let (head, body) = invoke(&lambda, "allocates", r#"{"allocate_mb": 200}"#).await;
    assert!(head.contains("x-amz-function-error: unhandled"), "{head}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["errorType"], "Runtime.OutOfMemory", "{body}");
    // The next invocation gets a new environment, and succeeds.
    let (_, body) = invoke(&lambda, "allocates", r#"{"allocate_mb": 40}"#).await;
    assert_eq!(body, "\"ok\"");
    let records = lambda.records();
    let [fits, over, after] = &records[..] else {
        panic!("{records:#?}")
    };
    assert_eq!(
        (fits.outcome, fits.limits),
        (Outcome::Success, Limits::Cgroup)
    );
    assert_eq!(
        fits.environment, over.environment,
        "warm reuse within the limit"
    );
    assert_eq!(over.outcome, Outcome::Crashed);
    assert_eq!(over.error_type.as_deref(), Some("Runtime.OutOfMemory"));
    assert_eq!(over.max_memory_used_mb, 128);
    assert!(
        over.report_line()
            .ends_with("Max Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory"),
        "{}",
        over.report_line()
    );
    assert!(after.cold_start && after.environment != over.environment);
    assert_eq!(after.outcome, Outcome::Success);
    lambda.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_limits_off_the_records_say_so() {
    let lambda = start_with(|config| config.limits = false).await;
    lambda.add_function(python_function("unlimited")).unwrap();
    invoke(&lambda, "unlimited", r#"{"allocate_mb": 200}"#).await;
    let record = common::record(&lambda, "unlimited");
    assert_eq!(
        (record.outcome, record.limits),
        (Outcome::Success, Limits::None)
    );
    assert!(record.max_memory_used_mb > 128, "{record:?}");
    lambda.shutdown().await;
}
