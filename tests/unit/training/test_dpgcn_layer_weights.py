"""DP-GCN's learned layer combination (``model.dpgcn.layer_weights="learned"``): it starts at
the uniform mean, its weights move the output between the layers, they are trained, and the
trimmed mini-batch encoder combines the layers the same way as the whole batch."""

from __future__ import annotations

from typing import cast

import optuna
import pytest
import torch

from training.config import TrainConfig
from training.data import ITEM, USER
from training.dataset import GraphData
from training.hetero import hetero_data_from_split, train_graph
from training.minibatch import hop_counts, make_link_loader
from training.models import build_model
from training.models.dpgcn import DPGCN, search_space
from training.models.hetero_gcn import HeteroGCN

REL = (USER, "CLICKED", ITEM)


def _model(data: GraphData, config: TrainConfig, weights: str, layers: int = 2) -> DPGCN:
    torch.manual_seed(0)
    config = config.replace(
        {
            "model.num_layers": layers,
            "model.dropout": 0.0,
            "model.dpgcn.cold_simulation": 0.0,
            "model.dpgcn.layer_weights": weights,
        }
    )
    model = cast(DPGCN, build_model("dpgcn", data, config))
    return model.eval()


def test_the_default_is_the_mean_and_has_no_parameters() -> None:
    assert TrainConfig().model.dpgcn.layer_weights == "mean"
    gcn = HeteroGCN([USER, ITEM], [(USER, "r", ITEM), (ITEM, "rev_r", USER)], 4, 2)
    assert gcn.layer_logits is None and not list(gcn.parameters())
    with pytest.raises(ValueError, match="layer_weights"):
        HeteroGCN([USER, ITEM], [], 4, 2, layer_weights="max")


def test_learned_weights_start_at_the_mean(data: GraphData, tiny_config: TrainConfig) -> None:
    mean = _model(data, tiny_config, "mean").encode()
    learned_model = _model(data, tiny_config, "learned")
    assert learned_model.gcn.layer_logits is not None
    assert set(learned_model.gcn.layer_logits) == set(learned_model.gcn.output_types)
    learned = learned_model.encode()
    torch.testing.assert_close(learned.user, mean.user)
    torch.testing.assert_close(learned.item, mean.item)


def test_the_weights_choose_the_layers(data: GraphData, tiny_config: TrainConfig) -> None:
    """All weight on layer 0: the output is the input vector; on the last layer: it differs."""
    model = _model(data, tiny_config, "learned")
    logits = model.gcn.layer_logits
    assert logits is not None
    with torch.no_grad():
        x = model.inputs()
        logits[USER].copy_(torch.tensor([50.0, -50.0, -50.0]))
        logits[ITEM].copy_(torch.tensor([-50.0, -50.0, 50.0]))
        enc = model.encode()
    torch.testing.assert_close(enc.user, x[USER][: model.n_users])
    assert not torch.allclose(enc.item, x[ITEM][: model.n_items], atol=1e-3)
    assert not torch.allclose(enc.item, _model(data, tiny_config, "mean").encode().item)


def test_the_weights_are_trained(data: GraphData, tiny_config: TrainConfig) -> None:
    model = _model(data, tiny_config, "learned").train()
    enc = model.encode()
    users = torch.arange(4)
    loss = -model.score(enc, users, users % model.n_items).sigmoid().log().mean()
    loss.backward()
    logits = model.gcn.layer_logits
    assert logits is not None
    assert float(logits[USER].grad.abs().sum()) > 0  # type: ignore[union-attr]
    assert float(logits[ITEM].grad.abs().sum()) > 0  # type: ignore[union-attr]
    model.reset_parameters()
    assert all(float(p.detach().abs().sum()) == 0 for p in logits.values())


@pytest.mark.parametrize("layers", [1, 2])
def test_trimmed_batch_equals_whole_batch_with_weights(
    data: GraphData, tiny_config: TrainConfig, layers: int
) -> None:
    model = _model(data, tiny_config, "learned", layers)
    logits = model.gcn.layer_logits
    assert logits is not None
    with torch.no_grad():
        for t, p in logits.items():
            p.copy_(torch.linspace(-1.0, 1.0, len(p)) * (1 + len(t)))
    graph = train_graph(hetero_data_from_split(data.split))
    torch.manual_seed(0)
    loader = make_link_loader(
        graph, REL, [2] * layers, batch_size=8, num_negatives=2, mode="triplet"
    )
    batch = next(iter(loader))
    counts = hop_counts(batch)
    assert counts is not None
    x = model.inputs({t: batch[t].n_id for t in batch.node_types})
    with torch.no_grad():
        full = model.gcn(x, batch.edge_index_dict)
        trimmed = model.gcn(x, batch.edge_index_dict, counts)
    for t in model.gcn.output_types:
        n = counts[t][0]
        torch.testing.assert_close(trimmed[t], full[t][:n], msg=t)


def test_search_space_has_the_dimension() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {search_space(study.ask())["model.dpgcn.layer_weights"] for _ in range(20)}
    assert seen == {"mean", "learned"}
