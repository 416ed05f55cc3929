"""Request and response models (OpenAPI)."""

from __future__ import annotations

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
