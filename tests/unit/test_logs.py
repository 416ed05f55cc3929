"""The log supervisor: every line stamped, the file rotated by size, the exit status kept."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from dpgcn.logs import supervise

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def test_supervise_stamps_rotates_and_returns_the_status(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "app.log"
    script = "import sys\nfor i in range(200): print('line', i)\nprint('{\"ts\": 1}')\nsys.exit(3)"
    code = supervise([sys.executable, "-c", script], log, max_bytes=2000, backups=2)
    assert code == 3
    files = sorted(p.name for p in log.parent.iterdir())
    assert files == ["app.log", "app.log.1", "app.log.2"]  # rotated, two old files kept
    assert all(p.stat().st_size <= 2000 for p in log.parent.iterdir())
    lines = log.read_text().splitlines()
    assert lines[-1].endswith("exited with status 3")
    assert '{"ts": 1}' in lines  # JSON lines keep their own time field
    assert all(STAMP.match(line) for line in lines if not line.startswith("{"))
    assert "line 199" in log.read_text()
