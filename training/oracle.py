"""The planted-model oracle of a synthetic export (``oracle.npz`` next to ``graph.npz``).

A synthetic graph is drawn from a known preference model (``graphstore.sources.synthetic``):
:math:`s(u, i) = \\langle z_u, w_i \\rangle + \\beta \\log \\mathrm{pop}_i`, and each event
picks an item from :math:`\\mathrm{softmax}(s / \\tau)`. Ranking items by :math:`s` is the best
any model can do in expectation, so the oracle's metrics, computed by the *same* protocols on
the *same* splits as every model, are the ceiling the models are measured against
(``<metric>_vs_oracle`` = model / oracle, per seed).

``oracle.npz`` holds the preference model as a dot product (written by ``dpgcn evaluate
--dataset synthetic``; see ``docs/model.md``):

========================  ===================  ===============================================
key                       dtype, shape         meaning
========================  ===================  ===============================================
``User.ids``              ``<U… [U]``          user ids (any order; matched to the export's)
``User.vector``           ``float32 [U, d+1]`` :math:`[z_u, 1]`
``Item.ids``              ``<U… [I]``          item ids
``Item.vector``           ``float32 [I, d+1]`` :math:`[w_i, \\beta \\log \\mathrm{pop}_i]`
========================  ===================  ===============================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from graphstore.export_format import ORACLE_FILE, read_oracle
from training.data import ITEM, USER, ExportGraph, read_contract
from training.errors import ExportFormatError
from training.protocols import EmbeddingScorer

#: Name of the oracle's row in results (not a registry model: nothing is trained).
ORACLE = "oracle"


def _align(
    ids: NDArray[np.str_], vectors: np.ndarray, wanted: NDArray[np.str_], what: str
) -> np.ndarray:
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ExportFormatError(f"{ORACLE_FILE}: {what}.vector does not match {what}.ids")
    row = {str(k): n for n, k in enumerate(ids.tolist())}
    missing = [str(k) for k in wanted.tolist() if str(k) not in row]
    if missing:
        raise ExportFormatError(
            f"{ORACLE_FILE} has no {what} vector for {len(missing)} exported id(s), "
            f"e.g. {missing[0]!r}"
        )
    return np.asarray(vectors[[row[str(k)] for k in wanted.tolist()]], dtype=np.float32)


def load_oracle(export_dir: Path, graph: ExportGraph) -> EmbeddingScorer | None:
    """The oracle of ``export_dir`` as a scorer in the export's row order, or ``None`` when
    the export has no ``oracle.npz``."""
    path = Path(export_dir) / ORACLE_FILE
    arrays = read_contract(read_oracle, export_dir)
    if arrays is None:
        return None
    user = _align(arrays["User.ids"], arrays["User.vector"], graph.ids[USER], USER)
    item = _align(arrays["Item.ids"], arrays["Item.vector"], graph.ids[ITEM], ITEM)
    if user.shape[1] != item.shape[1]:
        raise ExportFormatError(f"{path}: user and item vectors differ in size")
    return EmbeddingScorer(user, item, None)
