"""The report's PNG: cost against latency per implementation, one point per memory size of the
sweep (AWS Lambda Power Tuning's view), and the same for each workload cell."""

import math

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from report_figures import median

COLORS = {"rust": "#d9480f", "go": "#1c7ed6", "python": "#f59f00", "typescript": "#7048e8"}


def plot(cells, order, path):
    sweep = {k: v for k, v in cells.items() if k[0] == "sweep"}
    workloads = [k for k in cells if k[0] == "workload"]
    panels = 1 + len(workloads)
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.2 * rows), squeeze=False)
    axes = list(axes.flat)

    ax = axes[0]
    for name in order:
        points = [
            (median(v[name][1]["e2e_cold_ms"]), median(v[name][1]["gbs_cold"]), k[2])
            for k, v in sweep.items()
            if name in v and v[name][1]["e2e_cold_ms"]
        ]
        if not points:
            continue
        xs, ys, sizes = zip(*points)
        ax.plot(xs, ys, "o-", label=name, color=COLORS.get(name, "#868e96"), alpha=0.85)
        for x, y, s in points:
            ax.annotate(str(s), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_title("sweep, greeting: GB-s vs cold e2e, one point per MB", fontsize=9)
    ax.set_xlabel("cold e2e (ms)")
    ax.set_ylabel("GB-s per workflow")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=7)

    for ax, key in zip(axes[1:], workloads):
        for name in order:
            entry = cells[key].get(name)
            if not entry or not entry[1]["burst_e2e_ms"]:
                continue
            f = entry[1]
            x, y = median(f["burst_e2e_ms"]), median(f["burst_gbs_per_wf"])
            ax.scatter([x], [y], color=COLORS.get(name, "#868e96"), label=name)
            ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_title(f"{key[1]}, {key[2]} MB, {key[3]} s: burst GB-s vs e2e p50", fontsize=9)
        ax.set_xlabel("e2e p50 (ms)")
        ax.set_ylabel("GB-s per workflow")
        ax.set_xscale("log")
        ax.set_yscale("log")
    for ax in axes[panels:]:
        ax.axis("off")
    fig.suptitle("Cost against latency under Lambda-true CPU shares (lower left is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
