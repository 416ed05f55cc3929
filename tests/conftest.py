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
