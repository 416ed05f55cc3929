"""training.refresh: vectors for nodes created after training, from the served model directory
(no gradient step): a new item lands beside the items of its category, a new user beside the
items they clicked; known nodes keep their served vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_training_inductive import CONFIG, N_CAT, WARM_PER_CAT, write_planted_export

from training.data import ITEM, USER
from training.loop import NotInductiveError
from training.refresh import encode_nodes, refresh_blocker
from training.train import train_from_export

#: The leaf category the new user clicks in.
USER_CAT = 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """The planted export, a DP-GCN model directory trained on it, the items' categories."""
    root = tmp_path_factory.mktemp("refresh")
    export, item_cat, _ = write_planted_export(root / "export")
    train_from_export(export, root / "model", CONFIG)
    return export, root / "model", item_cat


def write_newer_export(source: Path, path: Path) -> tuple[list[str], np.ndarray]:
    """``source`` plus, per leaf category ``c``, a new item ``n<c>`` (category ``c``, two of
    its terms, no interaction), and a new user ``u-new`` who clicked five warm items of
    category :data:`USER_CAT`. Returns the new items' ids and their categories."""
    with np.load(source / "graph.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    n_items = len(arrays["Item.ids"])
    n_users = len(arrays["User.ids"])
    new_items = [f"n{c}" for c in range(N_CAT)]
    new_cat = np.arange(N_CAT)
    rows = n_items + np.arange(N_CAT)
    arrays["Item.ids"] = np.append(arrays["Item.ids"], new_items)
    arrays["User.ids"] = np.append(arrays["User.ids"], "u-new")
    ic = arrays["Item__IN_CATEGORY__Category.edge_index"]
    arrays["Item__IN_CATEGORY__Category.edge_index"] = np.concatenate(
        [ic, np.stack([rows, new_cat])], axis=1
    )
    it = arrays["Item__HAS_TERM__Term.edge_index"]
    terms = np.stack([np.repeat(rows, 2), np.repeat(new_cat * 3, 2) + np.tile([0, 1], N_CAT)])
    arrays["Item__HAS_TERM__Term.edge_index"] = np.concatenate([it, terms], axis=1)
    per_cat = n_items // N_CAT
    clicked = USER_CAT * per_cat + np.arange(5)  # warm items of USER_CAT
    ui = arrays["User__CLICKED__Item.edge_index"]
    arrays["User__CLICKED__Item.edge_index"] = np.concatenate(
        [ui, np.stack([np.full(5, n_users), clicked])], axis=1
    )
    times = arrays["User__CLICKED__Item.time"]
    arrays["User__CLICKED__Item.time"] = np.append(times, times.max() + 60.0 * np.arange(1, 6))
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "graph.npz", **arrays)  # type: ignore[arg-type]
    (path / "meta.json").write_text((source / "meta.json").read_text())
    return new_items, new_cat


def _served(model_dir: Path, label: str) -> tuple[list[str], np.ndarray]:
    with np.load(model_dir / "embeddings.npz") as npz:
        return npz[f"{label}.ids"].tolist(), npz[f"{label}.embedding"]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_new_item_lands_beside_its_category(
    trained: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    export, model_dir, item_cat = trained
    new_items, new_cat = write_newer_export(export, tmp_path / "newer")
    out = encode_nodes(model_dir, tmp_path / "newer")
    # Only the nodes the model was not trained on.
    assert set(out) == {ITEM, USER}
    assert sorted(out[ITEM].ids.tolist()) == new_items
    assert out[USER].ids.tolist() == ["u-new"]
    ids, served = _served(model_dir, ITEM)
    assert ids == [f"i{j}" for j in range(len(item_cat))]
    warm = np.tile(np.arange(len(item_cat) // N_CAT) < WARM_PER_CAT, N_CAT)
    centres = _unit(np.stack([_unit(served[warm & (item_cat == c)]).mean(0) for c in range(N_CAT)]))
    new = _unit(out[ITEM].vectors[np.argsort(out[ITEM].ids)])
    assert out[ITEM].vectors.dtype == np.float32 and np.isfinite(new).all()
    similarity = new @ centres.T  # [new item, category]
    # Each new item is nearest to its own category's centre, by a margin (a random vector is
    # nearest to one of 4 centres by chance: all 4 right has probability 1/256).
    assert (similarity.argmax(1) == new_cat).all()
    own = similarity[np.arange(N_CAT), new_cat]
    other = np.where(np.eye(N_CAT, dtype=bool), -np.inf, similarity).max(1)
    assert (own - other > 0.3).all(), similarity


def test_new_user_scores_the_category_they_clicked(
    trained: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    export, model_dir, item_cat = trained
    write_newer_export(export, tmp_path / "newer")
    out = encode_nodes(model_dir, tmp_path / "newer", {USER: ["u-new"]})
    assert set(out) == {USER}
    _, served = _served(model_dir, ITEM)
    scores = served @ out[USER].vectors[0]
    by_cat = [scores[item_cat == c].mean() for c in range(N_CAT)]
    assert int(np.argmax(by_cat)) == USER_CAT, by_cat


def test_known_nodes_keep_their_served_vectors(
    trained: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    export, model_dir, _ = trained
    write_newer_export(export, tmp_path / "newer")
    ids, served = _served(model_dir, ITEM)
    assert ids[:21:20] == ["i0", "i20"]
    out = encode_nodes(model_dir, tmp_path / "newer", {ITEM: ["i0", "i20", "gone"]})
    assert out[ITEM].ids.tolist() == ["i0", "i20"]  # an id absent from the export: left out
    # (the new nodes add a little to their categories' and terms' means)
    np.testing.assert_allclose(out[ITEM].vectors, served[[0, 20]], atol=0.05)
    # the same graph again: exactly what was served
    same = encode_nodes(model_dir, export, {ITEM: ["i0", "i20"]})
    np.testing.assert_allclose(same[ITEM].vectors, served[[0, 20]], atol=1e-5)


def test_models_without_node_keys_are_refused(
    trained: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    export, _, _ = trained
    model_dir = tmp_path / "lightgcn"
    config = CONFIG.replace({"model.name": "lightgcn", "optim.epochs": 1})
    train_from_export(export, model_dir, config)
    assert json.loads((model_dir / "train_config.json").read_text())["model"]["name"] == "lightgcn"
    reason = refresh_blocker(model_dir)
    assert reason is not None and "node_keys.npz" in reason
    with pytest.raises(NotInductiveError, match="node_keys"):
        encode_nodes(model_dir, export)
    assert refresh_blocker(tmp_path / "nothing") is not None
