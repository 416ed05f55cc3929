"""Erasure reaches the training artifacts: a real worker scrubs the erased user out of the
run's files on disk, and the CLI does the same on demand."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch
from neo4j import Driver

from graphstore import users
from tests.integration.conftest import run_cli
from workers import privacy, runs

pytestmark = pytest.mark.integration


def _user_ids(path: Any) -> list[str]:
    with np.load(path, allow_pickle=False) as z:
        return [str(u) for u in z["User.ids"]]


def test_a_real_worker_scrubs_erased_users_from_the_run(
    driver: Driver, trained_model: str, worker: Any
) -> None:
    run = runs.run_dir(trained_model)
    ids = _user_ids(run / "model" / "embeddings.npz")
    victim, bystander = ids[0], ids[1]
    with np.load(run / "model" / "embeddings.npz") as z:
        bystander_vec = z["User.embedding"][1].copy()
    users.delete_user(driver, victim)

    result = privacy.scrub_erased_artifacts.delay().get(timeout=180)
    assert result["users"] >= 1 and result["scrubbed_runs"] >= 1

    for name in ("export/graph.npz", "model/embeddings.npz", "model/user_features.npz"):
        remaining = _user_ids(run / name)
        assert victim not in remaining and bystander in remaining, name
    with np.load(run / "model" / "embeddings.npz") as z:
        assert not z["User.embedding"][0].any()
        assert np.array_equal(z["User.embedding"][1], bystander_vec)
    with np.load(run / "export" / "graph.npz") as z:
        for key in z.files:
            if key.startswith("User__") and key.endswith(".edge_index"):
                assert not (z[key][0] == 0).any(), key
    state = torch.load(run / "model" / "model.pt", weights_only=True)["state_dict"]
    assert not state["embedding.tables.User.weight"][0].any()

    # nothing new erased: the next round reads no run again
    again = privacy.scrub_erased_artifacts.delay().get(timeout=120)
    assert again["runs"] == 0 and again["users"] == 0

    # a second erasure is picked up on demand by the CLI
    users.delete_user(driver, bystander)
    out = run_cli("privacy", "scrub").stdout
    removed = re.search(r"removed (\d+) user row\(s\) from (\d+) run", out)
    assert removed and int(removed[1]) >= 1 and int(removed[2]) >= 1, out
    assert bystander not in _user_ids(run / "model" / "embeddings.npz")
