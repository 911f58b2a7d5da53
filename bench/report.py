"""Renders the harness's results.json into BENCHMARKS.md (tables) and a PNG plot.

Usage: report.py RESULTS --markdown FILE --plot FILE.png --plot-link RELATIVE_PATH [--notes FILE]

Every figure is computed from the raw samples and invocation records the harness wrote
(report_figures.py); nothing is typed in by hand. Medians are shown with their spread (min-max)
over the samples; ratios are against the Go peer of the same run. `--notes` appends a hand-written
reading of the figures (bench/BENCHMARKS-notes.md) after the tables.
"""

import argparse
import json
from pathlib import Path

from report_figures import (
    cell_figures,
    fmt,
    fmt_ratio,
    fmt_spread,
    machine,
    median,
    overruns,
    percentile,
    ratio,
    ready_ms,
    zipped_bytes,
)
from report_plot import plot

HEADLINE = "go"  # the peer every ratio is taken against
OURS = "rust"  # the product as shipped: every default
# The goals of the issue that asked for this report (ratios to Go, medians).
GOALS = {"cold e2e": 0.3, "GB-s per workflow": 0.3, "max memory": 0.6, "zip": 0.6}


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cells_of(results):
    """{(kind, workload, memory, timeout): {implementation: (cell, figures)}} in plan order."""
    out = {}
    for c in results["plan"]["cells"]:
        out[(c["kind"], c["workload"], c["memory_mb"], c["timeout_secs"])] = {}
    for m in results["implementations"]:
        for cell in m["cells"]:
            key = (cell["kind"], cell["workload"], cell["memory_mb"], cell["timeout_secs"])
            out.setdefault(key, {})[m["name"]] = (cell, cell_figures(cell))
    return out


def goal_cell(value, reference, goal):
    r = ratio(value, reference)
    if r is None:
        return "–"
    mark = "✓" if r <= goal else f"✗ ({r / goal:.1f}× the goal)"
    return f"{fmt_ratio(r)} {mark}"


def headline(results, cells, zips, implementations):
    """Ours as shipped against Go, per workload cell, with the goals."""
    rows = []
    go_zip, our_zip = zips.get(HEADLINE), zips.get(OURS)
    for (kind, workload, memory, timeout), by_name in cells.items():
        if kind != "workload" or OURS not in by_name or HEADLINE not in by_name:
            continue
        ours, go = by_name[OURS][1], by_name[HEADLINE][1]
        cold = (median(ours["e2e_cold_ms"]), median(go["e2e_cold_ms"]))
        gbs = (median(ours["burst_gbs_per_wf"]), median(go["burst_gbs_per_wf"]))
        mem = (ours["max_memory_mb"], go["max_memory_mb"])
        rows.append(
            [
                f"{workload}, {memory} MB, {timeout} s",
                f"{fmt(cold[0])} / {fmt(cold[1])} ms",
                goal_cell(*cold, GOALS["cold e2e"]),
                f"{fmt(gbs[0], 4)} / {fmt(gbs[1], 4)}",
                goal_cell(*gbs, GOALS["GB-s per workflow"]),
                f"{fmt(mem[0])} / {fmt(mem[1])} MB",
                goal_cell(*mem, GOALS["max memory"]),
                f"{fmt(median(ours['burst_e2e_ms']))} / {fmt(median(go['burst_e2e_ms']))} ms",
            ]
        )
    header = [
        "workload (memory, timeout)",
        "cold e2e, ours / Go",
        "ratio (goal ≤ 0.3×)",
        "GB-s per workflow in a burst, ours / Go",
        "ratio (goal ≤ 0.3×)",
        "max memory, ours / Go",
        "ratio (goal ≤ 0.6×)",
        "burst e2e p50, ours / Go",
    ]
    text = [table(header, rows), ""]
    if go_zip and our_zip:
        text.append(
            f"Package, zipped: ours {our_zip / 1e6:.2f} MB, Go {go_zip / 1e6:.2f} MB: "
            f"{goal_cell(our_zip, go_zip, GOALS['zip'])} against the goal of ≤ 0.6×.\n"
        )
    every = [r for m in implementations for r in m["records"]]
    late = overruns(every)
    text.append(
        f"Overruns (an invocation that ended after its deadline) over all {len(every):,} "
        f"invocations of the run: **{len(late)}**"
        + (f" ({', '.join(sorted({r['function_name'] for r in late}))})" if late else "")
        + ".\n"
    )
    return "\n".join(text)


def workload_rows(by_name, order):
    rows = []
    for name in order:
        if name not in by_name:
            continue
        cell, f = by_name[name]
        if f["oom"]:
            rows.append([f"**{name}**", "OOM"] + ["–"] * 9 + ["; ".join(f["errors"])[:160]])
            continue
        rows.append(
            [
                f"**{name}**",
                fmt_spread(f["init_ms"], 1),
                fmt_spread(f["first_task_cold_ms"]),
                fmt_spread(f["e2e_cold_ms"]),
                fmt_spread(f["e2e_warm_ms"]),
                f"{fmt(median(f['burst_e2e_ms']))} / {fmt(percentile(f['burst_e2e_ms'], 95))}",
                f"{f['burst_completed']}/{f['burst_workflows']}" if f["burst_workflows"] else "–",
                fmt_spread(f["burst_gbs_per_wf"], 4),
                fmt_spread(f["burst_invocations_per_wf"], 2),
                fmt_spread(f["gbs_cold"], 4),
                fmt(f["max_memory_mb"]),
                "; ".join(f["errors"])[:160] or "",
            ]
        )
    return rows


WORKLOAD_HEADER = [
    "implementation",
    "init (ms)",
    "invoke → first task, cold (ms)",
    "e2e cold (ms)",
    "e2e warm (ms)",
    "burst e2e p50 / p95 (ms)",
    "burst completed",
    "GB-s per workflow, burst",
    "invocations per workflow, burst",
    "GB-s, 1 cold workflow",
    "max memory (MB)",
    "errors",
]


def sweep_section(cells, order):
    sweep = {k: v for k, v in cells.items() if k[0] == "sweep"}
    if not sweep:
        return []
    sizes = [k[2] for k in sweep]
    timeout = next(iter(sweep))[3]
    out = [
        "## Memory sweep (greeting)\n",
        f"The greeting at every memory size, in the style of AWS Lambda Power Tuning: cold and "
        f"warm single workflows against a function with a {timeout} s timeout (short, so a peer "
        "polling until its deadline does not stretch the run; the workload cells below show the "
        "bill at the deploy default of 60 s). GB-s is what the invocations of one cold workflow "
        "were billed at that size; `OOM` where the implementation ran out of memory.\n",
    ]
    header = ["implementation"] + [f"{s} MB" for s in sizes] + ["cheapest size", "fastest size"]
    for label, key, digits in [
        ("init (ms)", "init_ms", 1),
        ("e2e cold (ms)", "e2e_cold_ms", 0),
        ("e2e warm (ms)", "e2e_warm_ms", 0),
        ("GB-s, 1 cold workflow", "gbs_cold", 4),
    ]:
        rows = []
        for name in order:
            values, cost, speed = [], {}, {}
            for k in sweep:
                entry = sweep[k].get(name)
                if entry is None:
                    values.append("–")
                    continue
                f = entry[1]
                if f["oom"] or (f["errors"] and not f["e2e_cold_ms"]):
                    values.append("OOM" if f["oom"] else "failed")
                    continue
                values.append(fmt(median(f[key]), digits))
                cost[k[2]] = median(f["gbs_cold"])
                speed[k[2]] = median(f["e2e_cold_ms"])
            if all(v == "–" for v in values):
                continue
            cheapest = min(cost, key=lambda s: cost[s] or 1e9) if cost else None
            fastest = min(speed, key=lambda s: speed[s] or 1e9) if speed else None
            rows.append(
                [f"**{name}**"]
                + values
                + [f"{cheapest} MB" if cheapest else "–", f"{fastest} MB" if fastest else "–"]
            )
        out += [f"### {label}\n", table(header, rows), ""]
    return out


def render(results, cells, machine_info, plot_link, notes):
    implementations = results["implementations"]
    order = [m["name"] for m in implementations]
    zips = {m["name"]: zipped_bytes(m["package"]) for m in implementations}
    short = results["mode"] == "short"
    limited = results.get("limits") == "cgroup"
    out = ["# Benchmarks: Temporal serverless workers on Lambda-true CPU shares\n"]
    if short:
        out.append(
            "> **Short mode** (`bench/run --short`): tiny counts that only check the harness "
            "works. These figures mean nothing.\n"
        )
    out.append(
        "Every implementation runs the same three workflows (`bench/harness/src/workloads.rs`): "
        "**greeting** (one activity), **approval** (an activity, a 3 s timer, a signal sent 5 s "
        "after the start, an activity, and an activity that fails its first attempt and is "
        "retried after 1 s) and **fan-out** (20 activities started at once, results summed), "
        "unmodified, each as its own Lambda function and Worker Deployment Version in one "
        "lambda-local, invoked by the Worker Controller of one Temporal dev server. Each "
        "execution environment gets the CPU share and the memory limit of its memory size "
        "(memory / 1,769 MB of one CPU, by cgroup), as on Lambda. Implementations take turns to "
        "run workflows (never two at once); a worker polling until its deadline may overlap the "
        "next one's turn. Ratios are against the Go peer "
        "(`go.temporal.io/sdk/contrib/aws/lambdaworker`) measured in the same run.\n"
    )
    out.append(
        f"Run of {results['started_at'][:19].replace('T', ' ')} UTC, {results['mode']} mode, "
        f"harness wall clock {results['wall_clock_s'] / 60:.1f} min. Load average before: "
        f"`{results['load_average_before']}`, after: `{results['load_average_after']}`. Limits "
        f"in force, from the invocation records: **{results.get('limits', 'unknown')}**.\n"
    )
    out.append("## Headline: ours as shipped against Go\n")
    if limited:
        out.append(
            "`rust` is the product with every default (1 s idle exit with its 2 s lookahead, "
            "connection reuse). Medians; ✓ where the goal (ratio to Go) is met.\n"
        )
        out.append(headline(results, cells, zips, implementations))
    else:
        out.append(
            "**No headline**: not every invocation ran under its memory size's CPU share and "
            "memory limit (lambda-local needs cgroup v1 and root for them), so these figures are "
            "not Lambda's. The tables below are kept for the harness's sake.\n"
        )
    out.append(f"![cost against latency]({plot_link})\n")
    out.append("## Workloads\n")
    out.append(
        "Per cell: one cold and one warm single workflow per round (the function's environments "
        "discarded first for cold, one left frozen for warm), then a burst started at once "
        "against the function with a reserved concurrency. GB-s per workflow is the burst's "
        "billed time at the cell's memory size divided by its completed workflows.\n"
    )
    for (kind, workload, memory, timeout), by_name in cells.items():
        if kind != "workload":
            continue
        cell = next(iter(by_name.values()))[0] if by_name else {}
        out.append(
            f"### {workload}, {memory} MB, {timeout} s timeout "
            f"(bursts of {cell.get('burst', '?')} at concurrency {cell.get('concurrency', '?')})\n"
        )
        out.append(table(WORKLOAD_HEADER, workload_rows(by_name, order)))
        out.append("")
    out += sweep_section(cells, order)
    out.append("## Packages and start-up\n")
    rows = []
    for m in implementations:
        ready = ready_ms(m["records"])
        rows.append(
            [
                f"**{m['name']}**",
                m["description"],
                f"{m['package_bytes'] / 1e6:.1f}",
                f"{zips[m['name']] / 1e6:.2f}" if zips[m["name"]] else "–",
                fmt_ratio(ratio(zips[m["name"]], zips.get(HEADLINE))),
                fmt_spread(ready["new"]) if ready["new"] else "–",
                fmt_spread(ready["reused"]) if ready["reused"] else "–",
                len(m["records"]),
                len(overruns(m["records"])),
                m["error"] or "",
            ]
        )
    out.append(
        table(
            [
                "implementation",
                "what",
                "package MB",
                "zipped MB",
                "zip vs Go",
                "ready ms, new connection",
                "ready ms, reused",
                "invocations",
                "overruns",
                "error",
            ],
            rows,
        )
    )
    out.append(
        "\n*ready*: event to polling, as our worker reports it in each response (the peers do "
        "not say). *Zipped*: the package directory deflated, the form Lambda takes it in; the "
        "Python and Node.js interpreters are not counted.\n"
    )
    if notes and Path(notes).is_file():
        out.append(Path(notes).read_text().strip() + "\n")
    out.append("## Machine\n")
    out.append(table(["", ""], [[k, f"`{v}`"] for k, v in machine_info.items()]))
    out.append("")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--plot-link", required=True)
    parser.add_argument("--notes", help="a reading of the figures to append after the tables")
    args = parser.parse_args()
    results = json.load(open(args.results))
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    cells = cells_of(results)
    plot(cells, [m["name"] for m in results["implementations"]], args.plot)
    text = render(results, cells, machine(), args.plot_link, args.notes)
    Path(args.markdown).write_text(text)
    print(f"wrote {args.markdown} and {args.plot}")


if __name__ == "__main__":
    main()
