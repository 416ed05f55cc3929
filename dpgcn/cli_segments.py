"""``dpgcn segments``: user segments of the active model."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dpgcn.cli_common import fail, graph_driver
from dpgcn.settings import get_settings

if TYPE_CHECKING:
    from neo4j import Driver

segments_app = typer.Typer(help="User segments: compute, list, plot.", no_args_is_help=True)

VersionOpt = Annotated[
    str | None, typer.Option("--version", help="Model version (default: the active one).")
]


def _version(driver: Driver, version: str | None) -> str:
    from graphstore.writeback import get_active

    if version:
        return version
    active = get_active(driver, get_settings().neo4j.database)
    if active is None:
        fail("no active model version: train one first (`dpgcn train --wait`)")
    return active.version


@segments_app.command("compute")
def compute(
    version: VersionOpt = None,
    k: Annotated[int | None, typer.Option("--k", min=2, help="Fixed number of segments.")] = None,
    k_min: Annotated[int, typer.Option(min=2, help="Smallest k tried.")] = 2,
    k_max: Annotated[int, typer.Option(min=2, help="Largest k tried.")] = 10,
    criterion: Annotated[
        str, typer.Option(help="How k is chosen without --k: eigengap or silhouette.")
    ] = "eigengap",
    min_count: Annotated[
        int, typer.Option(min=1, help="Events a feature needs in a segment to count.")
    ] = 3,
    force: Annotated[bool, typer.Option(help="Recompute existing segments.")] = False,
) -> None:
    """Segment the users of a model version by their embeddings and write the segments."""
    from graphstore.errors import GraphStoreError
    from training.segments import SegmentConfig, SegmentError
    from workers.segment_tasks import read_run_embeddings, segment_version

    if k_max < k_min:
        fail("--k-max must be >= --k-min", code=2)
    db = get_settings().neo4j.database
    with graph_driver() as driver:
        v = _version(driver, version)
        try:
            config = SegmentConfig(k=k, k_min=k_min, k_max=k_max, criterion=criterion)
            run_model = get_settings().artifacts_dir / "runs" / v / "model"
            embeddings = read_run_embeddings(run_model) if run_model.is_dir() else None
            summary = segment_version(
                driver, v, embeddings, config, min_count=min_count, force=force, database=db
            )
        except (GraphStoreError, SegmentError) as e:
            fail(str(e))
    if summary.skipped:
        typer.echo(f"model {v} already has {summary.k} segments (use --force to recompute)")
    else:
        sil = f"{summary.silhouette:.3f}" if summary.silhouette is not None else "n/a"
        typer.echo(f"model {v}: {summary.k} segments ({summary.criterion}, silhouette {sil})")
        if len(summary.silhouette_by_k) > 1:
            by_k = ", ".join(f"{k}: {s:.3f}" for k, s in summary.silhouette_by_k.items())
            typer.echo(f"silhouette by k: {by_k}")
        if summary.eigengap_by_k:
            gaps = ", ".join(f"{k}: {g:.3f}" for k, g in summary.eigengap_by_k.items())
            typer.echo(f"eigengap by k: {gaps}")
        if summary.neighbourhood:
            typer.echo("users clustered with their neighbourhoods (item embeddings)")
    _print_segments(summary.segments)


def _print_segments(rows: list[dict[str, Any]]) -> None:
    typer.echo(f"{'segment':<34} {'size':>6} {'clicks/u':>8} {'buy/click':>9}  name")
    for r in rows:
        typer.echo(
            f"{r['id']:<34} {r['size'] or 0:>6} {r['click_rate'] or 0:>8.2f} "
            f"{r['purchase_rate'] or 0:>9.3f}  {r['name']}"
        )


@segments_app.command("list")
def list_segments(
    version: VersionOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """The segments of a model version with their profile."""
    from graphstore import segments
    from graphstore.errors import GraphStoreError

    with graph_driver() as driver:
        v = _version(driver, version)
        try:
            rows = segments.list_segments(driver, v, get_settings().neo4j.database)
        except GraphStoreError as e:
            fail(str(e))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        fail(f"model {v} has no segments: run `dpgcn segments compute --version {v}`")
    typer.echo(f"model {v}: {len(rows)} segments")
    _print_segments(rows)


@segments_app.command("prune")
def prune() -> None:
    """Delete segments of model versions that are gone or superseded."""
    from graphstore import segments
    from graphstore.errors import GraphStoreError

    with graph_driver() as driver:
        try:
            n = segments.prune_segments(driver, get_settings().neo4j.database)
        except GraphStoreError as e:
            fail(str(e))
    typer.echo(f"deleted {n} stale segments")


@segments_app.command("plot")
def plot(
    version: VersionOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default: $DPGCN_HOME/artifacts).")
    ] = None,
) -> None:
    """Write segments-map.png (users on a PCA map, coloured by segment) and
    segments-profile.png (size, click and purchase rates, top categories per segment)."""
    from graphstore import segments
    from graphstore.errors import GraphStoreError

    db = get_settings().neo4j.database
    with graph_driver() as driver:
        v = _version(driver, version)
        try:
            rows = segments.list_segments(driver, v, db)
            if not rows:
                fail(f"model {v} has no segments: run `dpgcn segments compute --version {v}`")
            ids, vectors = segments.read_user_vectors(driver, v, db)
            assigned = segments.get_assignments(driver, v, db)
        except GraphStoreError as e:
            fail(str(e))
    out_dir = out or get_settings().artifacts_dir / "segments" / v
    out_dir.mkdir(parents=True, exist_ok=True)
    map_png, profile_png = out_dir / "segments-map.png", out_dir / "segments-profile.png"
    plot_map(ids, vectors, assigned, rows, map_png, title=f"User segments of model {v}")
    plot_profiles(rows, profile_png, title=f"Segment profiles of model {v}")
    typer.echo(f"wrote {map_png}")
    typer.echo(f"wrote {profile_png}")


def plot_map(
    ids: list[str],
    vectors: Any,
    assigned: dict[str, tuple[int, float]],
    rows: list[dict[str, Any]],
    path: Path,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from training.segments import project_2d

    keep = [k for k, u in enumerate(ids) if u in assigned]
    xy = project_2d(np.asarray(vectors)[keep])
    seg = np.asarray([assigned[ids[k]][0] for k in keep])
    names = {int(r["n"]): str(r["name"]) for r in rows}
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for n in sorted(names):
        m = seg == n
        ax.scatter(
            xy[m, 0],
            xy[m, 1],
            s=10,
            alpha=0.7,
            color=cmap(n % cmap.N),
            label=f"{n}: {names[n]} ({int(m.sum())})",
        )
    ax.set_title(title)
    ax.set_xlabel("PC 1 of the user embeddings")
    ax.set_ylabel("PC 2")
    ax.legend(loc="best", fontsize=7, markerscale=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_profiles(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['n']}: {str(r['name'])[:38]}" for r in rows]
    metrics = (
        ("size", "members"),
        ("click_rate", "clicks per member"),
        ("purchase_rate", "purchases per click"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 1.2 + 0.45 * len(rows)), dpi=110, sharey=True)
    cmap = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20")
    colors = [cmap(int(r["n"]) % cmap.N) for r in rows]
    for ax, (key, label) in zip(axes, metrics, strict=True):
        ax.barh(labels, [float(r[key] or 0) for r in rows], color=colors)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------- Neo4j Browser


def browser_assets() -> Path:
    return Path(str(resources.files("graphstore").joinpath("assets/browser")))


class _AssetHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with CORS (Browser fetches guides and styles from its own origin)."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def do_OPTIONS(self) -> None:
        """CORS preflight (Browser sends no-cache headers with its guide requests)."""
        self.send_response(204)
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.send_header("Access-Control-Max-Age", "600")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_assets(port: int) -> http.server.ThreadingHTTPServer:
    """Serve ``graphstore/assets/browser`` on 127.0.0.1:``port`` (in a daemon thread)."""
    handler = functools.partial(_AssetHandler, directory=str(browser_assets()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@segments_app.command("browser")
def browser(
    port: Annotated[int, typer.Option(help="Port of the guide server (127.0.0.1).")] = 7480,
    serve: Annotated[
        bool, typer.Option(help="Serve the guide until Ctrl-C (--no-serve: print only).")
    ] = True,
) -> None:
    """Neo4j Browser: the segment guide (saved queries as runnable slides) and the style.

    The style is applied on every connect by the managed server (browser.post_connect_cmd);
    this command serves the guide and style sheet and prints the commands to paste."""
    import time

    from dpgcn import services

    conn_url = None
    with contextlib.suppress(services.ServiceError):
        conn_url = services.neo4j_connection(get_settings()).browser_url
    base = f"http://127.0.0.1:{port}"
    typer.echo(f"Neo4j Browser: {conn_url or '(external server: use its Browser)'}")
    typer.echo("In Browser's editor run:")
    typer.echo(f"  :guide {base}/segments-guide.html")
    typer.echo(f"  :style {base}/style.grass")
    typer.echo(f"(files: {browser_assets()})")
    if not serve:
        return
    try:
        server = serve_assets(port)
    except OSError as e:
        fail(f"cannot serve on 127.0.0.1:{port}: {e}")
    typer.echo(f"serving on {base} — Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
