"""Dependency aliases for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from neo4j import Driver

from api.recommender import Recommender
from dpgcn.settings import Settings, get_settings


def get_driver(request: Request) -> Driver:
    return request.app.state.driver  # type: ignore[no-any-return]


def get_recommender(request: Request) -> Recommender:
    return request.app.state.recommender  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
DriverDep = Annotated[Driver, Depends(get_driver)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
