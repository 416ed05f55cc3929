"""Unit tests of the API's pieces that need no services: keys, validation, policy bytes,
explanations, caches."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from api.recommender import TtlCache
from api.routes.recommendations import _explain
from api.schemas import EventBatch, EventIn
from graphstore import apikeys
from graphstore.serving import Explanation
from training.config import DDPGConfig
from training.errors import ModelDirError
from training.inference import load_policy_adjuster_bytes
from training.policy import DDPGPolicy


def test_keys_split_hash_and_scopes() -> None:
    stored = apikeys.StoredKey("abc", apikeys.hash_secret("s3cret"), "write", False)
    assert apikeys.split_key("dpgcn_abc_s3cret") == ("abc", "s3cret")
    for bad in ("", "dpgcn_abc", "other_abc_s3cret", "dpgcn__x", "dpgcn_a_b_c"):
        assert apikeys.split_key(bad) is None
    assert apikeys.verify(stored, "s3cret") and not apikeys.verify(stored, "s3cre")
    assert not apikeys.verify(None, "s3cret")
    revoked = apikeys.StoredKey("abc", stored.hash, "admin", True)
    assert not apikeys.verify(revoked, "s3cret")
    assert apikeys.scope_allows("admin", "write") and apikeys.scope_allows("write", "write")
    assert not apikeys.scope_allows("read", "write") and not apikeys.scope_allows("x", "read")
    assert "s3cret" not in stored.hash


def test_event_validation_messages() -> None:
    now = time.time()
    EventIn(id="e1", user_id="u", type="search", query="racing", ts=now)
    EventIn(id="e2", user_id="u", type="click", item_id="i1", query="racing", ts=now)
    cases = [
        ({"type": "search"}, "needs a query"),
        ({"type": "view"}, "needs an item_id"),
        ({"type": "view", "item_id": "i", "query": "q"}, "takes no query"),
        ({"type": "search", "query": "q", "item_id": "i"}, "takes no item_id"),
        ({"type": "view", "item_id": "i", "ts": now + 3 * 86400}, "future"),
        ({"type": "view", "item_id": "i", "ts": float("nan")}, "Unix seconds"),
    ]
    for fields, message in cases:
        with pytest.raises(ValidationError, match=message):
            EventIn.model_validate({"id": "e", "user_id": "u", "ts": now, **fields})
    with pytest.raises(ValidationError):
        EventBatch.model_validate({"events": []})


def test_policy_bytes_round_trip_and_garbage() -> None:
    policy = DDPGPolicy(8, 4, DDPGConfig(), seed=0, alpha=0.5, scale=2.0)
    buf = io.BytesIO()
    torch.save({**policy.state_dict(), "user_history": torch.zeros(3, 2, dtype=torch.long)}, buf)
    adjuster = load_policy_adjuster_bytes(buf.getvalue())
    assert adjuster.alpha == 0.5 and adjuster.scale == 2.0 and adjuster.user_history is not None
    lean = load_policy_adjuster_bytes(buf.getvalue(), with_history=False)
    assert lean.user_history is None
    user = np.ones((1, 4), np.float32)
    items = np.eye(4, dtype=np.float32)
    hist = np.array([[0, 1]])
    expected = policy.act(np.concatenate([user, items[[0, 1]].mean(0, keepdims=True)], 1))
    np.testing.assert_allclose(
        lean.adjust(user, items, hist), user + 0.5 * 2.0 * expected, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ModelDirError):
        load_policy_adjuster_bytes(b"not a policy")


def test_explanations_prefer_the_users_own_search() -> None:
    e = Explanation(
        "i1", "racing games", "racing games", "race", "i9", "Kart", "CLICKED", "c", None, 0, 3
    )
    assert _explain("i1", e, "policy").kind == "search"
    e2 = Explanation("i1", None, "racing games", "race", "i9", "Kart", "CLICKED", "c", None, 0, 3)
    out = _explain("i1", e2, "policy")
    assert out.kind == "search_term" and out.via == ["racing games", "race", "i1"]
    assert "term 'race'" in out.text
    e3 = Explanation("i1", None, None, None, "i9", "Kart", "CLICKED", "Racing", None, 0, 3)
    text = _explain("i1", e3, "embedding").text
    assert text == "similar to 'Kart' you clicked (same category: Racing)"
    seg = Explanation("i1", None, None, None, "i9", "Kart", "CLICKED", "Racing", "Gamers", 2, 3)
    assert _explain("i1", seg, "policy").text == "2 users in your segment (Gamers) bought it"
    e4 = Explanation("i1", None, None, None, None, None, None, None, None, 0, 3)
    assert _explain("i1", e4, "popular").text == "popular: bought 3 times"
    assert _explain("i1", e4, "embedding").kind == "taste"
    assert _explain("i1", None, "cold_start_features").kind == "similar_users"


def test_ttl_cache_expires_and_bounds() -> None:
    calls: list[int] = []
    cache: TtlCache[int] = TtlCache("t", ttl_s=0.05, size=2)

    def load() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("a", load) == 1 and cache.get("a", load) == 1
    time.sleep(0.06)
    assert cache.get("a", load) == 2
    cache.get("b", load)
    cache.get("c", load)
    assert "a" not in cache._data and len(cache._data) == 2
