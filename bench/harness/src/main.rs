//! The peer benchmark harness. `bench/run` builds every implementation's package and calls
//! this; it starts one Temporal dev server and one lambda-local, deploys each implementation as
//! its own function and Worker Deployment Version, lets the server's Worker Controller invoke
//! them while it starts workflows, and writes every raw figure and invocation record to a JSON
//! file that `bench/report.py` turns into tables and a plot.
//!
//! A run is a list of cells: a workload at a memory size and function timeout. The memory sweep
//! is the greeting at every size of `--sweep`; the workload cells are every workload of
//! `--workloads` at every size of `--sizes`. In each cell every implementation runs cold and warm
//! single workflows, then a burst. Implementations take turns to run workflows (never two at
//! once, so they do not share the cores) while their functions' idle tails overlap.

mod implementations;
mod lab;
mod scenarios;
mod workloads;

use std::{path::PathBuf, time::Instant};

use clap::Parser;
use futures::future::join_all;
use implementations::{Implementation, Interpreters};
use lab::{FunctionShape, Lab};
use lambda_local::{InvocationRecord, Limits};
use scenarios::{Burst, Patience, Single};
use serde::Serialize;
use workloads::Workload;

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
    /// Memory sizes (MB) of the sweep: the greeting at each size.
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<u32>,
    /// Function timeout of the sweep, in seconds.
    #[arg(long)]
    sweep_timeout_secs: Option<u64>,
    /// Cold and warm samples per implementation and size in the sweep.
    #[arg(long)]
    sweep_rounds: Option<usize>,
    /// The workloads of the workload cells.
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Memory sizes (MB) of the workload cells.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<u32>,
    /// Function timeout of the workload cells, in seconds (the deploy script's default is 60).
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Cold and warm samples per implementation in each workload cell.
    #[arg(long)]
    rounds: Option<usize>,
    /// Workflows per burst (0: no burst).
    #[arg(long)]
    burst: Option<usize>,
    /// Reserved concurrency of the bursts.
    #[arg(long)]
    concurrency: Option<u32>,
}

/// A workload at one function shape.
#[derive(Clone, Copy, Debug, Serialize)]
struct Cell {
    /// `sweep` or `workload`.
    kind: &'static str,
    workload: Workload,
    memory_mb: u32,
    timeout_secs: u64,
    rounds: usize,
    burst: usize,
    concurrency: u32,
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "{} {} {} MB {} s",
            self.kind,
            self.workload.name(),
            self.memory_mb,
            self.timeout_secs
        )
    }
}

/// The cells of one run.
#[derive(Clone, Debug, Serialize)]
struct Plan {
    cells: Vec<Cell>,
    patience: Patience,
}

impl Plan {
    fn from(args: &Args) -> Self {
        let short = args.short;
        let or = |given: &[u32], full: &[u32], short_default: &[u32]| -> Vec<u32> {
            match (given.is_empty(), short) {
                (false, _) => given.to_vec(),
                (true, false) => full.to_vec(),
                (true, true) => short_default.to_vec(),
            }
        };
        let sweep = or(&args.sweep, &[128, 256, 512, 1024, 1769], &[256]);
        let sizes = or(&args.sizes, &[256, 128], &[256]);
        let workloads = if args.workloads.is_empty() {
            vec![Workload::Greeting, Workload::Approval, Workload::Fanout]
        } else {
            args.workloads.clone()
        };
        let pick = |given: Option<usize>, full, short_value| {
            given.unwrap_or(if short { short_value } else { full })
        };
        let mut cells: Vec<Cell> = sweep
            .iter()
            .map(|&memory_mb| Cell {
                kind: "sweep",
                workload: Workload::Greeting,
                memory_mb,
                // Short, so a worker polling until its deadline does not dominate the run: the
                // workload cells show the bill at the deploy default.
                timeout_secs: args.sweep_timeout_secs.unwrap_or(10),
                rounds: pick(args.sweep_rounds, 3, 1),
                burst: 0,
                concurrency: 1,
            })
            .collect();
        for &memory_mb in &sizes {
            for &workload in &workloads {
                cells.push(Cell {
                    kind: "workload",
                    workload,
                    memory_mb,
                    timeout_secs: args.timeout_secs.unwrap_or(if short { 10 } else { 60 }),
                    rounds: pick(args.rounds, 1, 1),
                    burst: pick(args.burst, 50, 4),
                    concurrency: args.concurrency.unwrap_or(if short { 4 } else { 10 }),
                });
            }
        }
        Self {
            cells,
            patience: if short {
                Patience {
                    workflow_secs: 90,
                    drain_secs: 60,
                }
            } else {
                Patience {
                    workflow_secs: 240,
                    drain_secs: 300,
                }
            },
        }
    }
}

/// What one implementation did in one cell.
#[derive(Serialize)]
struct CellResult {
    #[serde(flatten)]
    cell: Cell,
    /// What stopped it in this cell (an implementation that cannot run at a size, for example
    /// out of memory, still runs in the other cells).
    error: Option<String>,
    cold: Vec<Single>,
    warm: Vec<Single>,
    bursts: Vec<Burst>,
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
    cells: Vec<CellResult>,
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
    /// The limits the environments ran under, over every invocation of the run: `cgroup` when
    /// every one had its memory size's CPU share and memory limit, `none` or `mixed` otherwise
    /// (the report then writes no headline).
    limits: &'static str,
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
    let plan = Plan::from(args);
    let clock = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let load_average_before = load_average();
    println!("plan: {}", serde_json::to_string(&plan).unwrap_or_default());
    let lab = Lab::start().await?;
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
    for cell in &plan.cells {
        println!("cell: {}", cell.label());
        let runs = chosen
            .iter()
            .zip(&measured)
            .filter(|(_, m)| m.error.is_none())
            .map(|(implementation, _)| run_cell(&lab, implementation, *cell, plan.patience));
        let mut done = join_all(runs).await.into_iter();
        for m in measured.iter_mut().filter(|m| m.error.is_none()) {
            m.cells.extend(done.next());
        }
    }
    for (implementation, m) in chosen.iter().zip(&mut measured) {
        m.records = records_of(&lab, &implementation.name);
    }
    let wall_clock_s = clock.elapsed().as_secs_f64();
    lab.stop().await;
    let all: Vec<Limits> = measured
        .iter()
        .flat_map(|m| m.records.iter().map(|r| r.limits))
        .collect();
    Ok(Results {
        mode: if args.short { "short" } else { "full" },
        started_at,
        wall_clock_s,
        load_average_before,
        load_average_after: load_average(),
        limits: if all.iter().all(|l| *l == Limits::Cgroup) && !all.is_empty() {
            "cgroup"
        } else if all.iter().all(|l| *l == Limits::None) {
            "none"
        } else {
            "mixed"
        },
        plan,
        implementations: measured,
    })
}

/// One implementation through one cell: cold and warm singles, then the burst; the first failed
/// single ends it.
async fn run_cell(
    lab: &Lab,
    implementation: &Implementation,
    cell: Cell,
    patience: Patience,
) -> CellResult {
    let name = &implementation.name;
    let workload = cell.workload.name();
    let single_shape = FunctionShape {
        timeout_secs: cell.timeout_secs,
        memory_mb: cell.memory_mb,
        concurrency: 1,
    };
    let mut result = CellResult {
        cell,
        error: None,
        cold: Vec::new(),
        warm: Vec::new(),
        bursts: Vec::new(),
    };
    let tag = format!("{}-{}mb-{}s", workload, cell.memory_mb, cell.timeout_secs);
    for round in 0..cell.rounds {
        for cold in [true, false] {
            let kind = if cold { "cold" } else { "warm" };
            let id = format!("{name}-{tag}-{kind}-{round}");
            let sample = scenarios::single(
                lab,
                implementation,
                cell.workload,
                single_shape,
                cold,
                id,
                patience,
            )
            .await;
            println!("{name} {tag} {kind} #{round}: {}", brief(&sample));
            result.error = sample
                .error
                .as_ref()
                .map(|e| format!("{kind} workflow: {e}"));
            if cold {
                result.cold.push(sample);
            } else {
                result.warm.push(sample);
            }
            if result.error.is_some() {
                return result;
            }
        }
    }
    if cell.burst > 0 {
        let shape = FunctionShape {
            concurrency: cell.concurrency,
            ..single_shape
        };
        let b = scenarios::burst(
            lab,
            implementation,
            cell.workload,
            shape,
            cell.burst,
            &format!("{tag}-burst"),
            patience,
        )
        .await;
        println!(
            "{name} {tag} burst c={}: {}/{} in {} ms ({:.2}/s), {} invocations, {:?}",
            cell.concurrency,
            b.completed,
            b.workflows,
            b.elapsed_ms,
            b.throughput_per_s,
            b.bill.invocations,
            b.errors
        );
        result.bursts.push(b);
    }
    result
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
        cells: Vec::new(),
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
