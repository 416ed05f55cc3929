"""Request and response models (OpenAPI)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field


class ScoredItem(BaseModel):
    item_id: str = Field(examples=["i42"])
    title: str | None = Field(default=None, examples=["Forza Motorsport 4"])
    score: float = Field(examples=[3.21])


class Recommendations(BaseModel):
    user_id: str = Field(examples=["u7"])
    model_version: str | None = Field(examples=["v20261126-233000-1a2b3c"])
    personalized: bool = Field(
        description="False for unknown users, no embedding, or personalization switched off"
    )
    items: list[ScoredItem]


class ComponentHealth(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    neo4j: ComponentHealth
    redis: ComponentHealth
    model_version: str | None


class ErrorBody(BaseModel):
    detail: str


class SimilarItems(BaseModel):
    item_id: str = Field(examples=["i42"])
    model_version: str
    items: list[ScoredItem]


class ModelVersion(BaseModel):
    version: str
    status: str
    active: bool
    slot: str | None = None
    dim: int | None = None
    model_name: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: float | None = None
    completed_at: float | None = None
    activated_at: float | None = None

    @classmethod
    def from_record(cls, m: dict[str, Any]) -> ModelVersion:
        fields = {k: m.get(k) for k in cls.model_fields if k not in ("metrics", "active")}
        metrics = json.loads(m["metrics"]) if isinstance(m.get("metrics"), str) else {}
        return cls.model_validate({**fields, "active": bool(m.get("active")), "metrics": metrics})


class Job(BaseModel):
    run_id: str
    state: str
    step: str = ""
    progress: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    timings: dict[str, float] = Field(
        default_factory=dict, description="*_started_at / *_finished_at epoch seconds"
    )

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Job:
        return cls(
            run_id=r["run_id"],
            state=r.get("state", ""),
            step=r.get("step", ""),
            progress=r.get("progress") or {},
            metrics=r.get("metrics") or {},
            error=r.get("error"),
            timings={k: float(v) for k, v in r.items() if k.endswith("_at")},
        )
