"""What every Neo4j benchmark script shares: a state home and ports of its own
(``.state/bench``, bolt 47687, http 47474, redis 46379), so benchmarks never touch the demo's or
the tests' data. Import it before anything reads :mod:`dpgcn.settings`; the environment still
wins (``NEO4J_URI``/``REDIS_URL`` point a benchmark at external servers)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("DPGCN_HOME", str(ROOT / ".state" / "bench"))
os.environ.setdefault("NEO4J_BOLT_PORT", "47687")
os.environ.setdefault("NEO4J_HTTP_PORT", "47474")
os.environ.setdefault("REDIS_PORT", "46379")
