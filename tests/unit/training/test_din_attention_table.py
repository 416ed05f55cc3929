"""DIN's full ranking through the item-pair attention table (session 19) gives what the
per-user computation it replaced gave: the activation unit evaluated for every user, item and
behaviour position. Checked on the tiny graph with a repeated item in a sequence."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor, nn

from training.config import TrainConfig
from training.dataset import GraphData
from training.errors import TrainingError
from training.models import build_model
from training.models.base import rows
from training.models.behavior import BehaviorEncoding, first_layer
from training.models.din import DIN


def _per_user_score_all(model: DIN, enc: BehaviorEncoding, users: Tensor) -> Tensor:
    """The score_all of commit 178ccb3: the activation input ``[B, I, L, A]`` per user block."""
    first = model.attention[0]
    assert isinstance(first, nn.Linear)
    d = enc.item.shape[1]
    a_hist, a_item, a_diff, a_prod = first_layer(first, d, d, d, d)
    item = enc.item[:-1]
    per_item = item @ (a_item - a_diff).t()
    head = model.mlp[0]
    assert isinstance(head, nn.Linear)
    w_p, w_v, w_i = first_layer(head, d, d, d)
    head_item = item @ w_i.t()
    ids = torch.arange(model.n_items)
    seq = model.input.history[users]
    hist = rows(enc.item, seq)
    per_hist = hist @ (a_hist + a_diff).t() + first.bias
    scaled = hist[:, :, None, :] * a_prod[None, None]
    cross = (item @ scaled.flatten(1, 2).transpose(1, 2)).view(
        len(users), model.n_items, *per_hist.shape[1:]
    )
    pre = cross + per_hist[:, None] + per_item[None, :, None]
    weights = model.attention[1:](pre).squeeze(-1)
    mask = (seq != model.n_items)[:, None, :] & (seq[:, None, :] != ids[None, :, None])
    interest = (weights * mask.to(weights.dtype)) @ hist
    user = rows(enc.profile, users) @ w_p.t() + head.bias
    h = user[:, None] + interest @ w_v.t() + head_item[None]
    return model.mlp[1:](h).squeeze(-1)


def test_attention_table_ranking_matches_the_per_user_ranking(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    history = data.history.clone()
    u = int((history != data.n_items).sum(1).argmax())
    history[u, 0] = history[u, -1]  # one item twice in a sequence
    torch.manual_seed(5)
    model = build_model("din", replace(data, history=history), tiny_config)
    assert isinstance(model, DIN)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    model.eval()
    users = torch.arange(data.n_users)
    with torch.no_grad():
        enc = model.encode()
        old = _per_user_score_all(model, enc, users)
        model.table_block = 2 * (data.n_items + 1) * 32 + 3  # type: ignore[misc]  # several blocks
        model.rank_block = 3 * data.n_items * (data.history.shape[1] + 2 * 8) + 5  # type: ignore[misc]
        new = model.score_all(enc, users)
        table = enc.derived["din_attention"]
        pairwise = model.score(
            enc,
            users[:, None].expand(-1, data.n_items).reshape(-1),
            torch.arange(data.n_items).repeat(data.n_users),
        ).view(data.n_users, data.n_items)
    assert table.shape == (data.n_items + 1, data.n_items)
    assert torch.allclose(new, old, atol=1e-5), (new - old).abs().max()
    assert torch.allclose(new, pairwise, atol=1e-5), (new - pairwise).abs().max()


def test_catalogue_too_large_for_the_table_is_refused_with_its_size() -> None:
    """The table is ``[I + 1, I]``: a catalogue past the limit gets a clear error before any
    tensor is allocated, not an out-of-memory kill at the first validation."""
    too_many = SimpleNamespace(n_items=40_000)
    with pytest.raises(TrainingError, match=r"40,000 items .*leave DIN out"):
        DIN(too_many, dim=8, hidden=[8])  # type: ignore[arg-type]
