"""The behaviour-sequence baselines' fast scoring against a straightforward reference.

``score`` pools a user's history from its sum (minus the candidate), and ``score_all`` splits
the MLP's first layer into a user part and an item part; both must give what the definition
gives when computed pair by pair: gather the user's last items, drop the padding and the
candidate itself, average (DIN: weigh each by the activation unit), concatenate with the
profile and the item, and run the network.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import pytest
import torch
from torch import Tensor

from training.config import TrainConfig
from training.dataset import GraphData
from training.models import build_model
from training.models.base import RecModel
from training.models.behavior import BehaviorEncoding, BehaviorInput
from training.models.din import DIN
from training.models.embedding_mlp import EmbeddingMLP
from training.models.pnn import PNN
from training.models.wide_deep import WideDeep


def _pooled_reference(model_input: BehaviorInput, enc: BehaviorEncoding, u: int, i: int) -> Tensor:
    pad = model_input.n_items
    items = [int(j) for j in model_input.history[u] if int(j) not in (pad, i)]
    if not items:
        return enc.item.new_zeros(enc.item.shape[1])
    return enc.item[items].mean(0)


def _reference(model: RecModel, enc: object, u: int, i: int) -> float:
    """One pair's logit, computed from the models' definitions (docstrings)."""
    if isinstance(model, WideDeep):
        b, wide_item = cast(tuple[BehaviorEncoding, Tensor], enc)
        x = model.input.user_x[u]
        if x.numel() == 0:
            x = x.new_zeros(1)
        deep_in = torch.cat([b.profile[u], _pooled_reference(model.input, b, u, i), b.item[i]])
        wide = (
            model.item_bias.weight[i, 0]
            + wide_item[i, 0]
            + model.user_linear(x[None])[0, 0]
            + (x * wide_item[i, 1:]).sum()
        )
        return float(model.deep(deep_in[None])[0, 0] + wide)
    assert isinstance(enc, BehaviorEncoding)
    p, e = enc.profile[u], enc.item[i]
    if isinstance(model, DIN):
        pad = model.input.n_items
        seq = [int(j) for j in model.input.history[u] if int(j) not in (pad, i)]
        interest = torch.zeros_like(e)
        for j in seq:
            h_j = enc.item[j]
            a = model.attention(torch.cat([h_j, e, h_j - e, h_j * e])[None])[0, 0]
            interest = interest + a * h_j
        return float(model.mlp(torch.cat([p, interest, e])[None])[0, 0])
    assert isinstance(model, EmbeddingMLP | PNN)
    h = _pooled_reference(model.input, enc, u, i)
    if isinstance(model, PNN):
        x = torch.cat([p, h, e, (p * h).sum()[None], (p * e).sum()[None], (h * e).sum()[None]])
    else:
        x = torch.cat([p, h, e])
    return float(model.mlp(x[None])[0, 0])


@pytest.mark.parametrize("name", ["embedding_mlp", "pnn", "wide_deep", "din"])
def test_scores_match_the_reference(name: str, data: GraphData, tiny_config: TrainConfig) -> None:
    torch.manual_seed(3)
    model = build_model(name, data, tiny_config)
    with torch.no_grad():  # non-zero wide weights, so the wide part is checked too
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    model.eval()
    model.pair_chunk = 3 * data.n_items + 5  # type: ignore[misc]  # several blocks, a short one
    if isinstance(model, DIN):
        model.rank_block = 3 * data.n_items * (data.history.shape[1] + 2 * 8) + 5
    users = torch.arange(data.n_users)
    with torch.no_grad():
        enc = model.encode()
        expected = torch.tensor(
            [
                [_reference(model, enc, u, i) for i in range(data.n_items)]
                for u in range(data.n_users)
            ]
        )
        fast = model.score_all(enc, users)
        uu = users[:, None].expand(-1, data.n_items).reshape(-1)
        ii = torch.arange(data.n_items).repeat(data.n_users)
        pairwise = model.score(enc, uu, ii).view(data.n_users, data.n_items)
    # the candidate-in-history pairs exist, so leaving the candidate out is exercised
    assert isinstance(model.input, BehaviorInput)
    assert len(model.input.history_pairs(users)[0]) > 0
    assert torch.allclose(pairwise, expected, atol=1e-5), (pairwise - expected).abs().max()
    assert torch.allclose(fast, expected, atol=1e-5), (fast - expected).abs().max()


def test_pooled_history_leaves_every_copy_of_the_candidate_out(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    history = data.history.clone()
    pad = data.n_items
    u = int((history != pad).sum(1).argmax())
    item = int(history[u, -1])
    history[u, 0] = item  # the candidate twice in the sequence
    history[u, 1] = item  # and a third time
    torch.manual_seed(0)
    model = build_model("embedding_mlp", replace(data, history=history), tiny_config)
    assert isinstance(model, EmbeddingMLP)
    with torch.no_grad():
        enc = model.encode()
        got = model.input.pooled(enc, torch.tensor([u, u]), torch.tensor([item, (item + 1) % pad]))
    assert torch.allclose(got[0], _pooled_reference(model.input, enc, u, item), atol=1e-6)
    other = (item + 1) % pad
    assert torch.allclose(got[1], _pooled_reference(model.input, enc, u, other), atol=1e-6)
