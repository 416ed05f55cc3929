"""Faults of issue 18 against a real API process (``dpgcn serve`` on a loopback port) with the
real Neo4j, Redis and a trained model: an erasure aimed at ``u11/`` never reaches ``u11``;
200 MB bodies are refused unread; unknown key ids never read Neo4j per request; known keys
keep working from the snapshot through a Neo4j outage; NaN is a 422 that logs nothing of the
request; and every operation, called with awkward ids, answers no 5xx and no 3xx.

Measured figures of these runs are in docs/reliability.md."""

from __future__ import annotations

import ast
import contextlib
import json
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from neo4j import Driver

from api.main import create_app
from dpgcn import neo4j_server, services
from dpgcn.settings import get_settings
from tests.integration.api_keys import api_keys_fixture, auth  # noqa: F401
from tests.integration.api_process import Api, serve, wait_ready

pytestmark = pytest.mark.integration

Keys = dict[str, str]
MB = 1 << 20
#: The API process re-reads its key table this often (and at most this often for misses).
KEY_PERIOD_S = 1.0
#: Seconds the API process's popular items stay fresh.
POPULAR_S = 1.0


@pytest.fixture(scope="module")
def api(
    trained_model: str, api_keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """``dpgcn serve`` as its own process, logging to ``api.log``."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    with serve(
        log,
        DPGCN_API_KEY_CACHE_S=str(KEY_PERIOD_S),
        DPGCN_API_KEY_MISS_REFRESH_S=str(KEY_PERIOD_S),
        DPGCN_API_POPULAR_CACHE_S=str(POPULAR_S),
    ) as running:
        yield running


def _an_item(driver: Driver) -> str:
    return str(driver.execute_query("MATCH (i:Item) RETURN i.id AS id LIMIT 1").records[0]["id"])


def _user(driver: Driver, user: str) -> bool:
    return bool(driver.execute_query("MATCH (u:User {id: $u}) RETURN u", u=user).records)


# ------------------------------------------------------------------ #1 erasure of u11/


def test_no_delete_aimed_at_u11_slash_erases_u11(api: Api, api_keys: Keys, driver: Driver) -> None:
    write = auth(api_keys["write"])
    item = _an_item(driver)
    keep, slash = "flt-u11", "flt-u11/"
    event = {"id": uuid.uuid4().hex, "user_id": keep, "type": "view", "item_id": item}
    with httpx.Client(base_url=api.url, follow_redirects=True, timeout=30) as client:
        posted = client.post("/v1/events", json={"events": [{**event, "ts": time.time()}]},
                             headers=write)  # fmt: skip
        assert posted.status_code == 200 and posted.json()["accepted"] == 1, posted.text
        # the id rule: an id ending in '/' is no longer accepted ...
        refused = client.post(
            "/v1/events",
            json={"events": [{**event, "id": uuid.uuid4().hex, "user_id": slash, "ts": 2e9}]},
            headers=write,
        )
        assert refused.status_code == 422 and "'/' is not allowed" in refused.text
        # ... but one may be stored from before the rule
        driver.execute_query(
            "MATCH (i:Item {id: $i}) CREATE (:User {id: $u})-[:VIEWED {count: 1, ts: 1.0e9, "
            "weight: 1.0}]->(i)",
            u=slash,
            i=item,
        )
        for path in (
            "/v1/users/" + quote(slash, safe=""),  # u11%2F: what a careful client sends
            "/v1/users/flt-u11%2f",
            "/v1/users/" + slash,  # unescaped
            "/v1/users/flt-u11%2F%2E%2E",
        ):
            r = client.delete(path, headers=write)
            assert r.status_code == 404, (path, r.status_code, r.text)
            assert not r.history, (path, [h.status_code for h in r.history])
        assert _user(driver, keep) and _user(driver, slash)
        # no redirect on /v1, whatever the client
        with socket.create_connection((api.host, api.port), timeout=10) as s:
            s.sendall(
                f"DELETE /v1/users/{slash} HTTP/1.1\r\nHost: x\r\n"
                f"X-API-Key: {api_keys['write']}\r\nConnection: close\r\n\r\n".encode()
            )
            head = s.recv(4096).split(b"\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 404"), head
        # the stored id outside the rule is erased by body, and only it
        erased = client.post("/v1/users/erase", json={"user_id": slash}, headers=write)
        assert erased.status_code == 200 and erased.json()["erased"] is True, erased.text
        assert not _user(driver, slash) and _user(driver, keep)
        gone = client.delete(f"/v1/users/{keep}", headers=write)
        assert gone.status_code == 200 and gone.json()["erased"] is True
        assert not _user(driver, keep)


# ------------------------------------------------------------------ #5 200 MB bodies


def _post_raw(
    api: Api, path: str, key: str | None, total: int, chunked: bool
) -> tuple[int, bytes, int]:
    """POST a ``total``-byte body (sent while the answer is awaited); returns the status,
    the answer's body and how many bytes were sent before the server stopped reading."""
    sock = socket.create_connection((api.host, api.port), timeout=60)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
    if key is not None:
        head += f"X-API-Key: {key}\r\n"
    sock.sendall((head + "\r\n").encode())
    sent = 0
    stop = threading.Event()

    def feed() -> None:
        nonlocal sent
        block = b"[" * MB
        try:
            while sent < total and not stop.is_set():
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server closed the connection: it read no more
            pass

    sender = threading.Thread(target=feed)
    sender.start()
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "the connection closed without an answer"
            data += chunk
        head_bytes, body = data.split(b"\r\n\r\n", 1)
        length = re.search(rb"(?i)content-length: *(\d+)", head_bytes)
        assert length is not None
        while len(body) < int(length.group(1)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        status = int(head_bytes.split(b" ", 2)[1])
    finally:
        stop.set()
        with contextlib.suppress(OSError):  # (already closed by the server)
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        sender.join(60)
    return status, body, sent


def test_200_mb_bodies_are_refused_unread(api: Api, api_keys: Keys) -> None:
    size = 200 * MB
    before = api.rss_mib()
    peak = before
    sampling = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not sampling.is_set():
            peak = max(peak, api.rss_mib())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    results: list[tuple[int, bytes, int]] = []
    try:
        # four at once without a key: 401, never read
        threads = [
            threading.Thread(
                target=lambda: results.append(_post_raw(api, "/v1/events", None, size, False))
            )
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert [r[0] for r in results] == [401] * 4, [r[0] for r in results]
        with_key = [
            _post_raw(api, "/v1/events", api_keys["write"], size, chunked=False),
            _post_raw(api, "/v1/events", api_keys["write"], size, chunked=True),
            _post_raw(api, "/v1/users/erase", api_keys["write"], size, chunked=True),
        ]
    finally:
        sampling.set()
        sampler.join(10)
    assert [r[0] for r in with_key] == [413] * 3, [r[0] for r in with_key]
    for _status, body, sent in [*results, *with_key]:
        assert len(body) < 200, body[:200]
        assert sent < size, "the server read a whole 200 MB body"
    grew = peak - before
    print(f"200 MB bodies: RSS {before:.1f} -> peak {peak:.1f} MiB (+{grew:.1f})")
    assert grew < 50, grew
    # the API still answers
    assert httpx.get(api.url + "/health", timeout=10).status_code == 200


# ------------------------------------------------------------------ #5/#6 unknown key ids

FLOOD = r"""
import http.client, secrets, sys, threading, time
host, port, seconds, threads = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
counts, lock = {}, threading.Lock()
def run():
    conn = http.client.HTTPConnection(host, port, timeout=30)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        key = f"dpgcn_{secrets.token_hex(6)}_{secrets.token_hex(32)}"
        path = "/v1/users/u1/recommendations?explain=false"
        conn.request("GET", path, headers={"X-API-Key": key})
        r = conn.getresponse()
        r.read()
        with lock:
            counts[r.status] = counts.get(r.status, 0) + 1
workers = [threading.Thread(target=run) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(counts)
"""


def _p50_ms(api: Api, key: str, seconds: float) -> tuple[float, int]:
    """Median latency (ms) of back-to-back valid-key recommendation requests."""
    times: list[float] = []
    with httpx.Client(base_url=api.url, headers=auth(key), timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = client.get("/v1/users/u2/recommendations", params={"explain": "false"})
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
    return statistics.median(times), len(times)


def _flood(api: Api, key: str, threads: int, seconds: float = 6.0) -> dict[str, Any]:
    """16 processes of ``threads`` connections each sending requests with random unknown key
    ids back to back, while the valid key's median latency is measured."""
    reads_before = api.metric("dpgcn_api_key_table_reads_total")
    began = time.monotonic()
    flood = [
        subprocess.Popen(
            [sys.executable, "-c", FLOOD, api.host, str(api.port), str(seconds), str(threads)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(16)
    ]
    try:
        time.sleep(1.0)
        p50, n = _p50_ms(api, key, seconds - 2.0)
    finally:
        outs = [p.communicate(timeout=60)[0] for p in flood]
    counts: dict[int, int] = {}
    for out in outs:
        for status, c in ast.literal_eval(out.strip()).items():
            counts[status] = counts.get(status, 0) + c
    return {
        "p50": p50,
        "n": n,
        "counts": counts,
        "elapsed": time.monotonic() - began,
        "reads": api.metric("dpgcn_api_key_table_reads_total") - reads_before,
    }


def test_unknown_key_ids_never_read_neo4j_per_request(api: Api, api_keys: Keys) -> None:
    """Unknown ids cost no Neo4j read each: the key table is read every KEY_PERIOD_S and at
    most once more per KEY_PERIOD_S for all the unknown ids together, whose requests wait for
    that read (so a flooding client slows itself down), and the valid key's median latency
    stays within 2x."""
    key = api_keys["read"]
    base_p50, _ = _p50_ms(api, key, 3.0)
    threads = 8
    f = _flood(api, key, threads)
    unknown = sum(f["counts"].values())
    print(
        f"unknown-id flood (16 processes x {threads} connections, back to back): {unknown} "
        f"requests {f['counts']} in {f['elapsed']:.1f} s, {f['reads']:.0f} key table reads; "
        f"valid-key p50 {base_p50:.2f} ms alone, {f['p50']:.2f} ms ({f['n']} requests) during"
    )
    assert set(f["counts"]) == {401} and unknown >= 16 * threads * 2, f["counts"]
    # periodic reads (every KEY_PERIOD_S) plus at most one per KEY_PERIOD_S for misses
    assert f["reads"] <= 2 * f["elapsed"] / KEY_PERIOD_S + 2, f["reads"]
    assert f["p50"] < 2 * base_p50 + 1.0, (base_p50, f["p50"])


# ------------------------------------------------------------------ #6 Neo4j outage


def test_known_keys_keep_working_through_a_neo4j_outage(api: Api, api_keys: Keys) -> None:
    spec = services.neo4j_spec(get_settings())
    users = ["u1", "u2", "u3", "u4", "u5"]
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for u in users:
            r = client.get(f"/v1/users/{u}/recommendations?explain=false",
                           headers=auth(api_keys["read"]))  # fmt: skip
            assert r.status_code == 200 and r.json()["personalized"], r.text
        assert neo4j_server.stop(spec)
        try:
            time.sleep(3 * KEY_PERIOD_S + 0.5)  # the key table's refreshes fail meanwhile
            assert api.metric('dpgcn_api_key_table_reads_total{result="failed"}') >= 1
            took: list[float] = []
            for _ in range(3):
                for scope in ("read", "write", "admin"):
                    for u in users:
                        t0 = time.perf_counter()
                        r = client.get(f"/v1/users/{u}/recommendations?explain=false&k=5",
                                       headers=auth(api_keys[scope]))  # fmt: skip
                        took.append(time.perf_counter() - t0)
                        assert r.status_code == 200, (scope, u, r.status_code, r.text)
                        assert r.json()["personalized"] is True
                time.sleep(KEY_PERIOD_S)
            t0 = time.perf_counter()
            unknown = client.get("/v1/users/u1/recommendations?explain=false",
                                 headers=auth(f"dpgcn_{secrets.token_hex(6)}_x"))  # fmt: skip
            unknown_s = time.perf_counter() - t0
            assert unknown.status_code == 401
            assert client.get("/ready").status_code == 503
            print(
                f"Neo4j down: {len(took)} known-key requests all 200, median "
                f"{statistics.median(took) * 1000:.1f} ms, max {max(took) * 1000:.1f} ms; "
                f"unknown id 401 in {unknown_s * 1000:.0f} ms"
            )
            assert max(took) < 1.0 and unknown_s < 10.0
        finally:
            neo4j_server.start(spec)
    wait_ready(api)


# ------------------------------------------------------------------ unknown users, a burst


def test_a_burst_of_unknown_users_costs_one_popular_query_per_expiry(
    api: Api, api_keys: Keys
) -> None:
    """Each unknown user's answer is the popular list, an aggregation over the whole graph.
    Under 16 concurrent clients for four of its POPULAR_S lifetimes, no request loads it
    (each gets it fresh or stale), one background query per expiry refreshes it, and every
    answer is the same list."""
    read = auth(api_keys["read"])
    path = "/v1/users/{}/recommendations?k=5&explain=false"
    with httpx.Client(base_url=api.url, timeout=30) as client:
        # an earlier test's erasure emptied the cache: this request loads the list again
        warm = client.get(path.format("nobody-warm"), headers=read).json()
    assert warm["strategy"] == "popular" and warm["items"], warm

    def count(result: str) -> float:
        return api.metric(f'dpgcn_api_cache_total{{cache="popular_items",result="{result}"}}')

    before = {r: count(r) for r in ("miss", "stale", "refresh")}
    answers: list[tuple[int, str | None, tuple[str, ...]]] = []
    seconds = 4 * POPULAR_S

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=api.url, timeout=30) as c:
            end, i = time.monotonic() + seconds, 0
            while time.monotonic() < end:
                r = c.get(path.format(f"nobody-{n}-{i}"), headers=read)
                body = r.json() if r.status_code == 200 else {}
                items = tuple(x["item_id"] for x in body.get("items", []))
                answers.append((r.status_code, body.get("strategy"), items))
                i += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.monotonic() - t0
    after = {r: count(r) for r in ("miss", "stale", "refresh")}
    refreshes = after["refresh"] - before["refresh"]
    print(
        f"{len(answers)} unknown-user requests in {elapsed:.1f} s: "
        f"{after['stale'] - before['stale']:.0f} served stale, {refreshes:.0f} refreshes, "
        f"{after['miss'] - before['miss']:.0f} loads for a request"
    )
    assert {(status, strategy) for status, strategy, _ in answers} == {(200, "popular")}
    assert len({items for _, _, items in answers}) == 1 and answers[0][2] == tuple(
        x["item_id"] for x in warm["items"]
    )
    assert after["miss"] == before["miss"]
    assert after["stale"] > before["stale"]
    assert 2 <= refreshes <= elapsed / POPULAR_S + 2, refreshes


# ------------------------------------------------------------------ #7 NaN


def test_non_finite_numbers_are_422_and_leave_no_trace_in_the_log(
    api: Api, api_keys: Keys, driver: Driver
) -> None:
    secret_user = "flt-nan-" + secrets.token_hex(4)
    item = _an_item(driver)
    head = '{"events": [{"id": "nan-1", "user_id": "%s", "type": "view", "item_id": "%s", '
    h = {**auth(api_keys["write"]), "content-type": "application/json"}
    for ts in ("NaN", "Infinity", "-Infinity"):
        body = head % (secret_user, item) + f'"ts": {ts}}}]}}'
        r = httpx.post(api.url + "/v1/events", content=body, headers=h, timeout=30)
        assert r.status_code == 422, (ts, r.status_code, r.text)
        assert "finite" in r.text and len(r.content) < 1000
    time.sleep(0.5)
    log = api.log.read_text(errors="replace")
    assert secret_user not in log
    assert "Traceback" not in log and "Internal Server Error" not in log
    assert not _user(driver, secret_user)


# ------------------------------------------------------------------ every operation, awkward ids
# (last: it erases and changes users the other tests use)

SCHEMA = schemathesis.openapi.from_dict(create_app().openapi())
OPERATIONS = sorted(
    (method.upper(), path)
    for path, methods in create_app().openapi()["paths"].items()
    for method in methods
)
#: Ids a client might put in a path: with '/', dot segments, escapes, unicode, 128/129 chars.
IDS = st.sampled_from(
    ["u11/", ".", "..", "%2F", "a%2Fb", "u1/..", "ü", "東京", "a b", "-x", "", "u1",
     "x" * 128, "x" * 129, "v1:2.3_4-5", "u1?k=1", "u1#x"]
) | st.text(max_size=130)  # fmt: skip


def _path(template: str, values: dict[str, str], encode: bool) -> str | None:
    """The path with ``values`` put in, percent-encoded; ``encode`` False: as a naive client
    would (``/`` left as is), None when that makes dot segments (which clients rewrite)."""
    out = template
    for name, value in values.items():
        if not encode and any(seg in (".", "..") for seg in value.split("/")):
            return None
        out = out.replace("{" + name + "}", quote(value, safe="" if encode else "/"))
    return out


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_no_5xx_and_no_3xx_with_awkward_ids(
    api: Api, api_keys: Keys, method: str, path: str
) -> None:
    operation = SCHEMA[path][method]
    names = re.findall(r"\{(\w+)\}", path)
    headers = auth(api_keys["admin"])
    client = httpx.Client(base_url=api.url, timeout=60, follow_redirects=False)

    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), ident=IDS, encode=st.booleans())
    def check(case: Any, ident: str, encode: bool) -> None:
        url = _path(path, {n: ident for n in names}, encode) if names else path
        if url is None:
            return
        kwargs = case.as_transport_kwargs(headers=headers)
        body = kwargs.get("json")
        sent = dict(kwargs.get("headers") or {})
        if body is not None:
            sent["content-type"] = "application/json"
        r = client.request(
            method,
            url,
            headers=sent,
            params=kwargs.get("params"),
            content=json.dumps(body, allow_nan=True) if body is not None else None,
        )
        assert r.status_code < 500, (method, url, r.status_code, r.text[:300])
        if url.startswith("/v1"):
            assert not 300 <= r.status_code < 400, (method, url, r.status_code)
        assert len(r.content) < 100_000 or path == "/metrics" or r.status_code == 200

    try:
        check()
    finally:
        client.close()
