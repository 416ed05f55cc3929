"""Inductive node inputs of DP-GCN: side information, unknown ID vectors, ID dropout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.data import CATEGORY, ITEM, QUERY, USER, load_export
from training.dataset import SideBag, build_graph_data, make_side_bag
from training.loop import fit
from training.models.dpgcn import DPGCN
from training.models.node_embedding import NodeEmbedding
from training.protocols import ModelScorer
from training.splits import split_interactions

N_CAT = 4  # leaf categories, two per parent
WARM_PER_CAT, COLD_PER_CAT = 8, 3
USERS_PER_CAT = 20


def write_planted_export(path: Path, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """Users of group ``g`` click items of leaf category ``g`` (80%); each category has cold
    items with category and term links but no interaction at all. Returns the export, the
    items' categories and the users' groups."""
    rng = np.random.default_rng(seed)
    per_cat = WARM_PER_CAT + COLD_PER_CAT
    n_items, n_users = N_CAT * per_cat, N_CAT * USERS_PER_CAT
    item_cat = np.repeat(np.arange(N_CAT), per_cat)
    cold = np.tile(np.arange(per_cat) >= WARM_PER_CAT, N_CAT)
    user_group = np.repeat(np.arange(N_CAT), USERS_PER_CAT)
    warm_items = np.flatnonzero(~cold)
    rows, cols = [], []
    for u in range(n_users):
        same = warm_items[item_cat[warm_items] == user_group[u]]
        picks = np.where(rng.random(10) < 0.8, rng.choice(same, 10), rng.choice(warm_items, 10))
        rows.extend([u] * 10)
        cols.extend(picks.tolist())
    times = 1.7e9 + np.arange(len(rows)) * 60.0
    # Terms: 3 per category; each item has two terms of its category.
    terms_i = np.repeat(np.arange(n_items), 2)
    terms_t = item_cat[terms_i] * 3 + rng.integers(0, 3, len(terms_i))
    n_cats = N_CAT + 2  # leaves 0..3, parents 4..5
    arrays = {
        "User.ids": np.array([f"u{u}" for u in range(n_users)]),
        "Item.ids": np.array([f"i{j}" for j in range(n_items)]),
        "Term.ids": np.array([f"t{t}" for t in range(3 * N_CAT)]),
        "Category.ids": np.array([f"c{c}" for c in range(n_cats)]),
        "User__CLICKED__Item.edge_index": np.array([rows, cols], dtype=np.int64),
        "User__CLICKED__Item.time": times,
        "Item__IN_CATEGORY__Category.edge_index": np.stack([np.arange(n_items), item_cat]),
        "Item__HAS_TERM__Term.edge_index": np.stack([terms_i, terms_t]),
        "Category__SUBCATEGORY_OF__Category.edge_index": np.array(
            [np.arange(N_CAT), N_CAT + np.arange(N_CAT) // 2]
        ),
    }
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "graph.npz", **arrays)  # type: ignore[arg-type]
    meta = {"format": 1, "node_types": {}, "edge_types": [], "filters": {"scope": "all"}}
    (path / "meta.json").write_text(json.dumps(meta))
    return path, item_cat, user_group


CONFIG = TrainConfig().replace(
    {
        "model.name": "dpgcn_no_ddpg",
        "model.dim": 16,
        "optim.epochs": 12,
        "optim.patience": 0,
        "optim.batch_size": 128,
        "model.mlp_hidden": (16,),
        "model.history_len": 5,
        "device": "cpu",
    }
)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    return write_planted_export(tmp_path_factory.mktemp("planted") / "export")


def test_side_bags_hold_category_path_and_terms(
    planted: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    path, item_cat, _ = planted
    split = split_interactions(load_export(path), 0, CONFIG.policy.reward_of())
    data = build_graph_data(split, torch.device("cpu"), 5)
    bag = data.side[ITEM]
    assert set(bag.groups) == {"category", "term"}
    n_items = len(item_cat)
    ends = torch.cat([bag.offsets[1:], torch.tensor([len(bag.tokens)])])
    for j in (0, n_items - 1):  # a warm and a cold item
        toks = bag.tokens[bag.offsets[j] : ends[j]].tolist()
        w = bag.weights[bag.offsets[j] : ends[j]]
        cats = sorted(t for t in toks if t < bag.groups["term"])
        assert cats == [int(item_cat[j]), N_CAT + int(item_cat[j]) // 2]  # leaf + parent
        assert float(w.sum()) == pytest.approx(2.0)  # two groups, each a mean
    trained = data.trained[ITEM].numpy()
    assert trained.sum() == N_CAT * WARM_PER_CAT and not trained[-1]
    assert data.trained[USER].all()


def test_cold_item_ranks_with_its_category(
    planted: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    path, item_cat, user_group = planted
    split = split_interactions(load_export(path), 0, CONFIG.policy.reward_of())
    result = fit(split, CONFIG)
    model = result.model
    assert isinstance(model, DPGCN) and model.inductive
    scorer = ModelScorer(model, torch.device("cpu"))
    trained = result.data.trained[ITEM].numpy()
    cold = np.flatnonzero(~trained)
    users = np.arange(len(user_group))
    scores = scorer.all_items(users)
    # For each user, a cold item of the liked category outranks cold items of the others.
    liked = item_cat[cold][None, :] == user_group[:, None]
    s = scores[:, cold]
    pos = np.where(liked, s, np.nan)
    neg = np.where(~liked, s, np.nan)
    wins = (pos[:, :, None] > neg[:, None, :]).sum() / (liked.sum(1) * (~liked).sum(1)).sum()
    assert wins > 0.9
    # ... and its vector is closer to the warm items of its category than to the others'.
    enc = model.encode()
    item = torch.nn.functional.normalize(enc.item.detach(), dim=1).numpy()
    warm = np.flatnonzero(trained)
    centres = np.stack([item[warm[item_cat[warm] == c]].mean(0) for c in range(N_CAT)])
    nearest = (item[cold] @ centres.T).argmax(1)
    assert (nearest == item_cat[cold]).mean() >= 0.9


def _side_embedding(id_dropout: float, trained: torch.Tensor) -> NodeEmbedding:
    bag: SideBag = make_side_bag(
        len(trained),
        [("category", np.arange(len(trained)), np.arange(len(trained)) % 3, 3)],
    )
    torch.manual_seed(0)
    return NodeEmbedding(
        {ITEM: len(trained), CATEGORY: 3},
        8,
        trained={ITEM: trained},
        side={ITEM: bag},
        id_dropout=id_dropout,
    )


def test_untrained_nodes_use_the_unknown_vector() -> None:
    trained = torch.tensor([True, True, False, False, True, False])
    emb = _side_embedding(0.0, trained)
    with torch.no_grad():
        emb.unknown[ITEM].fill_(0.5)
    emb.eval()
    x = emb()[ITEM]
    table = cast(torch.nn.Embedding, emb.tables[ITEM]).weight
    side = x - torch.where(trained[:, None], table, torch.full_like(table, 0.5))
    # untrained rows: unknown + side; their own (random, untrained) ID rows play no part
    with torch.no_grad():
        table[~trained] = 100.0
    assert torch.allclose(emb()[ITEM], x)
    # the side part is shared by items of one category token
    assert torch.allclose(side[0], side[3]) and not torch.allclose(side[0], side[1])


def test_id_dropout_only_in_training_mode() -> None:
    trained = torch.ones(200, dtype=torch.bool)
    emb = _side_embedding(0.5, trained)
    emb.eval()
    a, b = emb()[ITEM], emb()[ITEM]
    assert torch.equal(a, b)
    emb.train()
    c = emb()[ITEM]
    dropped = ~torch.isclose(c, a).all(1)
    assert 0.3 < dropped.float().mean() < 0.7
    assert not torch.equal(c, emb()[ITEM])  # re-drawn at every call
    with pytest.raises(ValueError, match="id_dropout"):
        _side_embedding(1.0, trained)


def test_same_seed_same_training_output(planted: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, _, _ = planted
    split = split_interactions(load_export(path), 0, CONFIG.policy.reward_of())
    config = CONFIG.replace({"optim.epochs": 2})
    runs = []
    for _ in range(2):
        result = fit(split, config)
        result.model.eval()
        with torch.no_grad():
            enc = result.model.encode()
        runs.append((enc.user.clone(), enc.item.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_dpgcn_without_side_features(planted: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, _, _ = planted
    split = split_interactions(load_export(path), 0, CONFIG.policy.reward_of())
    data = build_graph_data(split, torch.device("cpu"), 5)
    model = DPGCN(data, 8, 2, use_side_features=False, id_dropout=0.0)
    assert not model.inductive and len(model.embedding.projections) == 0
    assert model.embedding.trained_mask(ITEM) is not None
    assert model.embedding.trained_mask(QUERY) is None  # no queries in this export
    assert model.encode().item.shape == (data.n_items, 8)


def _permuted_export_with_new_item(source: Path, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The planted export with items and terms in reverse row order, plus one new item
    (category 1, two terms of category 1, no interaction) as the last item row. Returns the
    new rows of the old items and of the old terms."""
    with np.load(source / "graph.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    n_items, n_terms = len(arrays["Item.ids"]), len(arrays["Term.ids"])
    item_row = np.arange(n_items)[::-1].copy()  # old row -> new row
    term_row = np.arange(n_terms)[::-1].copy()
    arrays["Item.ids"] = np.append(arrays["Item.ids"][::-1], "i-new")
    arrays["Term.ids"] = arrays["Term.ids"][::-1]
    ui = arrays["User__CLICKED__Item.edge_index"]
    arrays["User__CLICKED__Item.edge_index"] = np.stack([ui[0], item_row[ui[1]]])
    ic = arrays["Item__IN_CATEGORY__Category.edge_index"]
    arrays["Item__IN_CATEGORY__Category.edge_index"] = np.concatenate(
        [np.stack([item_row[ic[0]], ic[1]]), [[n_items], [1]]], axis=1
    )
    it = arrays["Item__HAS_TERM__Term.edge_index"]
    arrays["Item__HAS_TERM__Term.edge_index"] = np.concatenate(
        [np.stack([item_row[it[0]], term_row[it[1]]]), [[n_items, n_items], term_row[[3, 4]]]],
        axis=1,
    )
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "graph.npz", **arrays)  # type: ignore[arg-type]
    (path / "meta.json").write_text((source / "meta.json").read_text())
    return item_row, term_row


def test_transfer_state_scores_a_new_item_from_its_links(
    planted: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    from training.models import build_model
    from training.models.dpgcn import node_keys, transfer_state

    path, item_cat, user_group = planted
    config = CONFIG.replace({"optim.epochs": 6})
    result = fit(split_interactions(load_export(path), 0, CONFIG.policy.reward_of()), config)
    model = result.model
    assert isinstance(model, DPGCN)
    model.eval()
    with torch.no_grad():
        before = model.encode()
    item_row, _ = _permuted_export_with_new_item(path, tmp_path / "new")
    new_split = split_interactions(load_export(tmp_path / "new"), 0, CONFIG.policy.reward_of())
    new_data = build_graph_data(new_split, torch.device("cpu"), 5)
    served = build_model(config.model.name, new_data, config)
    state = transfer_state(model.state_dict(), node_keys(result.data), node_keys(new_data))
    served.load_state_dict(state)
    served.eval()
    with torch.no_grad():
        after = served.encode()
    assert isinstance(after, type(before))
    new = len(item_cat)  # the new item's row
    assert not state["embedding.trained_Item"][new]
    old_mask = model.embedding.trained_mask(ITEM)
    assert old_mask is not None
    assert torch.equal(state["embedding.trained_Item"][item_row], old_mask)
    # Known nodes keep their vectors (the new item only adds a little to its category's and
    # terms' means), whatever their rows in the new export.
    assert torch.allclose(after.user, before.user, atol=1e-4)
    assert torch.allclose(after.item[item_row], before.item, atol=0.01)
    # The new item scores highest with the users of its category, as its category's items do.
    scores = (after.user @ after.item[new]).numpy()
    assert scores[user_group == 1].mean() > max(
        scores[user_group == g].mean() for g in range(N_CAT) if g != 1
    )
