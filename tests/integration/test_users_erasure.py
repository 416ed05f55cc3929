"""Erased users stay erased (graphstore level, real Neo4j): the erasure leaves a tombstone with
the salted hash of the id, never the id; later events and consent changes for that id are
skipped and say why; other users are untouched."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from neo4j import Driver

from graphstore import queries, users
from graphstore.events import USER_ERASED, EventRow, write_events

pytestmark = pytest.mark.integration


def _events(user: str, prefix: str) -> list[EventRow]:
    now = time.time()
    return [
        EventRow(id=f"{prefix}-1", user_id=user, type="click", ts=now, item_id="er-i1"),
        EventRow(
            id=f"{prefix}-2",
            user_id=user,
            type="search",
            ts=now,
            query="kalo zute",
            query_text="kalo zute",
        ),
        EventRow(id=f"{prefix}-3", user_id=user, type="purchase", ts=now, item_id="er-i1"),
    ]


def _user_exists(driver: Driver, user: str) -> bool:
    return bool(driver.execute_query("MATCH (u:User {id: $u}) RETURN u", u=user).records)


def _every_value(driver: Driver) -> str:
    """Every label, key and value in the graph as one string (to look for a plain id)."""
    rows = driver.execute_query("MATCH (n) RETURN labels(n) AS l, properties(n) AS p").records
    return repr([(r["l"], r["p"]) for r in rows])


@pytest.fixture
def shop(empty_graph: Driver) -> Driver:
    empty_graph.execute_query(
        "CREATE (:Item {id: 'er-i1', title: 'Kalo'}), (:User {id: 'er-keep', consent: true})"
    )
    return empty_graph


def test_events_of_an_erased_user_do_not_recreate_it(shop: Driver) -> None:
    driver = shop
    user = "er-gone-7"
    first = write_events(driver, _events(user, "a"))
    assert sorted(first.new) == ["a-1", "a-2", "a-3"] and first.skipped == {}
    assert _user_exists(driver, user)
    assert not users.is_erased(driver, user), "no salt yet: nobody is erased"

    erased = users.delete_user(driver, user)
    assert erased.users == 1 and erased.events == 3
    assert not _user_exists(driver, user)
    assert users.is_erased(driver, user) and not users.is_erased(driver, "er-keep")
    assert users.erased_among(driver, ["er-keep", user, user, "er-x"]) == {user}

    # The tombstone holds a salted hash, never the plain id.
    rows = driver.execute_query("MATCH (t:ErasedUser) RETURN t.id_hash AS h").records
    assert len(rows) == 1 and re.fullmatch(r"[0-9a-f]{64}", rows[0]["h"])
    salt = driver.execute_query("MATCH (k:ErasureSalt) RETURN k.value AS v").records[0]["v"]
    assert rows[0]["h"] == users.id_hash(user, salt) != users.id_hash(user, "other salt")
    assert user not in _every_value(driver)

    # Later events for the same id are skipped, with the reason; one for another user in
    # the same batch is stored.
    later = [
        *_events(user, "b"),
        EventRow(id="b-keep", user_id="er-keep", type="click", ts=time.time(), item_id="er-i1"),
        EventRow(id="b-unknown", user_id=user, type="click", ts=time.time(), item_id="nope"),
    ]
    result = write_events(driver, later)
    assert result.new == ["b-keep"] and result.duplicates == []
    assert result.erased_user == ["b-1", "b-2", "b-3", "b-unknown"]
    assert result.skipped == {i: USER_ERASED for i in ("b-1", "b-2", "b-3", "b-unknown")}
    assert result.to_stream == ["b-keep"]
    assert not _user_exists(driver, user)
    assert user not in _every_value(driver)
    stored = driver.execute_query("MATCH (e:Event) RETURN collect(e.id) AS ids").records[0]
    assert stored["ids"] == ["b-keep"]
    # A retried batch is skipped the same way.
    assert write_events(driver, later[:3]).erased_user == ["b-1", "b-2", "b-3"]

    # Consent for the erased id stores nothing and does not re-create the user.
    assert users.set_consent(driver, user, False) is False
    assert not _user_exists(driver, user)
    # Consent for others still creates and updates as before.
    assert users.set_consent(driver, "er-new", False) is False and _user_exists(driver, "er-new")

    # Erasing again is idempotent: one tombstone, nothing else deleted.
    again = users.delete_user(driver, user)
    assert (again.users, again.events) == (0, 0)
    count = driver.execute_query("MATCH (t:ErasedUser) RETURN count(t) AS n").records[0]["n"]
    assert count == 1


def test_erasing_an_unseen_id_blocks_it_and_one_salt_is_shared(shop: Driver) -> None:
    driver = shop
    assert users.delete_user(driver, "er-never").users == 0
    assert users.delete_user(driver, "er-never-2").users == 0
    salts = driver.execute_query("MATCH (k:ErasureSalt) RETURN count(k) AS n").records[0]["n"]
    assert salts == 1
    result = write_events(driver, _events("er-never", "c"))
    assert result.new == [] and result.erased_user == ["c-1", "c-2", "c-3"]
    assert not _user_exists(driver, "er-never")
    # Unknown items are still reported as such for users who were not erased.
    other = write_events(
        driver, [EventRow(id="d-1", user_id="er-keep", type="click", ts=1.0, item_id="nope")]
    )
    assert other.unknown_item == ["d-1"] and other.skipped == {"d-1": "unknown item"}


def test_reloading_a_source_does_not_recreate_an_erased_user(shop: Driver) -> None:
    from graphstore import ingest
    from graphstore.records import GraphSource

    driver = shop
    clicks = [
        {"user": u, "target": "er-i1", "count": 1, "ts": 1.7e9, "weight": 1.0}
        for u in ("er-load-1", "er-load-2")
    ]
    source = GraphSource(
        name="erasure-reload",
        users=[{"id": "er-load-1"}, {"id": "er-load-2"}],
        items=[{"id": "er-i1", "title": "Kalo"}],
        interactions={"CLICKED": clicks},
    )
    assert ingest.load_source(driver, source).erased == 0
    users.delete_user(driver, "er-load-1")
    again = ingest.load_source(driver, source)
    assert again.erased == 1
    assert not _user_exists(driver, "er-load-1") and _user_exists(driver, "er-load-2")
    assert again.unmatched == {"CLICKED": 1}  # the erased user's click found no user
    rows = driver.execute_query(
        "MATCH (u:User)-[:CLICKED]->(:Item {id: 'er-i1'}) RETURN collect(u.id) AS ids"
    ).records
    assert rows[0]["ids"] == ["er-load-2"]


# --------------------------------------------------------------------------- races
# An erasure and an event write for the same user, in both orders. The first of the two runs
# in an explicit transaction the test holds open; the second runs in a thread and must wait
# for it (the erasure locks the user first), and whichever commits second must see the other.


def _blocked(thread: threading.Thread) -> bool:
    thread.start()
    thread.join(1.5)
    return thread.is_alive()


@pytest.mark.parametrize("first_erasure", [True, False], ids=["first-erasure", "salted"])
@pytest.mark.parametrize("known", [True, False], ids=["known-user", "new-user"])
def test_an_event_write_waiting_on_an_erasure_does_not_recreate_the_user(
    shop: Driver, known: bool, first_erasure: bool
) -> None:
    driver = shop
    if not first_erasure:
        users.delete_user(driver, "er-earlier")  # the graph's salt exists already
    user = "er-race-1"
    if known:
        assert write_events(driver, _events(user, "k")).new
    results: list[Any] = []
    with driver.session() as session:
        erasure = session.begin_transaction()
        salt = users.ensure_salt(erasure)  # type: ignore[arg-type]
        erasure.run(
            queries.load("users/delete_user"),
            {"user_id": user, "id_hash": users.id_hash(user, salt), "now": time.time()},
        ).consume()
        writer = threading.Thread(
            target=lambda: results.append(write_events(driver, _events(user, "r")))
        )
        assert _blocked(writer), "the event write must wait for the erasure's lock on the user"
        erasure.commit()
    writer.join(30)
    assert not writer.is_alive() and results
    assert results[0].new == [] and results[0].erased_user == ["r-1", "r-2", "r-3"]
    assert not _user_exists(driver, user)
    left = driver.execute_query(
        "MATCH (e:Event) WHERE e.user_id = $u RETURN count(e) AS n", u=user
    ).records[0]["n"]
    assert left == 0


@pytest.mark.parametrize("first_erasure", [True, False], ids=["first-erasure", "salted"])
@pytest.mark.parametrize("known", [True, False], ids=["known-user", "new-user"])
def test_an_erasure_waiting_on_an_event_write_erases_what_it_wrote(
    shop: Driver, known: bool, first_erasure: bool
) -> None:
    driver = shop
    if not first_erasure:
        users.delete_user(driver, "er-earlier")  # the graph's salt exists already
    user = "er-race-2"
    if known:
        assert write_events(driver, _events(user, "k")).new
    salts = driver.execute_query("MATCH (k:ErasureSalt) RETURN k.value AS v").records
    salt = salts[0]["v"] if salts else None
    rows = [
        {
            "id": e.id,
            "user_id": e.user_id,
            "type": e.type,
            "item_id": e.item_id,
            "query": "vemo lira" if e.query else None,  # a query nobody searched before
            "query_text": "vemo lira" if e.query else None,
            "ts": e.ts,
            "id_hash": users.id_hash(user, salt) if salt else None,
        }
        for e in _events(user, "w")
    ]
    done: list[users.Erasure] = []
    with driver.session() as session:
        events_tx = session.begin_transaction()
        events_tx.run(
            queries.load("events/merge_events"), {"rows": rows, "batch": "b", "now": time.time()}
        ).consume()
        eraser = threading.Thread(target=lambda: done.append(users.delete_user(driver, user)))
        assert _blocked(eraser), "the erasure must wait for the event write's lock on the user"
        events_tx.commit()
    eraser.join(30)
    assert not eraser.is_alive() and done
    before = 3 if known else 0
    assert (done[0].users, done[0].events, done[0].queries) == (1, 3 + before, 1 + before // 3)
    assert not _user_exists(driver, user)
    leftovers = driver.execute_query(
        "OPTIONAL MATCH (e:Event {user_id: $u}) WITH count(e) AS events "
        "OPTIONAL MATCH (q:Query) WHERE q.id IN ['kalo zute', 'vemo lira'] "
        "RETURN events, count(q) AS queries",
        u=user,
    ).records[0]
    assert (leftovers["events"], leftovers["queries"]) == (0, 0)
    assert users.is_erased(driver, user)
