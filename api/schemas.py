"""Request and response models (OpenAPI)."""

from __future__ import annotations

import json
import math
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from graphstore.ids import ID_PATTERN, MAX_ID_LENGTH, validate_id

Strategy = Literal["policy", "embedding", "cold_start_features", "segment", "popular"]


class RecommendationsQuery(BaseModel):
    """The query parameters of ``GET /v1/users/{user_id}/recommendations``, validated as one
    model (one validation per request rather than one per parameter)."""

    k: int = Field(default=10, ge=1, le=100, description="How many items")
    exclude_seen: bool = Field(default=True, description="Leave out items the user has seen")
    category: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Only items in this category or its subcategories (404 if unknown)",
    )
    explain: bool = Field(default=True, description="Add a graph explanation to each item")
    age: int | None = Field(default=None, ge=0, le=120, description="Cold start: the user's age")
    gender: str | None = Field(
        default=None, min_length=1, max_length=32, description="Cold start: gender"
    )
    occupation: str | None = Field(
        default=None, min_length=1, max_length=64, description="Cold start: occupation"
    )


class Explanation(BaseModel):
    """Why an item is recommended, from the graph."""

    kind: Literal[
        "search", "search_term", "segment", "similar_item", "similar_users", "popular", "taste"
    ]
    text: str = Field(examples=["you searched 'racing' → term 'race' → this item"])
    via: list[str] = Field(
        default_factory=list,
        description="The graph path as node ids / texts, from the user's side to the item",
        examples=[["racing", "race", "i42"]],
    )


class ScoredItem(BaseModel):
    item_id: str = Field(examples=["i42"])
    title: str | None = Field(default=None, examples=["Forza Motorsport 4"])
    score: float = Field(examples=[3.21])
    explanation: Explanation | None = None


class Recommendations(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u7",
                    "model_version": "v20261126-233000-1a2b3c",
                    "personalized": True,
                    "known_user": True,
                    "strategy": "policy",
                    "policy_version": 3,
                    "category": None,
                    "items": [
                        {
                            "item_id": "i42",
                            "title": "Forza Motorsport 4",
                            "score": 3.21,
                            "explanation": {
                                "kind": "search_term",
                                "text": "you searched 'racing games' → term 'race' → this item",
                                "via": ["racing games", "race", "i42"],
                            },
                        }
                    ],
                }
            ]
        }
    )

    user_id: str = Field(examples=["u7"])
    model_version: str | None = Field(examples=["v20261126-233000-1a2b3c"])
    personalized: bool = Field(
        description="False for unknown users, no embedding, or personalization switched off"
    )
    known_user: bool = Field(
        description="False when the graph has no user with this id (the answer is then not "
        "about anyone: popular or cold-start items); true otherwise"
    )
    strategy: Strategy = Field(
        description="policy: the user's vector adjusted by the DDPG actor from recent history; "
        "embedding: the user's vector (no policy); cold_start_features: the mean vector of the "
        "users nearest in age/gender/occupation; segment: the items most popular in the user's "
        "segment; popular: the most interacted-with items"
    )
    policy_version: int | None = Field(default=None, description="DDPG policy version used")
    category: str | None = None
    items: list[ScoredItem]


class QuerySuggestion(BaseModel):
    query_id: str = Field(examples=["game race"], description="The normalized query")
    text: str = Field(examples=["racing games"])
    score: float = Field(examples=[0.83])


class QuerySuggestions(BaseModel):
    user_id: str = Field(examples=["u7"])
    model_version: str | None
    personalized: bool
    prefix: str | None = Field(default=None, examples=["rac"])
    queries: list[QuerySuggestion]


class ComponentHealth(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    neo4j: ComponentHealth
    redis: ComponentHealth
    model_version: str | None


class Readiness(BaseModel):
    ready: bool
    neo4j: ComponentHealth
    redis: ComponentHealth
    model: ComponentHealth
    snapshot: ComponentHealth | None = Field(
        default=None,
        description="The in-memory serving snapshot (ok: it holds the active version); "
        "informational, not part of `ready`; null when the snapshot is off",
    )


class ErrorBody(BaseModel):
    detail: Any = Field(examples=["graph database unavailable"])


class SimilarItems(BaseModel):
    item_id: str = Field(examples=["i42"])
    model_version: str
    items: list[ScoredItem]


class DecisionLayer(BaseModel):
    state: Literal["on", "off"]
    alpha: float
    reason: str


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
    decision_layer: DecisionLayer | None = Field(
        default=None,
        description="the DDPG policy of this version: off when validation chose α = 0 (the "
        "served scores are then the supervised model's); absent for models without one",
    )

    @classmethod
    def from_record(cls, m: dict[str, Any]) -> ModelVersion:
        skip = ("metrics", "active", "decision_layer")
        fields = {k: m.get(k) for k in cls.model_fields if k not in skip}
        metrics = json.loads(m["metrics"]) if isinstance(m.get("metrics"), str) else {}
        alpha = metrics.get("policy_alpha") if isinstance(metrics, dict) else None
        layer = None
        if isinstance(alpha, int | float):
            alpha = float(alpha)
            layer = DecisionLayer(
                state="off" if alpha == 0.0 else "on",
                alpha=alpha,
                reason="validation chose α = 0" if alpha == 0.0 else "validation chose α > 0",
            )
        return cls.model_validate(
            {
                **fields,
                "active": bool(m.get("active")),
                "metrics": metrics,
                "decision_layer": layer,
            }
        )


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


# --------------------------------------------------------------------------- feedback events

#: Oldest accepted event time (2001-09-09) and how far in the future a clock may be off.
MIN_TS = 1_000_000_000.0
MAX_CLOCK_SKEW_S = 86_400.0
#: Event, user and item ids follow the one id rule (graphstore/ids.py); published in the
#: OpenAPI schema, enforced by a validator whose message names the field and the rule.
_ID_SCHEMA: dict[str, Any] = {"pattern": ID_PATTERN, "minLength": 1, "maxLength": MAX_ID_LENGTH}


class EventIn(BaseModel):
    """One feedback event. ``search`` needs ``query``; ``view``/``click``/``purchase`` need
    ``item_id`` (a click may also carry the ``query`` that led to it)."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "id": "e-7f3a-0001",
                    "user_id": "u7",
                    "type": "search",
                    "query": "racing games",
                    "ts": 1764201600.0,
                },
                {
                    "id": "e-7f3a-0002",
                    "user_id": "u7",
                    "type": "click",
                    "item_id": "i42",
                    "query": "racing games",
                    "ts": 1764201612.5,
                },
            ]
        },
    )

    id: str = Field(
        description="Client-chosen unique id (idempotency)", json_schema_extra=_ID_SCHEMA
    )
    user_id: str = Field(json_schema_extra=_ID_SCHEMA)
    type: Literal["search", "view", "click", "purchase"]
    item_id: str | None = Field(default=None, json_schema_extra=_ID_SCHEMA)
    query: str | None = Field(default=None, min_length=1, max_length=200)
    ts: float = Field(description="Event time, Unix seconds")

    @field_validator("id", "user_id", "item_id")
    @classmethod
    def _id_rule(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else validate_id(value, info.field_name or "id")

    @model_validator(mode="after")
    def _check(self) -> EventIn:
        if not math.isfinite(self.ts) or self.ts < MIN_TS:
            raise ValueError(f"ts must be Unix seconds after {MIN_TS:.0f}")
        if self.ts > time.time() + MAX_CLOCK_SKEW_S:
            raise ValueError("ts is more than a day in the future")
        if self.type == "search" and not self.query:
            raise ValueError("a search event needs a query")
        if self.type != "search" and not self.item_id:
            raise ValueError(f"a {self.type} event needs an item_id")
        if self.type in ("view", "purchase") and self.query is not None:
            raise ValueError(f"a {self.type} event takes no query")
        if self.type == "search" and self.item_id is not None:
            raise ValueError("a search event takes no item_id")
        return self


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class RejectedEvent(BaseModel):
    id: str
    reason: str = Field(examples=["unknown item"])


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events stored now (first time seen)")
    duplicates: int = Field(description="Events already stored earlier: nothing changed")
    rejected: list[RejectedEvent] = Field(default_factory=list)
    streamed: int = Field(description="Entries appended to the feedback stream by this call")


# --------------------------------------------------------------------------- users / privacy


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    personalization: bool = Field(
        description="False: non-personalized answers and no use in training"
    )


class EraseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    user_id: str = Field(
        min_length=1,
        max_length=4096,
        description="The id exactly as stored; any string, also one outside the id rule",
        examples=["u11/"],
    )


class ConsentState(BaseModel):
    user_id: str
    personalization: bool


class Erased(BaseModel):
    user_id: str
    erased: bool = Field(description="False when no such user was stored (nothing to erase)")
    events: int = Field(description="Stored feedback events deleted")
    queries: int = Field(description="Queries only this user had searched, deleted")
    stream_entries: int = Field(description="Feedback-stream entries deleted")
