"""Several scale runs side by side (``bench/scale_run.py --summarize A.json B.json …``): each
stage's wall time and peak RSS per run, the log-log slope of wall time against the
relationships loaded, and the planted oracle's ratios; with ``--plot PATH.svg`` the same runs
as a log-log figure (wall time per stage, and the peak RSS of the worker, Neo4j and the API).

Reads the ``--json`` files of ``scale_run.py``; touches no service. Every slope, in the table
and in the figure's legends, comes from :func:`loglog_slope`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The table's and the figure's label of the API's time to serve.
SERVE = "serve (API ready)"


@dataclass(frozen=True)
class StagePoint:
    """One stage of one run: its wall seconds, the peak RSS the table shows (Neo4j's for the
    load, the worker's for a pipeline stage, the API's for serving) and Neo4j's where known;
    ``run`` is the run's place in :func:`load_runs`' order."""

    run: int
    relationships: float
    seconds: float
    rss_mib: float
    neo4j_rss_mib: float | None


def loglog_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``log y`` against ``log x`` over ``(x, y)`` points; ``None`` with
    fewer than two distinct ``x`` or any value that is not positive (no logarithm)."""
    if len({x for x, _ in points}) < 2 or any(x <= 0 or y <= 0 for x, y in points):
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return cov / sum((x - mx) ** 2 for x in xs)


def format_slope(slope: float | None) -> str:
    return "n/a" if slope is None else f"{round(slope, 2) + 0.0:.2f}"  # no "-0.00"


def scale_label(run: dict[str, Any]) -> str:
    """``full`` at scale 1, else ``1/n`` (``1/8``)."""
    scale = float(run["scale"])
    return "full" if scale == 1 else f"1/{round(1 / scale)}"


def load_runs(files: Sequence[Path]) -> list[dict[str, Any]]:
    """The runs' figures, smallest graph first."""
    return sorted((json.loads(f.read_text()) for f in files), key=lambda r: r["relationships"])


def stage_points(runs: Sequence[dict[str, Any]]) -> dict[str, list[StagePoint]]:
    """Each stage's points over the runs, in pipeline order (load, the pipeline's steps, then
    serving); a stage a run lacks (a failed pipeline) has no point for that run."""
    stages: dict[str, list[StagePoint]] = {}
    for i, r in enumerate(runs):
        rels = float(r["relationships"])
        load = r["load"]
        neo4j = load["neo4j_peak_rss_mib"]
        stages.setdefault("load", []).append(StagePoint(i, rels, load["seconds"], neo4j, neo4j))
        pipe = r.get("pipeline") or {}
        for step, v in (pipe.get("stages") or {}).items():
            stages.setdefault(step, []).append(
                StagePoint(
                    i, rels, v["seconds"], v["worker_peak_rss_mib"], v.get("neo4j_peak_rss_mib")
                )
            )
        if "serve" in pipe:
            serve = pipe["serve"]
            stages.setdefault(SERVE, []).append(
                StagePoint(i, rels, serve["ready_s"], serve["api_peak_rss_mib"], None)
            )
    # the runs may not list the stages in the same order: the pipeline's order, serving last
    order = ["load", "export", "train", "write_back", "segments", "activate"]
    rank = {s: i for i, s in enumerate(order)}
    return dict(
        sorted(stages.items(), key=lambda kv: (kv[0] == SERVE, rank.get(kv[0], len(order))))
    )


def time_slopes(stages: dict[str, list[StagePoint]]) -> dict[str, float | None]:
    """Each stage's log-log slope of wall seconds against relationships."""
    return {
        stage: loglog_slope([(p.relationships, p.seconds) for p in points])
        for stage, points in stages.items()
    }


def rss_series(
    runs: Sequence[dict[str, Any]], stages: dict[str, list[StagePoint]]
) -> dict[str, list[tuple[float, float]]]:
    """Per run, the worker's peak RSS over the pipeline's stages, Neo4j's over the load and the
    stages, and the API's while serving (each only where the run measured it)."""
    series: dict[str, list[tuple[float, float]]] = {"worker": [], "Neo4j": [], "API": []}
    for i, r in enumerate(runs):
        rels = float(r["relationships"])
        here = {s: p for s, points in stages.items() for p in points if p.run == i}
        worker = [p.rss_mib for s, p in here.items() if s not in ("load", SERVE)]
        neo4j = [p.neo4j_rss_mib for p in here.values() if p.neo4j_rss_mib is not None]
        for name, values in (("worker", worker), ("Neo4j", neo4j)):
            if values:
                series[name].append((rels, max(values)))
        if SERVE in here:
            series["API"].append((rels, here[SERVE].rss_mib))
    return {name: points for name, points in series.items() if points}


def oracle_line(pipe: dict[str, Any]) -> str:
    """The planted oracle's NDCG@10 and the model's share of it, as one line."""
    if "oracle_error" in pipe:
        return f"oracle: not evaluated ({pipe['oracle_error']})"
    if "oracle_ndcg@10" not in pipe:
        return "oracle: not evaluated"
    model = (pipe.get("train_metrics") or {}).get("test_ndcg@10")
    ratio = pipe.get("ndcg@10_vs_oracle")
    return (
        f"oracle (affinity {pipe['affinity']}): test NDCG@10 {pipe['oracle_ndcg@10']:.4f} over "
        f"{pipe.get('oracle_ranked_users', 0):.0f} users; model "
        f"{'n/a' if model is None else f'{model:.4f}'} = "
        f"{'n/a' if ratio is None else f'{ratio:.3f}'} x oracle"
    )


def summarize(files: Sequence[Path], plot: Path | None = None) -> dict[str, float | None]:
    """Print a table of the runs' ``--json`` figures by stage with each stage's log-log slope
    of wall time against relationships (least squares over the runs), then the oracle lines;
    with ``plot``, write the figure there too. Returns the slopes by stage."""
    runs = load_runs(files)
    stages = stage_points(runs)
    slopes = time_slopes(stages)
    columns = " | ".join(f"{scale_label(r)} ({r['relationships']:,} rels)" for r in runs)
    print(f"| stage | {columns} | log-log slope |")
    print("|---" * (len(runs) + 2) + "|")
    for stage, points in stages.items():
        at = {p.run: p for p in points}
        cells = " | ".join(
            f"{at[i].seconds:,.1f} s, {at[i].rss_mib:,.0f} MiB" if i in at else "–"
            for i in range(len(runs))
        )
        print(f"| {stage} | {cells} | {format_slope(slopes[stage])} |")
    for r in runs:
        print(f"{scale_label(r)}: {oracle_line(r.get('pipeline') or {})}")
    if plot is not None:
        write_plot(plot, runs, stages, slopes)
        print(f"plot: {plot}")
    return slopes


def write_plot(
    path: Path,
    runs: Sequence[dict[str, Any]],
    stages: dict[str, list[StagePoint]],
    slopes: dict[str, float | None],
) -> None:
    """Two log-log panels against relationships: each stage's wall seconds (a line with markers
    per stage, a dashed slope-1 line through the smallest run's total of the stages), and the
    peak RSS of the worker, Neo4j and the API. Legends carry the fitted slopes; the SVG keeps
    its text as text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    rels = [float(r["relationships"]) for r in runs]
    ticks = [f"{scale_label(r)}\n{r['relationships'] / 1e6:.2f}M" for r in runs]
    with plt.rc_context({"svg.fonttype": "none"}):
        fig, (ax_time, ax_rss) = plt.subplots(1, 2, figsize=(13, 5.5))
        for stage, points in stages.items():
            shown = [(p.relationships, p.seconds) for p in points if p.seconds > 0]
            if shown:
                ax_time.plot(
                    *zip(*shown, strict=True),
                    marker="o",
                    label=f"{stage} (slope {format_slope(slopes[stage])})",
                )
        first = rels[0]  # the runs come smallest first
        total = sum(p.seconds for points in stages.values() for p in points if p.run == 0)
        if total > 0:
            ax_time.plot(
                [first, max(rels)],
                [total, total * max(rels) / first],
                "k--",
                linewidth=1,
                label=f"slope 1 through the smallest run's total ({total:,.0f} s)",
            )
        ax_time.set_ylabel("wall seconds")
        ax_time.set_title("Wall time per stage")
        for name, peaks in rss_series(runs, stages).items():
            ax_rss.plot(
                *zip(*peaks, strict=True),
                marker="s",
                label=f"{name} (slope {format_slope(loglog_slope(peaks))})",
            )
        ax_rss.set_ylabel("peak RSS, MiB")
        ax_rss.set_title("Peak RSS (worker: over the pipeline's stages)")
        for ax in (ax_time, ax_rss):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(rels, ticks)
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("relationships")
            ax.grid(True, which="major", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
