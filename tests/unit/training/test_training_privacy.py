"""scrub_run: erased users leave every file of a run directory, and the files still load."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.data import load_export
from training.errors import ModelDirError
from training.inference import Recommender, load_policy_adjuster_bytes
from training.online import FeedbackEvent, OnlineLearner
from training.privacy import policy_without_history, scrub_run
from training.train import load_checkpoint, train_from_export

ERASED = ("u3", "u17")


@pytest.fixture(scope="module")
def trained_run(
    tmp_path_factory: pytest.TempPathFactory, export_dir: Path, tiny_config: TrainConfig
) -> Path:
    """A run directory like the pipeline's: export/, model/ and online/state.pt."""
    run = tmp_path_factory.mktemp("runs") / "v1"
    shutil.copytree(export_dir, run / "export")
    cfg = tiny_config.replace(
        {"optim.epochs": 1, "optim.patience": 0, "policy.steps": 3, "policy.env_batch": 16}
    )
    train_from_export(run / "export", run / "model", cfg)
    learner = OnlineLearner.from_model_dir(run / "model")
    items = learner.item_ids.tolist()
    learner.update(
        [FeedbackEvent(u, "click", items[k], 1.0e9 + k) for k, u in enumerate(("u3", "u4"))]
    )
    learner.save_state(run / "online" / "state.pt")
    return run


@pytest.fixture()
def run(trained_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "v1"
    shutil.copytree(trained_run, copy)
    return copy


def _rows(run: Path) -> np.ndarray:
    with np.load(run / "export" / "graph.npz") as z:
        ids = z["User.ids"].tolist()
    return np.array([ids.index(u) for u in ERASED])


def test_erased_users_leave_every_file(run: Path, trained_run: Path) -> None:
    rows = _rows(run)
    before = load_export(run / "export")
    report = scrub_run(run, lambda u: u in ERASED)
    assert report.users == 2 and report.edges > 0
    assert set(report.files) == {
        "export/graph.npz",
        "model/embeddings.npz",
        "model/user_features.npz",
        "model/model.pt",
        "model/policy.pt",
        "online/state.pt",
    }
    after = load_export(run / "export")
    assert len(after.ids["User"]) == len(before.ids["User"])  # shapes kept
    assert not set(ERASED) & set(after.ids["User"].tolist())
    assert (after.x["User"][rows] == 0).all()
    for et, edges in after.edges.items():
        if et[0] == "User":
            assert not np.isin(edges.index[0], rows).any()
            kept = before.edges[et].index[:, ~np.isin(before.edges[et].index[0], rows)]
            assert np.array_equal(edges.index, kept)  # other users' edges untouched
    removed = sum(
        int(np.isin(e.index[0], rows).sum()) for et, e in before.edges.items() if et[0] == "User"
    )
    assert report.edges == removed
    with np.load(run / "model" / "embeddings.npz") as z:
        assert not set(ERASED) & set(z["User.ids"].tolist())
        assert (z["User.embedding"][rows] == 0).all()
        assert np.abs(z["User.embedding"]).sum(axis=1).astype(bool).sum() == len(z["User.ids"]) - 2
    _, state = load_checkpoint(run / "model" / "model.pt")
    _, old_state = load_checkpoint(trained_run / "model" / "model.pt")
    table = state["embedding.tables.User.weight"]
    assert (table[rows] == 0).all()
    others = np.setdiff1d(np.arange(table.shape[0]), rows)
    assert torch.equal(table[others], old_state["embedding.tables.User.weight"][others])
    policy = torch.load(run / "model" / "policy.pt", weights_only=True)
    assert (policy["user_history"][rows] == -1).all()
    # everything still loads together
    Recommender.load(run / "model")
    learner = OnlineLearner.from_model_dir(run / "model", run / "online" / "state.pt")
    assert (learner.user_history[rows] == -1).all()


def test_nothing_to_erase_changes_nothing(run: Path) -> None:
    stamp = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    report = scrub_run(run, lambda u: u == "nobody")
    assert report.users == 0 and report.files == []
    assert stamp == {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}


def test_scrubbing_twice_is_idempotent(run: Path) -> None:
    scrub_run(run, lambda u: u in ERASED)
    assert scrub_run(run, lambda u: u in ERASED).users == 0


def test_misaligned_files_are_refused(run: Path) -> None:
    with np.load(run / "model" / "user_features.npz") as z:
        arrays = dict(z)
    arrays["User.ids"] = arrays["User.ids"][:-1]
    arrays["User.x"] = arrays["User.x"][:-1]
    np.savez(run / "model" / "user_features.npz", **arrays)
    graph = (run / "export" / "graph.npz").read_bytes()
    with pytest.raises(ModelDirError, match="users, the run has"):
        scrub_run(run, lambda u: u in ERASED)
    assert (run / "export" / "graph.npz").read_bytes() == graph  # nothing half-written


def test_policy_copy_for_the_graph_has_no_user_rows(trained_run: Path) -> None:
    blob = (trained_run / "model" / "policy.pt").read_bytes()
    assert "user_history" in torch.load(io.BytesIO(blob), weights_only=True)
    stripped = policy_without_history(blob)
    payload = torch.load(io.BytesIO(stripped), weights_only=True)
    assert "user_history" not in payload and "actor" in payload
    assert load_policy_adjuster_bytes(stripped, with_history=False).actor is not None
    assert policy_without_history(stripped) == stripped
