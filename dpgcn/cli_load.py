"""``dpgcn load <source>``: parse a dataset and write it into the graph, then say what changed.

The summary is a table of the graph's nodes per label and relationships per type before and
after the load, with the difference (``+0`` everywhere when the same files are loaded twice),
followed by what the source held that was not written: rejected rows (``--on-error reject``),
rows skipped on purpose (a repeated ``event_id``…) and rows whose endpoints were missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from dpgcn import services
from dpgcn.cli_common import fail, graph_driver
from dpgcn.settings import get_settings
from graphstore.records import GraphSource

if TYPE_CHECKING:
    from graphstore.ingest import LoadSummary
    from graphstore.sources.synthetic import SyntheticSpec

load_app = typer.Typer(help="Load data into the graph.", no_args_is_help=True)

_BULK_HELP = (
    "Initial load with neo4j-admin database import (offline: the managed Neo4j is stopped "
    "and restarted). Only into an empty, locally managed database (with --replace: replaces it)."
)
_CATEGORY_NAMES_HELP = (
    "A table with columns id,name (separator , ; tab or |) giving display names to the "
    "source's categories, e.g. for numeric category ids (see docs/loaders.md)."
)
#: The synthetic generator's modes (``graphstore.sources.synthetic.MODES``; a unit test keeps
#: them in step, importing the generator here would load numpy for every CLI call).
SyntheticMode = Literal["default", "cold"]
#: ``--mode``, shared by ``dpgcn load synthetic`` and ``dpgcn evaluate --dataset synthetic``.
ModeOption = Annotated[
    SyntheticMode,
    typer.Option(
        "--mode",
        help="Synthetic generator mode: default (Poisson activity, every item from the start) "
        "or cold (power-law activity, appeal from category and terms, 30% of the items new "
        "after 85% of the time span; SyntheticSpec.cold, docs/loaders.md).",
    ),
]
#: --events-per-user of the synthetic commands: unset keeps the mode's value.
EventsOption = Annotated[
    float | None,
    typer.Option(min=1.0, help="Mean events per user (default: 20; 6 in the cold mode)."),
]
#: --delimiter values, as typed on a command line.
_DELIMITERS = {",": ",", ";": ";", "|": "|", "\\t": "\t", "tab": "\t", "\t": "\t"}


@load_app.command("synthetic")
def load_synthetic(
    users: Annotated[int, typer.Option(min=1, help="Number of users.")] = 2000,
    items: Annotated[int, typer.Option(min=1, help="Number of items.")] = 500,
    segments: Annotated[int, typer.Option(min=1, help="Planted user segments.")] = 6,
    events_per_user: EventsOption = None,
    drift: Annotated[float, typer.Option(min=0, max=1, help="Fraction of drifting users.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same graph).")] = 0,
    mode: ModeOption = "default",
    replace: Annotated[bool, typer.Option(help="Delete the whole graph first.")] = False,
    bulk: Annotated[bool, typer.Option(help=_BULK_HELP)] = False,
) -> None:
    """Generate the synthetic shop (planted segments, Zipf items, queries) and load it."""
    spec = synthetic_spec(
        mode,
        users=users,
        items=items,
        n_segments=segments,
        events_per_user=events_per_user,
        drift_fraction=drift,
        seed=seed,
    )
    from graphstore.sources import synthetic

    source, _truth = synthetic.generate(spec)
    ingest_source(source, replace, bulk)


def synthetic_spec(mode: str, **fields: object) -> SyntheticSpec:
    """The generator's spec for ``--mode`` and the command's options (``None``: the mode's
    value); a bad value is a CLI error."""
    from graphstore.sources import synthetic

    try:
        return synthetic.spec_for(mode, **{k: v for k, v in fields.items() if v is not None})
    except (TypeError, ValueError) as e:
        fail(str(e), code=2)


def ingest_source(source: GraphSource, replace: bool, bulk: bool = False) -> None:
    """Write ``source`` (online, or with ``neo4j-admin import`` for ``bulk``) and print the
    summary; a graph error is a CLI error."""
    from tqdm import tqdm

    if bulk:
        _bulk_ingest(source, replace)
        return

    from graphstore import ingest
    from graphstore.driver import delete_all
    from graphstore.errors import GraphStoreError

    db = get_settings().neo4j.database
    with graph_driver() as driver:
        try:
            if replace:
                delete_all(driver, db)
            with tqdm(desc="loading", unit="rows", leave=False, disable=None) as bar:
                summary = ingest.load_source(
                    driver, source, database=db, progress=lambda part, n: bar.update(n)
                )
        except GraphStoreError as e:
            fail(str(e))
    typer.echo(f"loaded {summary.source}")
    for line in summary_lines(summary):
        typer.echo(line)


def _signed(n: int) -> str:
    return f"{n:+,}"


def summary_lines(summary: LoadSummary) -> list[str]:
    """The load summary as printed: before → after per label and type, then what was not
    written. A load without counts (the bulk import) lists the rows written per part."""
    lines: list[str] = []
    if summary.after:
        width = max(14, *(len(k) for k in summary.after))
        lines.append(f"  {'':{width}} {'before':>10} {'after':>10} {'change':>10}")
        for key, after in summary.after.items():
            before = summary.before.get(key, 0)
            lines.append(
                f"  {key:{width}} {before:>10,} {after:>10,} {_signed(after - before):>10}"
            )
    else:
        for part, n in summary.written.items():
            lines.append(f"  {part:16} {n:>9,}")
    lines.append("not written:")
    rejected = len(summary.rejected)
    example = f" (first: {summary.rejected[0]})" if rejected else ""
    lines.append(f"  rejected rows: {rejected:,}{example}")
    for what, n in summary.skipped.items():
        lines.append(f"  skipped, {what}: {n:,}")
    if summary.erased:
        lines.append(f"  erased users left out: {summary.erased:,}")
    unmatched = summary.unmatched
    shown = ", ".join(f"{part} {n:,}" for part, n in unmatched.items())
    total = sum(unmatched.values())
    lines.append(
        f"  rows whose endpoints were missing: {total:,}" + (f" ({shown})" if shown else "")
    )
    return lines


def _bulk_ingest(source: GraphSource, replace: bool) -> None:
    from tqdm import tqdm

    from dpgcn import bulk_import

    settings = get_settings()
    try:
        with tqdm(desc="writing import files", unit="rows", leave=False, disable=None) as bar:
            done = bulk_import.bulk_load(
                settings, source, replace=replace, progress=lambda part, n: bar.update(n)
            )
    except services.ServiceError as e:
        fail(str(e))
    summary = done.summary
    if not summary.skipped:
        summary.skipped = dict(source.skipped)
    typer.echo(
        f"bulk-loaded {summary.source} with neo4j-admin database import: files "
        f"{done.files_s:.1f} s, import {done.import_s:.1f} s, restart "
        f"{done.stop_s + done.start_s:.1f} s, schema {done.schema_s:.1f} s"
    )
    for line in summary_lines(summary):
        typer.echo(line)


def parse_delimiter(value: str | None) -> str | None:
    """A ``--delimiter`` value as the separator character (``\\t`` and ``tab`` mean a tab)."""
    if value is None:
        return None
    if value not in _DELIMITERS:
        fail(f"--delimiter must be one of ',', ';', '\\t' (or tab), '|'; not {value!r}", code=2)
    return _DELIMITERS[value]


def _named(source: GraphSource, names_file: Path | None, on_error: str) -> GraphSource:
    if names_file is None:
        return source
    from graphstore.sources.loaders.categories import name_categories, read_category_names
    from graphstore.sources.loaders.tables import Problems

    problems = Problems(on_error)
    names = read_category_names(names_file, problems=problems)
    named = name_categories(source, names, names_file.name)
    named.rejected = [*source.rejected, *problems.rejected]
    return named


def _register_loader(name: str, doc: str) -> None:
    def command(
        path: Annotated[Path, typer.Option(exists=True, help="The dataset's folder or file.")],
        on_error: Annotated[
            str, typer.Option(help="raise: refuse the load on a bad row; reject: skip bad rows.")
        ] = "raise",
        category_names: Annotated[
            Path | None, typer.Option(exists=True, dir_okay=False, help=_CATEGORY_NAMES_HELP)
        ] = None,
        replace: Annotated[bool, typer.Option(help="Delete the whole graph first.")] = False,
        bulk: Annotated[bool, typer.Option(help=_BULK_HELP)] = False,
    ) -> None:
        from graphstore.errors import GraphStoreError
        from graphstore.sources.loaders import load_dataset

        try:
            source = _named(load_dataset(name, path, on_error=on_error), category_names, on_error)
        except (GraphStoreError, ValueError) as e:
            fail(str(e))
        ingest_source(source, replace, bulk)

    command.__doc__ = doc
    load_app.command(name)(command)


@load_app.command("generic")
def load_generic(
    path: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="The folder with the CSV files.")
    ],
    delimiter: Annotated[
        str | None,
        typer.Option(
            help="Column separator of the files: ',', ';', '\\t' (or tab) or '|'. "
            "Default: detected per file from its header line."
        ),
    ] = None,
    on_error: Annotated[
        str, typer.Option(help="raise: refuse the load on a bad row; reject: skip bad rows.")
    ] = "raise",
    implied_searches: Annotated[
        bool, typer.Option(help="Also count a search for every click/purchase with a query.")
    ] = False,
    category_names: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help=_CATEGORY_NAMES_HELP)
    ] = None,
    replace: Annotated[bool, typer.Option(help="Delete the whole graph first.")] = False,
    bulk: Annotated[bool, typer.Option(help=_BULK_HELP)] = False,
) -> None:
    """Load the generic format (users, items, events, categories); see docs/loaders.md."""
    from graphstore.errors import GraphStoreError
    from graphstore.sources.loaders import generic

    separator = parse_delimiter(delimiter)
    try:
        source = generic.load(
            path, on_error=on_error, implied_searches=implied_searches, delimiter=separator
        )
        source = _named(source, category_names, on_error)
    except (GraphStoreError, ValueError) as e:
        fail(str(e))
    ingest_source(source, replace, bulk)


for _name, _doc in (
    ("movielens", "Load MovieLens-100K (ratings, user demographics, genres)."),
    ("bestbuy", "Load the Best Buy search → click log."),
    ("jdsearch", "Load the JD search sample (term-id queries, click/cart/purchase)."),
    ("amazon", "Load Amazon reviews + metadata JSON lines (queries from category paths)."),
):
    _register_loader(_name, _doc)
