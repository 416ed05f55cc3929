"""The rows of the query-conditioned task (:mod:`training.query_task`): who searched what,
which item they clicked, and the ``LED_TO`` count to take out per row. Shared by the task and
the smoothed scorer (:mod:`training.query_smoothing`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatMatrix = NDArray[np.float64]


@dataclass
class QueryRows:
    """Rows of the task: who searched what, and which item they clicked."""

    user: IntArray
    query: IntArray
    term_indptr: IntArray
    term_index: IntArray
    item: IntArray
    #: Per row, ``LED_TO`` count to take out at ``(query, item)`` (validation rows: 1).
    led_correction: NDArray[np.float64]
    #: Per row, epoch seconds of the search (``NaN`` unknown); ``None`` when no row has one.
    time: NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.user)

    def term_matrix(self, n_terms: int) -> FloatMatrix:
        out = np.zeros((len(self), max(n_terms, 1)), np.float64)
        rows = np.repeat(np.arange(len(self)), np.diff(self.term_indptr))
        out[rows, self.term_index] = 1.0
        return out[:, :n_terms]
