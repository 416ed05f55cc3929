"""Test environment: a state home and ports of its own, so tests never touch the demo's data.

Set before anything imports ``dpgcn.settings``. ``NEO4J_URI`` / ``REDIS_URL`` in the
environment still point the integration tests at external servers.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("DPGCN_HOME", str(ROOT / ".state" / "test"))
os.environ.setdefault("NEO4J_BOLT_PORT", "17687")
os.environ.setdefault("NEO4J_HTTP_PORT", "17474")
os.environ.setdefault("NEO4J_HEAP", "1g")
os.environ.setdefault("NEO4J_PAGECACHE", "512m")
os.environ.setdefault("REDIS_PORT", "16379")
os.environ.setdefault("DPGCN_API_PORT", "18000")


# ------------------------------------------------------------------------ Cypher coverage
# Every process of the session (this one, `dpgcn` subprocesses, the Celery worker) records the
# names of the statements it loads to run under $DPGCN_CYPHER_TRACE (graphstore.queries). When
# the whole default suite ran and passed, a statement of cypher/ that never ran fails the run.
# DPGCN_CYPHER_COVERAGE: "auto" (default: check full runs only), "report" (list, never fail),
# "require" (check even partial runs), "off".

import shutil  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402

_OWN_TRACE = "DPGCN_CYPHER_TRACE" not in os.environ
if _OWN_TRACE:
    os.environ["DPGCN_CYPHER_TRACE"] = tempfile.mkdtemp(prefix="dpgcn-cypher-trace-")
_COLLECTED: set[Path] = set()


def pytest_itemcollected(item: pytest.Item) -> None:
    _COLLECTED.add(Path(str(item.path)).resolve())


def _whole_default_suite(session: pytest.Session) -> bool:
    opt = session.config.option
    if getattr(opt, "keyword", "") or getattr(opt, "markexpr", "") not in ("", "not slow"):
        return False
    if getattr(opt, "lf", False) or getattr(opt, "deselect", None):
        return False
    on_disk = {p.resolve() for p in (ROOT / "tests").rglob("test_*.py")}
    return bool(on_disk) and on_disk <= _COLLECTED


def uncovered_statements() -> list[str]:
    from graphstore import queries

    used = queries.traced_names(Path(os.environ["DPGCN_CYPHER_TRACE"]))
    return sorted(set(queries.names()) - used)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    mode = os.environ.get("DPGCN_CYPHER_COVERAGE", "auto")
    try:
        if mode == "off":
            return
        full = _whole_default_suite(session) and exitstatus == 0
        if mode == "auto" and not full:
            return
        missing = uncovered_statements()
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"cypher coverage: {len(missing)} statement(s) never ran"
                + (": " + ", ".join(missing) if missing else "")
            )
        if missing and mode != "report" and exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    finally:
        if _OWN_TRACE:
            shutil.rmtree(os.environ["DPGCN_CYPHER_TRACE"], ignore_errors=True)
