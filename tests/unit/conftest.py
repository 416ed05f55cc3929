"""Fixtures shared by the unit tests of several packages."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def submitted_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The run configs ``dpgcn train`` hands to the worker chain, captured instead of sent.

    The run id is fixed to ``r1``; nothing reaches Redis or Celery.
    """
    from workers import pipeline, runs

    submitted: list[dict[str, Any]] = []
    monkeypatch.setattr(pipeline, "submit_pipeline", lambda run_id, cfg: submitted.append(cfg))
    monkeypatch.setattr(runs, "new_run_id", lambda: "r1")
    return submitted
