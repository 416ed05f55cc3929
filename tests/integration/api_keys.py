"""API keys for integration tests of the API (import the fixtures into a test module).

Keys live in the graph, so create them after the graph was (re)loaded: the ``api_keys``
fixture depends on ``trained_model``. Use ``auth(api_keys["read"])`` as request headers. In a
test module: ``from tests.integration.api_keys import api_keys_fixture, auth  # noqa: F401``
makes the ``api_keys`` fixture available.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from graphstore import apikeys

HEADER = "X-API-Key"


def auth(key: str) -> dict[str, str]:
    return {HEADER: key}


def create_keys(driver: Driver) -> dict[str, str]:
    """One key per scope: ``{"read": key, "write": key, "admin": key}``."""
    return {scope: apikeys.create_key(driver, scope, name="tests")[1] for scope in apikeys.SCOPES}


@pytest.fixture(scope="module", name="api_keys")
def api_keys_fixture(driver: Driver, trained_model: str) -> dict[str, str]:
    return create_keys(driver)


@pytest.fixture(scope="module", name="api_client")
def api_client_fixture(trained_model: str) -> Iterator[TestClient]:
    """The app with its lifespan (real Neo4j and Redis), refreshing the active model fast."""
    from api.main import create_app

    with TestClient(create_app()) as client:
        client.app.state.recommender.refresh_s = 0.2  # type: ignore[attr-defined]
        yield client
