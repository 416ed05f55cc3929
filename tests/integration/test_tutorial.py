"""docs/tutorial-own-data.md, run as written: every ``bash`` and ``python`` block in order, in
an empty folder, against the real Neo4j, Redis, worker and API (the doc's own
``dpgcn services up --app`` starts the worker and the API; the test stops those two at the
end). Blocks preceded by ``<!-- tutorial: not run by the test … -->`` are skipped: activating
the virtualenv (the test already runs in it) and ``dpgcn services down`` (the session's
Neo4j and Redis stay up for the other tests). ``text`` blocks are captured output and are
not run; the test checks the facts they show.

``DPGCN_TUTORIAL_CAPTURE=<dir>`` writes each block's output there (to refresh the doc).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from neo4j import Driver

from tests.integration.conftest import run_cli
from tests.paths import ROOT

pytestmark = pytest.mark.integration

DOC = ROOT / "docs" / "tutorial-own-data.md"
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>\w+)\n(?P<body>.*?)\n```", re.DOTALL)
_SKIP = "<!-- tutorial: not run by the test"


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    skipped: bool


def doc_blocks() -> list[Block]:
    text = DOC.read_text(encoding="utf-8")
    return [
        Block(m["lang"], m["body"], m["before"].startswith(_SKIP)) for m in _BLOCK.finditer(text)
    ]


def test_the_doc_marks_what_is_not_run() -> None:
    blocks = doc_blocks()
    skipped = [b.body for b in blocks if b.skipped]
    assert skipped == ["source .venv/bin/activate", "dpgcn services down"]
    assert {b.lang for b in blocks} == {"bash", "python", "text"}
    assert "{" + "load_first}" not in DOC.read_text()  # every output block is filled in


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = (
        ["bash", "-euo", "pipefail", "-c", block.body]
        if block.lang == "bash"
        else [sys.executable, "-c", block.body]
    )
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def changes(out: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3][:1] in "+-" and fields[1][:1].isdigit():
            found[fields[0]] = fields[3]
    return found


def test_tutorial_runs_as_written(empty_graph: Driver, tmp_path: Path) -> None:
    from workers import runs

    work = tmp_path / "work"
    work.mkdir()
    env = os.environ.copy()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    capture = os.environ.get("DPGCN_TUTORIAL_CAPTURE")
    outputs: dict[str, str] = {}
    started = time.monotonic()
    try:
        for number, block in enumerate(doc_blocks()):
            if block.skipped or block.lang == "text":
                continue
            result = run_block(block, work, env)
            deadline = time.monotonic() + 60
            while "curl" in block.body and result.returncode == 0:
                # the API loads the new version's snapshot shortly after activation
                answer = json.loads(result.stdout)
                if answer.get("model_version") == runs.list_runs(1)[0]["run_id"]:
                    break
                assert time.monotonic() < deadline, result.stdout
                time.sleep(1)
                result = run_block(block, work, env)
            assert result.returncode == 0, f"{block.body}\n{result.stdout}\n{result.stderr}"
            outputs[block.body.splitlines()[0]] = result.stdout + result.stderr
            if capture:
                Path(capture).mkdir(parents=True, exist_ok=True)
                out = Path(capture) / f"{number:02d}.txt"
                out.write_text(f"$ {block.body}\n{result.stdout}{result.stderr}")
    finally:
        run_cli("services", "stop", "api", check=False)
        run_cli("services", "stop", "worker", check=False)
    assert time.monotonic() - started < 180

    first = changes(outputs["dpgcn load generic --path shop"])
    assert first["User"] == "+80" and first["Item"] == "+24" and first["Category"] == "+4"
    assert first["PURCHASED"].startswith("+") and first["PURCHASED"] != "+0"
    again = outputs["dpgcn load generic --path shop --delimiter ';'"]
    assert set(changes(again).values()) == {"+0"}, again
    assert (
        "the header holds ';'" in outputs["dpgcn load generic --path shop --delimiter ',' || true"]
    )
    assert "is active" in outputs["dpgcn train --epochs 8 --dim 16 --wait"]
    segments = outputs["dpgcn jobs --limit 1"]
    assert re.search(r"Running|Camping|Cycling|Swimming", segments), segments
    assert "category 200" not in segments

    # epoch milliseconds became 2024 dates; the codes became the names from categories.csv
    ts = empty_graph.execute_query(
        "MATCH ()-[r:PURCHASED]->() RETURN min(r.ts) AS a, max(r.ts) AS b"
    )
    low, high = ts.records[0]["a"], ts.records[0]["b"]
    assert 1717236000 < low <= high < 1735689600  # 2024-06-01 … 2025-01-01
    names = empty_graph.execute_query("MATCH (c:Category) RETURN c.id AS id, c.name AS name")
    assert {r["id"]: r["name"] for r in names.records} == {
        "200": "Running",
        "594": "Camping",
        "731": "Cycling",
        "812": "Swimming",
    }
