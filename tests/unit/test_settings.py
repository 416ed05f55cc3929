from __future__ import annotations

import pytest
from pydantic import ValidationError

from dpgcn.settings import Neo4jSettings, RedisSettings, Settings


def test_defaults_are_managed(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NEO4J_URI", "NEO4J_PASSWORD", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings()
    assert settings.neo4j.managed and settings.redis.managed


def test_external_servers_from_plain_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_URI", "neo4j+s://example.databases.neo4j.io")
    monkeypatch.setenv("NEO4J_USER", "analyst")
    monkeypatch.setenv("NEO4J_PASSWORD", "a-real-secret-123")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    settings = Settings()
    assert not settings.neo4j.managed and settings.neo4j.user == "analyst"
    assert settings.neo4j.password is not None
    assert "a-real-secret" not in repr(settings)  # SecretStr never prints
    assert not settings.redis.managed


@pytest.mark.parametrize("password", ["neo4j", "password"])
def test_default_passwords_are_rejected(monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.setenv("NEO4J_PASSWORD", password)
    with pytest.raises(ValidationError, match="default password"):
        Neo4jSettings()


def test_ports_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_BOLT_PORT", "17777")
    monkeypatch.setenv("REDIS_PORT", "16666")
    assert Neo4jSettings().bolt_port == 17777 and RedisSettings().port == 16666
