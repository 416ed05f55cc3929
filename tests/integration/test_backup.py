"""``dpgcn backup create|restore`` against the real managed Neo4j and Redis with a real API
process (loopback): what is erased or revoked after a backup stays so after its restore, the
API is ready again without a restart, and Redis' run records and feedback stream come back.

The test restores the shared test services to the backup it made at its start, so the graph
and Redis end as they were then (minus the user it erased and the key it revoked); the
services are left up."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from neo4j import Driver

from dpgcn import services
from dpgcn.settings import get_settings
from dpgcn.streams import FEEDBACK_STREAM
from graphstore import apikeys, statelog
from tests.integration.api_keys import auth
from tests.integration.api_process import ready, serve
from tests.integration.conftest import run_cli
from workers import runs

pytestmark = pytest.mark.integration
logger = logging.getLogger(__name__)

#: What the issue promises: /ready within this many seconds of the restore, no other writes.
READY_WITHIN_S = 30.0
TEST_STREAM = "dpgcn:test:backup"


@pytest.fixture
def api_url(trained_model: str, tmp_path: Path) -> Iterator[str]:
    """``dpgcn serve`` on a free loopback port (key table re-read every second)."""
    with serve(
        tmp_path / "api.log", DPGCN_API_KEY_CACHE_S="1", DPGCN_API_KEY_MISS_REFRESH_S="1"
    ) as api:
        yield api.url


def _user_exists(driver: Driver, user_id: str) -> bool:
    records, _, _ = driver.execute_query(
        "MATCH (u:User {id: $id}) RETURN count(u) AS n", id=user_id, database_="neo4j"
    )
    return bool(records[0]["n"])


def test_restore_keeps_later_erasures_and_revocations(
    trained_model: str, driver: Driver, api_url: str, tmp_path: Path
) -> None:
    settings = get_settings()
    archive = tmp_path / "dpgcn.backup.tar"
    keep_id, keep = apikeys.create_key(driver, "admin", name="backup-keep")
    gone_id, gone = apikeys.create_key(driver, "read", name="backup-revoked")
    records, _, _ = driver.execute_query(
        "MATCH (u:User)-[r]->(:Item) WITH u, count(r) AS n WHERE n > 2 "
        "RETURN u.id AS id ORDER BY id LIMIT 1",
        database_="neo4j",
    )
    user = str(records[0]["id"])
    with httpx.Client(base_url=api_url, timeout=30) as client:
        # the key table is re-read every second: wait until the new keys are known
        deadline = time.monotonic() + 20
        while (
            client.get(f"/v1/users/{user}/recommendations", headers=auth(gone)).status_code != 200
        ):
            assert time.monotonic() < deadline, "the API never accepted the new key"
            time.sleep(0.5)
        before = client.get(f"/v1/users/{user}/recommendations", headers=auth(keep))
        assert before.status_code == 200 and before.json()["personalized"] is True, before.text

    import redis

    rds: Any = redis.Redis.from_url(services.redis_url(settings))
    run_key = runs.run_key(trained_model)
    assert rds.exists(run_key)
    # a stream of the test's own (the feedback stream is consumed by the running worker)
    rds.delete(TEST_STREAM)
    rds.xadd(TEST_STREAM, {"n": "1"})

    t0 = time.monotonic()
    made = run_cli("backup", "create", str(archive), timeout=300)
    backup_s = time.monotonic() - t0
    assert archive.is_file() and "store" in made.stdout, made.stdout
    assert (archive.stat().st_mode & 0o777) == 0o600

    # after the backup: erase the user through the API, revoke a key, change Redis
    with httpx.Client(base_url=api_url, timeout=30) as client:
        deadline = time.monotonic() + 60
        while True:  # Neo4j was restarted for the dump: the API answers 503 until it is back
            erased = client.delete(f"/v1/users/{user}", headers=auth(keep))
            if erased.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert erased.status_code == 200, erased.text
    run_cli("apikey", "revoke", gone_id)
    rds.delete(run_key)
    rds.xadd(TEST_STREAM, {"n": "2"})
    rds.close()
    log = statelog.path(statelog.ERASURES)
    assert (log.stat().st_mode & 0o777) == 0o600
    assert user not in log.read_text()  # hashes only, never the id
    assert gone_id in statelog.path(statelog.REVOCATIONS).read_text()

    t0 = time.monotonic()
    restored = run_cli("backup", "restore", str(archive), timeout=300)
    restore_s = time.monotonic() - t0
    assert "1 users erased" in restored.stdout and "1 keys revoked" in restored.stdout, (
        restored.stdout
    )

    # the running API recovers by itself: /ready within 30 s, no other writes
    t0 = time.monotonic()
    while not ready(api_url):
        assert time.monotonic() - t0 < READY_WITHIN_S, "the API was not ready 30 s after restore"
        time.sleep(0.25)
    ready_s = time.monotonic() - t0
    logger.info("backup %.1f s, restore %.1f s, /ready %.1f s after", backup_s, restore_s, ready_s)

    assert not _user_exists(driver, user)
    with httpx.Client(base_url=api_url, timeout=30) as client:
        deadline = time.monotonic() + 10
        while True:  # the key table and snapshot are dropped once the restore marks its end
            recs = client.get(f"/v1/users/{user}/recommendations", headers=auth(keep))
            revoked = client.get(f"/v1/users/{user}/recommendations", headers=auth(gone))
            if (recs.status_code == 200 and not recs.json()["personalized"]) and (
                revoked.status_code == 401
            ):
                break
            assert time.monotonic() < deadline, (recs.status_code, recs.text, revoked.status_code)
            time.sleep(0.5)
    assert apikeys.get_key(driver, gone_id).revoked  # type: ignore[union-attr]
    assert not apikeys.get_key(driver, keep_id).revoked  # type: ignore[union-attr]

    rds = redis.Redis.from_url(services.redis_url(settings))
    try:
        assert rds.exists(run_key), "the run record did not come back"
        assert [fields for _, fields in rds.xrange(TEST_STREAM)] == [{b"n": b"1"}]
        users = {fields.get(b"user_id") for _, fields in rds.xrange(FEEDBACK_STREAM)}
        assert user.encode() not in users  # the erased user's entries stay deleted
        rds.delete(TEST_STREAM)
    finally:
        rds.close()
