"""The report's PNG: one bar panel per figure, one bar per implementation."""

import math

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from report_figures import median, percentile


def plot(summaries, concurrencies, path):
    names = [s["name"] for s in summaries]
    colors = {"rust": "#d9480f", "go": "#1c7ed6", "python": "#f59f00", "typescript": "#7048e8"}
    panels = [
        ("init, cold (ms)", [median(s["init_ms"]) for s in summaries]),
        ("invoke → first task, cold (ms)", [median(s["first_task_cold_ms"]) for s in summaries]),
        ("workflow e2e, cold (ms)", [median(s["e2e_cold_ms"]) for s in summaries]),
        ("workflow e2e, warm (ms)", [median(s["e2e_warm_ms"]) for s in summaries]),
        ("max memory used (MB)", [s["peak_mb"] for s in summaries]),
        ("package, zipped (MB)", [s["zipped_mb"] for s in summaries]),
        ("GB-s per workflow, 1 cold", [median(s["gbs_cold"]) for s in summaries]),
    ]
    panels.append(
        ("GB-s per workflow, burst at concurrency 4", [s["bursts"].get(4, {}).get("gbs_per_wf") for s in summaries])
    )
    panels.append(
        ("shutdown lateness p95 (ms)", [percentile(s["lateness_ms"], 95) for s in summaries])
    )
    panels.append(
        ("GB-s, follow-up pair (idle exit)", [median(s["follow_up"]["gbs"]) for s in summaries])
    )
    for c in concurrencies:
        panels.append(
            (f"workflows/s, concurrency {c}", [s["bursts"].get(c, {}).get("throughput") for s in summaries])
        )
    columns = 4
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows))
    for ax, (title, values) in zip(axes.flat, panels):
        shown = [v if v is not None else 0 for v in values]
        bars = ax.bar(names, shown, color=[colors.get(n, "#868e96") for n in names])
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8, rotation=20)
        for bar, v in zip(bars, values):
            label = "n/a" if v is None else (f"{v:.3g}" if v < 100 else f"{v:,.0f}")
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Temporal Lambda workers under lambda-local (lower is better, except workflows/s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


