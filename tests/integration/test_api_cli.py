"""``dpgcn apikey create/list/revoke`` against the real Neo4j."""

from __future__ import annotations

import pytest
from neo4j import Driver

from graphstore import apikeys
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


def test_apikey_create_list_revoke(driver: Driver) -> None:
    created = run_cli("apikey", "create", "--scope", "write", "--name", "cli-test")
    key = created.stdout.strip().splitlines()[-1]
    parts = apikeys.split_key(key)
    assert parts is not None
    key_id, secret = parts
    stored = apikeys.get_key(driver, key_id)
    assert stored is not None and stored.scope == "write" and apikeys.verify(stored, secret)
    assert secret not in str(driver.execute_query("MATCH (k:ApiKey {id: $i}) RETURN k", i=key_id))
    listing = run_cli("apikey", "list").stdout
    line = next(row for row in listing.splitlines() if row.startswith(key_id))
    assert "write" in line and "cli-test" in line and " no " in line and secret not in listing
    run_cli("apikey", "revoke", key_id)
    assert not apikeys.verify(apikeys.get_key(driver, key_id), secret)
    assert " yes " in next(r for r in run_cli("apikey", "list").stdout.splitlines() if key_id in r)
    missing = run_cli("apikey", "revoke", "no-such-key", check=False)
    assert missing.returncode == 1 and "no API key" in missing.stderr
    bad = run_cli("apikey", "create", "--scope", "root", check=False)
    assert bad.returncode == 2 and "--scope must be one of" in bad.stderr
