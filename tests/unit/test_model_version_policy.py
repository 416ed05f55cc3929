"""`/v1/models` says for each version whether validation switched the DDPG policy off."""

from __future__ import annotations

import json

from api.schemas import ModelVersion


def record(metrics: dict[str, object]) -> dict[str, object]:
    return {"version": "v1", "status": "ready", "active": True, "metrics": json.dumps(metrics)}


def test_alpha_zero_is_reported_as_off() -> None:
    v = ModelVersion.from_record(record({"policy_alpha": 0.0, "val_auc": 0.9}))
    assert v.decision_layer is not None
    assert v.decision_layer.state == "off" and "α = 0" in v.decision_layer.reason


def test_positive_alpha_is_on_and_no_policy_is_absent() -> None:
    on = ModelVersion.from_record(record({"policy_alpha": 0.25}))
    assert on.decision_layer is not None and on.decision_layer.state == "on"
    assert on.decision_layer.alpha == 0.25
    assert ModelVersion.from_record(record({"val_auc": 0.9})).decision_layer is None


def test_the_pipeline_stores_the_chosen_alpha_for_the_model_listing() -> None:
    from workers.pipeline import _summary

    stored = _summary({"policy": {"alpha": 0.0, "scale": 2.0}, "val": {"auc": 0.9}})
    assert stored["policy_alpha"] == 0.0 and stored["val_auc"] == 0.9
    assert "policy_alpha" not in _summary({"val": {"auc": 0.9}})
    v = ModelVersion.from_record(record(stored))
    assert v.decision_layer is not None and v.decision_layer.state == "off"
