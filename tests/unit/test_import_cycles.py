"""No import cycles: the import graph of our packages (grimp, every import counted: module
level, inside functions and under ``TYPE_CHECKING``) has no cycle, and the API reaches the
workers only through the run registry, which imports no Celery."""

from __future__ import annotations

import itertools
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter

import grimp

PACKAGES = ("api", "graphstore", "training", "workers", "dpgcn", "cypher")


def import_graph(*packages: str) -> dict[str, set[str]]:
    """Module → the modules of ``packages`` it imports."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def find_cycles(graph: dict[str, set[str]], limit: int = 50) -> list[list[str]]:
    """Cycles of ``graph``, each as ``[a, b, ..., a]``: one per cut edge, until none is left
    (enough to name every cycle that has to be broken)."""
    edges = {m: set(targets) for m, targets in graph.items()}
    found: list[list[str]] = []
    while len(found) < limit:
        try:
            TopologicalSorter(edges).prepare()
        except CycleError as e:
            # graphlib lists the cycle against the edges' direction: b depends on a …
            cycle = list(reversed(e.args[1]))
            found.append(cycle)
            edges[cycle[0]].discard(cycle[1])
            continue
        return found
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}, "p.e": {"p.e"}}
    cycles = find_cycles(graph)
    assert {frozenset(c) for c in cycles} == {frozenset({"p.a", "p.b", "p.c"}), frozenset({"p.e"})}
    for cycle in cycles:
        assert cycle[0] == cycle[-1]
        assert all(b in graph[a] for a, b in itertools.pairwise(cycle))
    assert find_cycles({"p.a": {"p.b"}, "p.b": set()}) == []


def test_grimp_sees_function_level_imports() -> None:
    # workers.context imports dpgcn.settings inside functions only; the graph holds it
    graph = import_graph("workers", "dpgcn")
    assert "dpgcn.settings" in graph["workers.context"]
    assert "workers.runs" in graph["workers.context"]


def test_no_import_cycle_in_any_package() -> None:
    cycles = find_cycles(import_graph(*PACKAGES))
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def package_of(module: str) -> str:
    """The node of ``module`` in the package graph: its top-level package, except the CLI
    (``dpgcn.cli*``), the entry point above every package, which is a node of its own."""
    top = module.split(".")[0]
    if top == "dpgcn" and module.split(".")[1:2] and module.split(".")[1].startswith("cli"):
        return "dpgcn.cli"
    return top


def test_no_import_cycle_between_packages() -> None:
    """The packages import each other one way: the CLI → api, workers → graphstore, training
    → dpgcn (settings, services, streams)."""
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph(*PACKAGES).items():
        node = package_of(module)
        packages.setdefault(node, set()).update(package_of(t) for t in targets)
        packages[node].discard(node)
    cycles = find_cycles(packages)
    assert cycles == [], "package cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
    assert "api" not in packages["workers"] and "workers" not in packages["graphstore"]
    assert not packages["training"] & {"api", "workers", "dpgcn.cli"}


def test_the_api_reaches_the_workers_only_through_the_run_registry() -> None:
    graph = import_graph(*PACKAGES)
    from_api = {t for m, targets in graph.items() if m.startswith("api") for t in targets}
    assert {t for t in from_api if t.split(".")[0] == "workers"} <= {"workers", "workers.runs"}
    # the registry needs no Celery, no task module, no other worker module
    full = grimp.build_graph("workers", include_external_packages=True, cache_dir=None)
    imported = full.find_modules_directly_imported_by("workers.runs")
    assert not {m for m in imported if m.split(".")[0] in ("celery", "kombu", "workers")}


def test_importing_the_api_loads_no_celery_and_no_task_module() -> None:
    code = (
        "import sys, api.main\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu') "
        "or m.startswith('workers.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "['workers.runs']"


def test_task_modules_import_only_downward() -> None:
    """The shared context and the registry import no task module and no Celery app; only
    recovery imports the pipeline (to resume runs)."""
    graph = import_graph("workers")
    assert graph["workers.runs"] <= {"workers"}
    assert graph["workers.context"] <= {"workers", "workers.runs"}
    assert graph["workers.app"] <= {"workers"}
    importers = {m for m, targets in graph.items() if "workers.pipeline" in targets}
    assert importers == {"workers.recovery"}
