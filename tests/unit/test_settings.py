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


@pytest.mark.parametrize(
    ("neo4j_uri", "redis_url", "managed"),
    [
        (None, None, True),
        ("neo4j://127.0.0.1:17777", "redis://:pw@127.0.0.1:16666/0", True),  # `services env`
        ("bolt://localhost:17777", "redis://localhost:16666", True),
        ("neo4j://example:7687", "redis://cache:6379/0", False),
        ("neo4j://127.0.0.1:7687", "redis://127.0.0.1:6379/0", False),  # another local server
    ],
)
def test_managed_means_this_homes_address(
    monkeypatch: pytest.MonkeyPatch, neo4j_uri: str | None, redis_url: str | None, managed: bool
) -> None:
    """Managed or external by the address, whether or not this home's servers run: an
    external URI is never treated as the managed server (nor stopped, nor bulk-imported)."""
    from dpgcn import services

    monkeypatch.setenv("NEO4J_BOLT_PORT", "17777")
    monkeypatch.setenv("REDIS_PORT", "16666")
    for var, value in (("NEO4J_URI", neo4j_uri), ("REDIS_URL", redis_url)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    monkeypatch.setenv("NEO4J_PASSWORD", "a-real-secret-123")
    settings = Settings()
    assert services.neo4j_managed(settings) is managed
    assert services.redis_managed(settings) is managed
