"""Run code in a fresh interpreter from the repository root (import checks: what a module
loads when nothing else has been imported)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(code: str, timeout: float = 300) -> str:
    """The standard output of ``python -c code`` (dedented); fails the test on an error."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
