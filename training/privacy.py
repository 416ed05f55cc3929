"""Erasure in training artifacts: remove erased users from a run's files on disk.

A run directory (``<artifacts>/runs/<run_id>/``) holds the export (``export/graph.npz``), the
trained model (``model/embeddings.npz``, ``user_features.npz``, ``model.pt``, ``policy.pt``)
and the online learner's state (``online/state.pt``). All of them are row-aligned with the
export's ``User.ids``. :func:`scrub_run` rewrites every file that holds a row of an erased
user, keeping shapes (so the files still load together):

* the user's id becomes ``""``; features, embeddings and the model's user-embedding row
  become zeros; the recent-item history row becomes ``-1`` (empty);
* the user's interactions (every ``User__*`` edge leaving the row) are removed from the
  export, so a resumed run never trains on them.

Each file is replaced atomically (temporary file + rename). Which ids are erased is decided by
a predicate, so callers can match on salted hashes without ever holding the plain id list.
The DDPG replay buffer in ``online/state.pt`` stores anonymous transitions (state vectors, no
user ids); it is bounded and overwritten first-in first-out, and is left as it is.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from training.errors import ModelDirError

logger = logging.getLogger(__name__)

USER_IDS = "User.ids"
#: Files row-aligned with the export's users, relative to the run directory.
NPZ_FILES = ("export/graph.npz", "model/embeddings.npz", "model/user_features.npz")
PT_FILES = ("model/model.pt", "model/policy.pt", "online/state.pt")


@dataclass
class ScrubReport:
    """What :func:`scrub_run` changed in one run directory."""

    run_dir: str
    users: int = 0
    edges: int = 0
    files: list[str] = field(default_factory=list)


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.scrub")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _user_ids(run_dir: Path) -> NDArray[np.str_] | None:
    for name in NPZ_FILES:
        path = run_dir / name
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                if USER_IDS in z.files:
                    return np.asarray(z[USER_IDS]).astype(str)
    return None


def _scrub_npz(path: Path, rows: NDArray[np.int64], n_users: int) -> int:
    """Blank ``rows`` in one npz file; returns the number of removed edges."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    removed = 0
    for key in list(arrays):
        value = arrays[key]
        if key == USER_IDS:
            value = value.copy()
            value[rows] = ""
            arrays[key] = value
        elif key.startswith("User.") and value.ndim >= 1 and value.shape[0] == n_users:
            value = value.copy()
            value[rows] = 0
            arrays[key] = value
    for key in [k for k in arrays if k.startswith("User__") and k.endswith(".edge_index")]:
        prefix = key[: -len(".edge_index")]
        index = arrays[key]
        keep = ~np.isin(index[0], rows)
        if keep.all():
            continue
        removed += int((~keep).sum())
        n_edges = index.shape[1]
        for other in [k for k in arrays if k.rsplit(".", 1)[0] == prefix]:
            value = arrays[other]
            arrays[other] = value[..., keep] if value.shape[-1] == n_edges else value

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]

    _replace(path, save)
    return removed


#: User-embedding tables in a ``model.pt`` state dict: a per-type table (DP-GCN and the other
#: heterogeneous models), or one table over users then items (LightGCN, GCN).
USER_TABLE = "tables.User.weight"
JOINT_TABLE = "embedding.weight"


def _scrub_state_dict(state: dict[str, Any], rows: torch.Tensor, n_users: int) -> None:
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or value.ndim != 2:
            continue
        per_type = key.endswith(USER_TABLE) and value.shape[0] == n_users
        joint = key == JOINT_TABLE and value.shape[0] >= n_users
        if per_type or joint:
            value[rows] = 0


def _scrub_history(payload: dict[str, Any], rows: torch.Tensor, n_users: int) -> None:
    history = payload.get("user_history")
    if isinstance(history, torch.Tensor) and history.ndim == 2:
        if history.shape[0] != n_users:
            raise ModelDirError(f"user_history has {history.shape[0]} rows, the run {n_users}")
        history[rows] = -1


def _load_pt(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as e:
        raise ModelDirError(f"cannot read {path}: {e}") from e
    if not isinstance(payload, dict):
        raise ModelDirError(f"{path} does not hold a dict")
    return payload


def _scrub_pt(path: Path, rows: NDArray[np.int64], n_users: int) -> None:
    payload = _load_pt(path)
    index = torch.as_tensor(rows, dtype=torch.long)
    state = payload.get("state_dict")
    if isinstance(state, dict):
        _scrub_state_dict(state, index, n_users)
    _scrub_history(payload, index, n_users)
    nested = payload.get("policy")  # online/state.pt keeps a whole policy.pt as bytes
    if isinstance(nested, torch.Tensor) and nested.dtype == torch.uint8:
        inner = torch.load(
            io.BytesIO(nested.numpy().tobytes()), map_location="cpu", weights_only=True
        )
        _scrub_history(inner, index, n_users)
        buf = io.BytesIO()
        torch.save(inner, buf)
        payload["policy"] = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
    _replace(path, lambda tmp: torch.save(payload, tmp))


def scrub_run(run_dir: Path, erased: Callable[[str], bool]) -> ScrubReport:
    """Remove every user for whom ``erased(user_id)`` holds from the run's files."""
    run_dir = Path(run_dir)
    report = ScrubReport(str(run_dir))
    ids = _user_ids(run_dir)
    if ids is None:
        return report
    rows = np.flatnonzero([bool(u) and erased(u) for u in ids.tolist()]).astype(np.int64)
    if len(rows) == 0:
        return report
    report.users = len(rows)
    for name in NPZ_FILES:  # check alignment before rewriting anything
        if (run_dir / name).is_file():
            with np.load(run_dir / name, allow_pickle=False) as z:
                n = len(z[USER_IDS]) if USER_IDS in z.files else len(ids)
            if n != len(ids):
                raise ModelDirError(f"{run_dir / name}: {n} users, the run has {len(ids)}")
    for name in NPZ_FILES:
        if (run_dir / name).is_file():
            report.edges += _scrub_npz(run_dir / name, rows, len(ids))
            report.files.append(name)
    for name in PT_FILES:
        if (run_dir / name).is_file():
            _scrub_pt(run_dir / name, rows, len(ids))
            report.files.append(name)
    logger.info(
        "scrubbed %d erased user(s), %d edge(s) from %d file(s) of %s",
        report.users,
        report.edges,
        len(report.files),
        run_dir.name,
    )
    return report


def policy_without_history(blob: bytes) -> bytes:
    """A ``policy.pt``'s bytes without the per-user ``user_history`` (the copy stored in the
    graph: serving reads recent items from the graph, so per-user rows need not live there)."""
    try:
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as e:
        raise ModelDirError(f"cannot read policy bytes: {e}") from e
    if not isinstance(payload, dict) or "user_history" not in payload:
        return blob
    payload.pop("user_history")
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()
