//! The peer benchmark harness. `bench/run` builds every implementation's package and calls
//! this; it starts one Temporal dev server and one lambda-local, deploys each implementation as
//! its own function and Worker Deployment Version, lets the server's Worker Controller invoke
//! them while it starts workflows, and writes every raw figure and invocation record to a JSON
//! file that `bench/report.py` turns into tables and a plot.
//!
//! Implementations run one after another, never at once, so they do not share the two cores;
//! rounds interleave them so slow drift of the machine spreads over all of them alike.

mod implementations;
mod lab;
mod scenarios;

use std::{path::PathBuf, time::Instant};

use clap::Parser;
use implementations::{Implementation, Interpreters};
use lab::{FunctionSettings, Lab};
use lambda_local::InvocationRecord;
use scenarios::{Burst, FollowUp, Patience, Single};
use serde::Serialize;

#[derive(Parser)]
#[command(about = "Benchmarks the Rust Lambda worker against its Go, Python and TypeScript peers")]
struct Args {
    /// Where bench/run built the packages (`<dir>/<implementation>/package`).
    #[arg(long)]
    artifacts: PathBuf,
    /// The results file to write.
    #[arg(long)]
    out: PathBuf,
    /// Tiny counts, to check that the harness works (CI); no figure is meaningful.
    #[arg(long)]
    short: bool,
    /// The Python interpreter the Python peer's package was installed for.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The Node.js binary for the TypeScript peer.
    #[arg(long, default_value = "node")]
    node: String,
    /// Only these implementations (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A variant of ours: `LABEL:KEY=VALUE[,KEY=VALUE]` adds `rust-LABEL`, the Rust worker with
    /// those environment variables. Repeatable.
    #[arg(long)]
    variant: Vec<String>,
    /// Cold and warm single-workflow samples per implementation.
    #[arg(long)]
    rounds: Option<usize>,
    /// Workflows per burst.
    #[arg(long)]
    burst: Option<usize>,
    /// Reserved concurrencies of the burst runs (comma-separated).
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<u32>,
    /// Invocations per implementation to collect for shutdown precision (extra bursts run
    /// until the count is reached or ten minutes pass).
    #[arg(long)]
    precision: Option<usize>,
    /// Function timeout in seconds (every package's shutdown buffer is 7 s).
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
    /// Implementations of the follow-up scenario (two workflows a gap apart, at a longer
    /// timeout: what the idle exit saves and costs); default: rust, its variants and go.
    #[arg(long, value_delimiter = ',')]
    follow_up: Vec<String>,
    /// Follow-up pairs per implementation.
    #[arg(long)]
    follow_up_rounds: Option<usize>,
    /// Function timeout of the follow-up scenario, in seconds.
    #[arg(long)]
    follow_up_timeout_secs: Option<u64>,
    /// Time between the first workflow's result and the second's start.
    #[arg(long, default_value_t = 3000)]
    follow_up_gap_ms: u64,
}

/// The counts of one run.
#[derive(Clone, Debug, Serialize)]
struct Plan {
    rounds: usize,
    burst: usize,
    concurrencies: Vec<u32>,
    precision_target: usize,
    patience: Patience,
    function: FunctionSettings,
    follow_up: FollowUpPlan,
}

/// The follow-up scenario's counts.
#[derive(Clone, Debug, Serialize)]
struct FollowUpPlan {
    implementations: Vec<String>,
    rounds: usize,
    timeout_secs: u64,
    gap_ms: u64,
}

impl Plan {
    fn from(args: &Args, chosen: &[Implementation]) -> Self {
        let (rounds, burst, concurrencies, precision) = if args.short {
            (1, 4, vec![4], 0)
        } else {
            (7, 100, vec![1, 4, 16], 200)
        };
        Self {
            rounds: args.rounds.unwrap_or(rounds),
            burst: args.burst.unwrap_or(burst),
            concurrencies: if args.concurrency.is_empty() {
                concurrencies
            } else {
                args.concurrency.clone()
            },
            precision_target: args.precision.unwrap_or(precision),
            patience: if args.short {
                Patience {
                    workflow_secs: 60,
                    drain_secs: 60,
                }
            } else {
                Patience {
                    workflow_secs: 180,
                    drain_secs: 300,
                }
            },
            function: FunctionSettings {
                timeout_secs: args.timeout_secs,
                memory_mb: 1024,
            },
            follow_up: FollowUpPlan {
                implementations: chosen
                    .iter()
                    .map(|i| i.name.clone())
                    .filter(|name| {
                        if args.follow_up.is_empty() {
                            name == "go" || name == "rust" || name.starts_with("rust-")
                        } else {
                            args.follow_up.contains(name)
                        }
                    })
                    .collect(),
                rounds: args
                    .follow_up_rounds
                    .unwrap_or(if args.short { 1 } else { 3 }),
                // Long enough that polling the whole window shows: a typical function timeout
                // is minutes, and the bill of a worker without an idle exit grows with it.
                timeout_secs: args.follow_up_timeout_secs.unwrap_or(if args.short {
                    10
                } else {
                    30
                }),
                gap_ms: args.follow_up_gap_ms,
            },
        }
    }
}

/// Everything measured for one implementation.
#[derive(Serialize)]
struct Measured {
    name: String,
    description: String,
    command: Vec<String>,
    package: PathBuf,
    package_bytes: u64,
    package_files: u64,
    /// Why it could not be measured (further), when it could not.
    error: Option<String>,
    cold: Vec<Single>,
    warm: Vec<Single>,
    bursts: Vec<Burst>,
    follow_ups: Vec<FollowUp>,
    /// Every invocation of its function, for billing, memory and shutdown precision.
    records: Vec<InvocationRecord>,
}

#[derive(Serialize)]
struct Results {
    mode: &'static str,
    started_at: String,
    wall_clock_s: f64,
    load_average_before: String,
    load_average_after: String,
    plan: Plan,
    implementations: Vec<Measured>,
}

fn main() {
    let args = Args::parse();
    // Absolute, as the functions run in their package directory.
    let artifacts = std::path::absolute(&args.artifacts).unwrap_or_else(|e| fail(&e.to_string()));
    let interpreters = Interpreters {
        python: args.python.clone(),
        node: args.node.clone(),
    };
    let mut chosen = implementations::all(&artifacts, &interpreters);
    let variants: Result<Vec<Implementation>, String> = args
        .variant
        .iter()
        .map(|spec| implementations::rust_variant(spec, &chosen[0]))
        .collect();
    match variants {
        Ok(variants) => chosen.extend(variants),
        Err(e) => fail(&e),
    }
    if !args.only.is_empty() {
        chosen.retain(|i| args.only.contains(&i.name));
    }
    if chosen.is_empty() {
        fail("--only names no implementation (rust, go, python, typescript, rust-LABEL)");
    }
    // Processes are started from this runtime's worker threads, which live until the end, so
    // the environments' parent-death signal only fires when the harness itself goes away.
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| fail(&e.to_string()));
    let results = runtime.block_on(run(&args, chosen));
    let results = results.unwrap_or_else(|e| fail(&e));
    let json = serde_json::to_string_pretty(&results).unwrap_or_else(|e| fail(&e.to_string()));
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&args.out, json)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", args.out.display())));
    println!("results written to {}", args.out.display());
}

fn fail(message: &str) -> ! {
    eprintln!("bench-harness: {message}");
    std::process::exit(2)
}

async fn run(args: &Args, chosen: Vec<Implementation>) -> Result<Results, String> {
    let plan = Plan::from(args, &chosen);
    let clock = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let load_average_before = load_average();
    println!("plan: {}", serde_json::to_string(&plan).unwrap_or_default());
    let lab = Lab::start(plan.function).await?;
    let mut measured: Vec<Measured> = chosen.iter().map(new_measured).collect();

    for (implementation, m) in chosen.iter().zip(&mut measured) {
        if m.error.is_some() {
            continue; // not built: its row keeps the build error
        }
        println!("deploy {}", implementation.name);
        if let Err(e) = lab.deploy(implementation).await {
            m.error = Some(format!("deploy: {e}"));
        }
    }
    for round in 0..plan.rounds {
        for (implementation, m) in chosen.iter().zip(&mut measured) {
            if m.error.is_some() {
                continue;
            }
            for cold in [true, false] {
                let kind = if cold { "cold" } else { "warm" };
                let id = format!("{}-{kind}-{round}", implementation.name);
                let sample = scenarios::single(&lab, implementation, cold, id, plan.patience).await;
                println!(
                    "{} {kind} #{round}: {}",
                    implementation.name,
                    brief(&sample)
                );
                if let Some(e) = &sample.error {
                    m.error = Some(format!("{kind} workflow: {e}"));
                }
                let list = if cold { &mut m.cold } else { &mut m.warm };
                list.push(sample);
                if m.error.is_some() {
                    break;
                }
            }
        }
    }
    for &concurrency in &plan.concurrencies {
        for (implementation, m) in chosen.iter().zip(&mut measured) {
            if m.error.is_some() {
                continue;
            }
            let tag = format!("burst-c{concurrency}");
            let b = scenarios::burst(
                &lab,
                implementation,
                "throughput",
                concurrency,
                plan.burst,
                &tag,
                plan.patience,
            )
            .await;
            println!(
                "{} burst c={concurrency}: {}/{} in {} ms ({:.2}/s), {} invocations, {:?}",
                implementation.name,
                b.completed,
                b.workflows,
                b.elapsed_ms,
                b.throughput_per_s,
                b.bill.invocations,
                b.errors
            );
            m.bursts.push(b);
        }
    }
    for (implementation, m) in chosen.iter().zip(&mut measured) {
        if m.error.is_none() {
            top_up_precision(&lab, implementation, m, &plan).await;
        }
    }
    // Last, as it leaves the functions with the longer timeout.
    let follow_up = &plan.follow_up;
    for round in 0..follow_up.rounds {
        for (implementation, m) in chosen.iter().zip(&mut measured) {
            if m.error.is_some() || !follow_up.implementations.contains(&implementation.name) {
                continue;
            }
            let f = scenarios::follow_up(
                &lab,
                implementation,
                follow_up.timeout_secs,
                std::time::Duration::from_millis(follow_up.gap_ms),
                &format!("follow-up-{round}"),
                plan.patience,
            )
            .await;
            println!(
                "{} follow-up #{round}: e2e {} ms then {} ms, {} invocations, billed {} ms {}",
                implementation.name,
                f.first_e2e_ms,
                f.second_e2e_ms,
                f.bill.invocations,
                f.bill.billed_ms,
                f.error.as_deref().unwrap_or_default()
            );
            m.follow_ups.push(f);
        }
    }
    for (implementation, m) in chosen.iter().zip(&mut measured) {
        m.records = records_of(&lab, &implementation.name);
    }
    let wall_clock_s = clock.elapsed().as_secs_f64();
    lab.stop().await;
    Ok(Results {
        mode: if args.short { "short" } else { "full" },
        started_at,
        wall_clock_s,
        load_average_before,
        load_average_after: load_average(),
        plan,
        implementations: measured,
    })
}

/// Runs extra bursts until the implementation has `precision_target` invocations on record,
/// for at most ten minutes.
async fn top_up_precision(
    lab: &Lab,
    implementation: &Implementation,
    m: &mut Measured,
    plan: &Plan,
) {
    let limit = Instant::now() + std::time::Duration::from_secs(600);
    let mut wave = 0;
    while records_of(lab, &implementation.name).len() < plan.precision_target
        && Instant::now() < limit
    {
        let tag = format!("precision-{wave}");
        // Bursts at concurrency 16 make the most invocations per minute (about 15 per 100
        // workflows here): the server invokes once per batch of tasks that found no poller.
        let b = scenarios::burst(
            lab,
            implementation,
            "precision",
            16,
            plan.burst,
            &tag,
            plan.patience,
        )
        .await;
        println!(
            "{} precision wave {wave}: {} invocations so far",
            implementation.name,
            records_of(lab, &implementation.name).len()
        );
        let stalled = b.bill.invocations == 0;
        m.bursts.push(b);
        wave += 1;
        if stalled {
            break;
        }
    }
}

fn records_of(lab: &Lab, function: &str) -> Vec<InvocationRecord> {
    lab.all_records()
        .into_iter()
        .filter(|r| r.function_name == function)
        .collect()
}

fn new_measured(implementation: &Implementation) -> Measured {
    let (package_bytes, package_files) = implementations::package_size(&implementation.package);
    // bench/run leaves the tail of a failed build next to where the package would be.
    let build_error = implementation
        .package
        .parent()
        .and_then(|dir| std::fs::read_to_string(dir.join("build-error.txt")).ok());
    let error = match build_error {
        Some(log) => Some(format!("build failed: {}", log.trim())),
        None => (package_files == 0).then(|| {
            format!(
                "no package at {}: did bench/run build it?",
                implementation.package.display()
            )
        }),
    };
    Measured {
        name: implementation.name.clone(),
        description: implementation.description.clone(),
        command: implementation.command.clone(),
        package: implementation.package.clone(),
        package_bytes,
        package_files,
        error,
        cold: Vec::new(),
        warm: Vec::new(),
        bursts: Vec::new(),
        follow_ups: Vec::new(),
        records: Vec::new(),
    }
}

fn brief(s: &Single) -> String {
    match &s.error {
        Some(e) => format!("FAILED {e}"),
        None => format!(
            "e2e {} ms, invoke->first task {:?} ms, init {:?} ms, {} invocations, billed {} ms, {} MB",
            s.e2e_ms,
            s.invoke_to_first_task_ms,
            s.init_ms.map(|i| i.round()),
            s.bill.invocations,
            s.bill.billed_ms,
            s.bill.max_memory_mb
        ),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}
