"""Renders the harness's results.json into BENCHMARKS.md (tables) and a PNG plot.

Usage: report.py RESULTS --markdown FILE --plot FILE.png --plot-link RELATIVE_PATH [--log LOG]

Every figure is computed from the raw samples and invocation records the harness wrote
(report_figures.py); nothing is typed in by hand. Medians are shown with their spread (min-max)
over the samples; ratios are against the Go peer of the same run.
"""

import argparse
import json
from pathlib import Path

from report_figures import (
    fmt,
    fmt_ratio,
    fmt_spread,
    machine,
    median,
    percentile,
    ratio,
    summarize,
)
from report_plot import plot

HEADLINE = "go"  # the peer every ratio is taken against


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def headline_rows(summaries, go):
    def ref(key, agg=median):
        return agg(go[key]) if go and isinstance(go[key], list) else (go or {}).get(key)

    rows = []
    for s in summaries:
        b4 = s["bursts"].get(4, {})
        go_b4 = (go or {}).get("bursts", {}).get(4, {})
        rows.append(
            [
                f"**{s['name']}**",
                fmt_ratio(ratio(median(s["init_ms"]), ref("init_ms"))),
                fmt_ratio(ratio(median(s["first_task_cold_ms"]), ref("first_task_cold_ms"))),
                fmt_ratio(ratio(median(s["e2e_cold_ms"]), ref("e2e_cold_ms"))),
                fmt_ratio(ratio(median(s["e2e_warm_ms"]), ref("e2e_warm_ms"))),
                fmt_ratio(ratio(median(s["gbs_cold"]), ref("gbs_cold"))),
                fmt_ratio(ratio(b4.get("gbs_per_wf"), go_b4.get("gbs_per_wf"))),
                fmt_ratio(ratio(b4.get("throughput"), go_b4.get("throughput"))),
                fmt_ratio(ratio(s["peak_mb"], ref("peak_mb"))),
                fmt_ratio(ratio(s["zipped_mb"], ref("zipped_mb"))),
            ]
        )
    return rows


def detail_rows(summaries):
    rows = []
    for s in summaries:
        rows.append(
            [
                f"**{s['name']}**",
                fmt_spread(s["init_ms"], 1),
                fmt_spread(s["first_task_cold_ms"]),
                fmt_spread(s["first_task_warm_ms"]),
                fmt_spread(s["e2e_cold_ms"]),
                fmt_spread(s["e2e_warm_ms"]),
                fmt_spread(s["billed_cold_ms"]),
                fmt_spread(s["gbs_cold"], 3),
                fmt_spread(s["gbs_warm"], 3),
                fmt(s["peak_mb"]),
                fmt(s["memory_mb"]),
                f"{fmt(s['package_mb'], 1)} / {fmt(s['zipped_mb'], 1)}",
            ]
        )
    return rows


def burst_rows(summaries, concurrencies):
    rows = []
    for s in summaries:
        for c in concurrencies:
            b = s["bursts"].get(c)
            if not b:
                continue
            rows.append(
                [
                    f"**{s['name']}**",
                    c,
                    b["runs"],
                    f"{b['completed']}/{b['workflows']}",
                    fmt_spread(b["throughput_runs"], 2),
                    fmt(b["latency_p50_ms"]),
                    fmt(b["latency_p95_ms"]),
                    fmt_spread(b["invocations"]),
                    fmt_spread(b["billed_per_wf_ms"]),
                    fmt_spread(b["gbs_per_wf_runs"], 4),
                    "; ".join(b["errors"])[:200] or ("" if b["drained"] else "did not drain"),
                ]
            )
    return rows


def follow_up_rows(summaries, go):
    go_gbs = median((go or {}).get("follow_up", {}).get("gbs", []))
    rows = []
    for s in summaries:
        f = s["follow_up"]
        if not f["pairs"] and not f["errors"]:
            continue
        rows.append(
            [
                f"**{s['name']}**",
                f["pairs"],
                fmt_spread(f["billed_ms"]),
                fmt_spread(f["gbs"], 3),
                fmt_ratio(ratio(median(f["gbs"]), go_gbs)),
                fmt_spread(f["first_e2e_ms"]),
                fmt_spread(f["second_e2e_ms"]),
                fmt_spread(f["invocations"]),
                "; ".join(f["errors"])[:200],
            ]
        )
    return rows


def startup_rows(summaries):
    rows = []
    for s in summaries:
        if not s["ready_new_ms"] and not s["ready_reused_ms"]:
            continue  # a peer: it does not report its phases
        rows.append(
            [
                f"**{s['name']}**",
                fmt_spread(s["init_ms"], 1),
                f"{fmt_spread(s['ready_new_ms'])}, n={len(s['ready_new_ms'])}",
                f"{fmt_spread(s['ready_reused_ms'])}, n={len(s['ready_reused_ms'])}",
                fmt_spread(s["first_task_cold_ms"]),
                fmt_spread(s["first_task_warm_ms"]),
            ]
        )
    return rows


def precision_rows(summaries):
    rows = []
    for s in summaries:
        late = s["lateness_ms"]
        rows.append(
            [
                f"**{s['name']}**",
                len(late),
                fmt(percentile(late, 0)),
                fmt(median(late)),
                fmt(percentile(late, 95)),
                fmt(percentile(late, 100)),
                s["stopped_by_idle"],
                s["overran"],
                s["failed_invocations"],
            ]
        )
    return rows


def render(results, summaries, machine_info, plot_link, log):
    plan = results["plan"]
    go = next((s for s in summaries if s["name"] == HEADLINE and not s["error"]), None)
    concurrencies = plan["concurrencies"]
    short = results["mode"] == "short"
    out = []
    out.append("# Benchmarks: Temporal serverless workers on Lambda, side by side\n")
    if short:
        out.append(
            "> **Short mode** (`bench/run --short`): tiny counts that only check the harness "
            "works. These figures mean nothing.\n"
        )
    out.append(
        "Every implementation runs the same greeting workflow (`GreetingWorkflow`, one string "
        "argument, activity `hello` returning `Hello, <name>!`, start-to-close 10 s, Pinned) "
        "as its own Lambda function attached to its own Worker Deployment Version, unmodified, "
        "in one lambda-local environment, invoked by the Worker Controller of one Temporal dev "
        "server. Implementations run one after another (never at once), interleaved round by "
        "round. Ratios are against the Go peer (`go.temporal.io/sdk/contrib/aws/lambdaworker`) "
        "measured in the same run; below 1× means less time, cost, memory or size than Go, "
        "except throughput, where above 1× is better.\n"
    )
    out.append(
        f"Run of {results['started_at'][:19].replace('T', ' ')} UTC, {results['mode']} mode, "
        f"harness wall clock {results['wall_clock_s'] / 60:.1f} min. Load average before: "
        f"`{results['load_average_before']}`, after: `{results['load_average_after']}`.\n"
    )
    memory_mb = plan["function"].get("memory_mb")
    limited = all(s["limits"] == ["cgroup"] for s in summaries if s["invocations"])
    out.append("## Headline: ratio to Go (median of each)\n")
    if not limited:
        unlimited = [s["name"] for s in summaries if s["limits"] != ["cgroup"] and s["invocations"]]
        out.append(
            "**No headline**: invocations of "
            + ", ".join(unlimited)
            + " ran without Lambda's CPU share and memory limit (their records say "
            "`limits: none`: lambda-local had no cgroup controllers, or they were turned off), "
            "so these figures are not Lambda's. The tables below are kept for the record.\n"
        )
    else:
        out.append(
            table(
                [
                    "implementation",
                    "init (cold start)",
                    "invoke → first task, cold",
                    "workflow e2e, cold",
                    "workflow e2e, warm",
                    "GB-s per workflow, 1 cold",
                    f"GB-s per workflow, burst of {plan['burst']} at concurrency 4",
                    "throughput at concurrency 4",
                    "max memory used",
                    "package (zipped)",
                ],
                headline_rows(summaries, go),
            )
        )
    out.append("")
    out.append(f"![benchmarks]({plot_link})\n")
    out.append("## Single workflow, cold and warm\n")
    out.append(
        f"Rounds: {plan['rounds']}; each cell is the median (min–max). Times in ms. "
        "*Cold*: the function's environments are discarded first, so the server's invocation "
        "starts a new process. *Warm*: the next workflow once that invocation ended, so the "
        "frozen environment is thawed. GB-s use each implementation's right-sized memory "
        "(next column).\n"
    )
    out.append(
        table(
            [
                "implementation",
                "init",
                "invoke → first task, cold",
                "invoke → first task, warm",
                "e2e cold",
                "e2e warm",
                "billed ms, 1 cold workflow",
                "GB-s, 1 cold workflow",
                "GB-s, 1 warm workflow",
                "max memory used (MB)",
                "right-sized memory (MB)",
                "package MB (unpacked / zipped)",
            ],
            detail_rows(summaries),
        )
    )
    out.append("")
    out.append(f"## Bursts of {plan['burst']} workflows: throughput and cost\n")
    out.append(
        "Each burst starts all workflows at once against a function scaled to zero with that "
        "reserved concurrency; cells are the median (min–max) over the bursts run (the extra "
        "bursts run for the shutdown-precision sample are repeats at concurrency 16). Throughput = completed workflows / (first start → last result). "
        "Billed time includes every invocation the burst caused until the function was idle "
        "again, including invocations that found nothing left to do.\n"
    )
    out.append(
        table(
            [
                "implementation",
                "concurrency",
                "bursts",
                "completed",
                "workflows/s",
                "latency p50 (ms)",
                "latency p95 (ms)",
                "invocations per burst",
                "billed ms per workflow",
                "GB-s per workflow",
                "errors",
            ],
            burst_rows(summaries, concurrencies),
        )
    )
    out.append("")
    startup = startup_rows(summaries)
    if startup:
        out.append("## Our start-up path\n")
        out.append(
            "Our worker reports, in each invocation's response, how long it took from the "
            "invocation's start until its worker polled (`ready_ms`): getting a connection "
            "(made afresh, or kept from the previous invocation and checked with one "
            "`GetSystemInfo`) and creating the worker. Over every successful invocation of the "
            "run, median (min–max) in ms, and how many invocations; *init* and *invoke → "
            "first task* are as above.\n"
        )
        out.append(
            table(
                [
                    "implementation",
                    "init",
                    "ready, new connection",
                    "ready, reused connection",
                    "invoke → first task, cold",
                    "invoke → first task, warm",
                ],
                startup,
            )
        )
        out.append("")
    follow = plan.get("follow_up")
    if follow and follow["implementations"]:
        out.append("## Idle exit: two workflows a few seconds apart\n")
        out.append(
            f"Function timeout {follow['timeout_secs']} s (so "
            f"{follow['timeout_secs'] - 7} s of polling per invocation with the 7 s buffer); "
            "per pair, the function is scaled to zero, one workflow runs (cold), and "
            f"{follow['gap_ms'] / 1000:g} s after its result a second one is started. "
            f"{follow['rounds']} pairs each; cells are the median (min–max). Billed time and "
            "GB-s cover every invocation the pair caused until the function was idle again. "
            "A worker that polls until the deadline serves both workflows in one invocation "
            "and bills its whole window; one with an idle exit bills its work plus the idle "
            "period, and the second workflow waits for a new (warm) invocation.\n"
        )
        out.append(
            table(
                [
                    "implementation",
                    "pairs",
                    "billed ms per pair",
                    "GB-s per pair",
                    "GB-s ratio to Go",
                    "first workflow e2e (ms)",
                    "second workflow e2e (ms)",
                    "invocations per pair",
                    "errors",
                ],
                follow_up_rows(summaries, go),
            )
        )
        out.append("")
    out.append("## Shutdown precision\n")
    out.append(
        "Over every successful invocation of the run: when the response reached the Runtime "
        "API, relative to (deadline − 7 s buffer), in ms, leaving out those an idle exit "
        "ended early (they stopped before that moment by design). Every package polls until "
        "that moment and then stops its worker, so 0 is perfect and the buffer leaves 7000 ms "
        "of margin. "
        "*Overran*: invocations that answered after the deadline or were killed at it.\n"
    )
    out.append(
        table(
            [
                "implementation",
                "invocations",
                "min",
                "median",
                "p95",
                "max",
                "ended by idle exit (left out)",
                "overran",
                "non-success",
            ],
            precision_rows(summaries),
        )
    )
    out.append("")
    failures = [s for s in summaries if s["error"]]
    if failures:
        out.append("## What failed\n")
        for s in failures:
            out.append(f"- **{s['name']}**: `{s['error']}`")
            said = function_output(log, s["name"])
            if said:
                out.append("  Its last output:\n\n  ```\n" + "\n".join(f"  {l}" for l in said) + "\n  ```")
        out.append("")
    out.append("## Implementations\n")
    for s in summaries:
        out.append(f"- **{s['name']}**: {s['description']}")
    out.append("")
    out.append("## Method\n")
    out.append(
        "- Function timeout "
        f"{plan['function']['timeout_secs']} s for all, so each invocation polls "
        f"{plan['function']['timeout_secs'] - 7} s after the packages' default 7 s shutdown "
        "buffer. lambda-local runs each environment as a process, frozen (SIGSTOP) between "
        "invocations, "
        + (
            f"with the CPU share and memory limit of {memory_mb} MB, as on Lambda "
            f"({memory_mb / 1769:.0%} of a CPU; every invocation record says `limits: cgroup`).\n"
            if limited
            else "WITHOUT Lambda's CPU share and memory limit (records: `limits: none`).\n"
        )
        + "- The peers never end an invocation early when there is no work, nor does ours with "
        "`TEMPORAL_LAMBDA_IDLE_EXIT=off`: every invocation bills its whole poll window, busy or "
        "not, so the cost of a single workflow is mostly that window, and the cost per workflow "
        "of a burst depends on how many invocations the server makes for it (one per batch of "
        "tasks that found no poller) and how many workflows each one serves. Our idle exit (a "
        "1 s period by default since 2026-12-02; the variants say which each row used) ends an "
        "invocation once nothing has been in flight for its period, but not before 5 s when it "
        "has had no task at all.\n"
        "- *init*: process start to its first `/next` call (Lambda's Init Duration). "
        "*invoke → first task*: the invoke request reaching lambda-local to the history's first "
        "`WorkflowTaskStarted` (the worker's first poll answered). *e2e*: the harness client's "
        "start-workflow call to the result.\n"
        "- *Billed*: Lambda's billed duration (duration rounded up to the ms, plus init on cold "
        "starts as for custom runtimes), summed over the invocations a workflow or burst caused. "
        "*GB-s* = billed seconds × right-sized memory / 1024, where right-sized memory is the "
        "smallest 64 MB step from 128 MB that holds the implementation's peak resident memory "
        "over the whole run (lambda-local's *Max Memory Used*: peak RSS of the environment's "
        "processes).\n"
        "- *Package*: the deployment package directory (bootstrap binary; or code plus "
        "production dependencies, including the runtime interface client); zipped with deflate. "
        "The Python and Node.js interpreters themselves are not counted.\n"
    )
    out.append("## Reproduce\n")
    out.append(
        "```sh\n"
        "bench/run            # full run: writes bench/results/results.json, this file and the plot\n"
        "bench/run --short    # a few workflows per implementation, results under target/bench/short/\n"
        "bench/run --only rust,go --rounds 3                   # a subset, other counts\n"
        "bench/run --variant idle:SOME_VARIABLE=1              # adds rust-idle: ours with that variable\n"
        "```\n"
        "Needs Rust, Go, Node.js and Python 3 with pip; `bench/run` installs the rest from "
        "crates.io, the Go module proxy, npm and PyPI (cached under `target/bench/`).\n"
    )
    out.append("## Machine\n")
    out.append(
        table(
            ["", ""],
            [
                ["CPU", machine_info["cpu"]],
                ["cores (nproc)", machine_info["nproc"]],
                ["memory", machine_info["memory"]],
                ["kernel", machine_info["kernel"]],
                ["Rust", machine_info["rustc"]],
                ["Go", machine_info["go"]],
                ["Node.js", machine_info["node"]],
                ["Python", machine_info["python"]],
                ["Temporal CLI (dev server)", machine_info["temporal"]],
            ],
        )
    )
    out.append("")
    return "\n".join(out)


def function_output(log, name, lines=8):
    """The last lines a function printed (lambda-local prefixes them with `[name:env]`), without
    its REPORT lines: where a peer that cannot run says why."""
    if not log or not Path(log).is_file():
        return []
    prefix = f"[{name}:"
    said = [
        line.rstrip()
        for line in open(log, errors="replace")
        if line.startswith(prefix) and "] REPORT RequestId" not in line
    ]
    return [line[:300] for line in said[-lines:]]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--plot-link", required=True)
    parser.add_argument("--log", help="the harness log, for the output of functions that failed")
    args = parser.parse_args()
    results = json.load(open(args.results))
    summaries = [summarize(m, results["plan"]["burst"]) for m in results["implementations"]]
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    plot(summaries, results["plan"]["concurrencies"], args.plot)
    text = render(results, summaries, machine(), args.plot_link, args.log)
    Path(args.markdown).write_text(text)
    print(f"wrote {args.markdown} and {args.plot}")


if __name__ == "__main__":
    main()
