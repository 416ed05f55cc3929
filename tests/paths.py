"""Where the shared datasets are: ``$DPGCN_DATA_DIR``, else ``../shared/data`` beside the
checkout (as on developer machines and in CI). The data is read in place, never copied."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DPGCN_DATA_DIR", ROOT.parent / "shared" / "data"))
