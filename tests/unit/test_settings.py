from __future__ import annotations

from pathlib import Path

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


def test_relative_home_and_cache_become_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Redis changes into its ``dir`` before opening its log: a relative home broke it
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DPGCN_HOME", ".state/h")
    monkeypatch.setenv("DPGCN_CACHE", "cache")
    settings = Settings()
    assert settings.home == tmp_path / ".state" / "h"
    assert settings.redis_home.is_absolute() and settings.cache == tmp_path / "cache"
