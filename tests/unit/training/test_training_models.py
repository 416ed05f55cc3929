"""Every registry model on a tiny random graph: output shapes and gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from export_factory import write_random_export

from training.config import TrainConfig
from training.data import load_export
from training.dataset import GraphData, build_graph_data
from training.errors import ConfigError
from training.models import MODEL_REGISTRY, build_model
from training.models.base import DotEncoding
from training.splits import split_interactions


def _pairs(data: GraphData, n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (
        torch.randint(0, data.n_users, (n,), generator=g),
        torch.randint(0, data.n_items, (n,), generator=g),
    )


@pytest.mark.parametrize("name", list(MODEL_REGISTRY))
def test_shapes_and_gradients(name: str, data: GraphData, tiny_config: TrainConfig) -> None:
    torch.manual_seed(0)
    model = build_model(name, data, tiny_config)
    model.fit_statistics(data)
    model.eval()  # no dropout: pairwise and all-item scores must agree
    users, items = _pairs(data)
    enc = model.encode()
    logits = model.score(enc, users, items)
    assert logits.shape == (len(users),)
    assert torch.isfinite(logits).all()
    all_scores = model.score_all(enc, users[:3])
    assert all_scores.shape == (3, data.n_items)
    # score_all agrees with pairwise scoring
    assert torch.allclose(all_scores[torch.arange(3), items[:3]], logits[:3], atol=1e-4)
    q = model.score_queries(enc, users, torch.zeros_like(users))
    assert q is None or q.shape == (len(users),)
    params = [p for p in model.parameters() if p.requires_grad]
    if not model.trainable:
        assert not params
        return
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.randint(0, 2, logits.shape).float()
    )
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    assert grads, f"{name}: no parameter received a gradient"
    assert any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", ["dpgcn", "dgcn", "gcn", "lightgcn"])
def test_dot_product_models_export_vectors(
    name: str, data: GraphData, tiny_config: TrainConfig
) -> None:
    model = build_model(name, data, tiny_config)
    enc = model.dot_encoding(model.encode())
    assert isinstance(enc, DotEncoding)
    assert enc.user.shape == (data.n_users, tiny_config.model.dim)
    assert enc.item.shape == (data.n_items, tiny_config.model.dim)
    if name.startswith("d"):
        assert enc.query is not None and enc.query.shape == (data.n_queries, tiny_config.model.dim)


def test_dpgcn_uses_graph_and_features(data: GraphData, tiny_config: TrainConfig) -> None:
    torch.manual_seed(0)
    model = build_model("dpgcn", data, tiny_config)
    model.eval()
    base = model.encode().user.detach().clone()
    data.user_x.add_(1.0)  # changing static features changes the fused user vectors
    try:
        changed = model.encode().user.detach()
    finally:
        data.user_x.sub_(1.0)
    assert not torch.allclose(base, changed)
    no_fusion = build_model("dgcn", data, tiny_config)
    assert no_fusion.fusion is None  # type: ignore[attr-defined]


def test_models_cope_with_missing_types(tmp_path: Path, tiny_config: TrainConfig) -> None:
    d = write_random_export(
        tmp_path / "min",
        n_queries=0,
        n_terms=0,
        n_categories=0,
        relations=("User__PURCHASED__Item",),
        with_features=False,
    )
    split = split_interactions(load_export(d), 0, {})
    data = build_graph_data(split, torch.device("cpu"), 5)
    users, items = _pairs(data, 6)
    for name in MODEL_REGISTRY:
        model = build_model(name, data, tiny_config)
        model.fit_statistics(data)
        assert model.score(model.encode(), users, items).shape == (6,)


def test_unknown_model(data: GraphData, tiny_config: TrainConfig) -> None:
    with pytest.raises(ConfigError):
        build_model("nope", data, tiny_config)


def test_word2vec_term_vectors_group_cooccurring_terms(data: GraphData) -> None:
    from training.word2vec import cooccurrence_pairs, term_vectors

    pairs = cooccurrence_pairs(data)
    assert pairs.shape[0] == 2 and pairs.shape[1] > 0 and (pairs[0] != pairs[1]).all()
    vecs = term_vectors(data, 8, seed=0, epochs=30)
    assert vecs is not None and vecs["Term"].shape == (data.num_nodes["Term"], 8)
    v = torch.nn.functional.normalize(vecs["Term"], dim=1)
    sim = v @ v.t()
    seen = set(zip(pairs[0].tolist(), pairs[1].tolist(), strict=True))
    together = torch.tensor([sim[a, b] for a, b in seen]).mean()
    n = sim.shape[0]
    apart = torch.tensor(
        [sim[a, b] for a in range(n) for b in range(n) if a != b and (a, b) not in seen]
    ).mean()
    assert together > apart
    model = build_model(
        "dpgcn",
        data,
        TrainConfig().replace(
            {"model.dim": 8, "model.dpgcn.word2vec_terms": True, "model.mlp_hidden": (8,)}
        ),
    )
    default = term_vectors(data, 8, seed=0)
    assert default is not None
    table = model.embedding.tables["Term"]  # type: ignore[union-attr,index]
    assert torch.allclose(table.weight, default["Term"], atol=1e-5)


@pytest.mark.parametrize("name", ["dpgcn", "lightgcn", "gcn"])
def test_use_graph_switches_propagation(
    name: str, data: GraphData, tiny_config: TrainConfig
) -> None:
    """Serving vectors propagate over the complete graph; switching back restores them."""
    torch.manual_seed(0)
    model = build_model(name, data, tiny_config)
    model.eval()
    before = model.encode().user.detach().clone()
    full_split = split_interactions(data.split.graph, 0, tiny_config.policy.reward_of(), 2**62)
    assert len(full_split.val) == 0
    model.use_graph(build_graph_data(full_split, torch.device("cpu"), 5))
    full = model.encode().user.detach().clone()
    model.use_graph(data)
    again = model.encode().user.detach()
    held_out_users = torch.as_tensor(data.split.test.row)
    assert not torch.allclose(before[held_out_users], full[held_out_users])
    assert torch.allclose(before, again)
