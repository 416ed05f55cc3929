"""Load benchmark of the recommendation API: top-10 for random users of a large catalogue.

Setup (synthetic; no training): ``--users`` users (1M) with static features,
``--events-per-user`` random clicks and ``--searches-per-user`` searches each (Zipf-drawn),
``--items`` items (100k) in 50 categories and ``--queries`` search queries (50k), loaded
with ``graphstore.ingest.load_source``; random-but-valid embeddings (``N(0, 1/D)``, D=64):
items and queries through ``graphstore.writeback.write_embeddings``, users through the same write
statement (``writeback/set_embeddings``) with the user vector index dropped first (serving
never queries it; it made most of the write's cost); then complete/activate, and a random DDPG
policy saved with ``graphstore.policies.save_policy`` so the product path runs the policy
adjustment. The API reads all of it from Neo4j as in production. The load is skipped when
the active model already is this benchmark's version.

Load generator: ``wrk`` (Debian package) with a Lua script drawing a uniformly random user
per request; fixed concurrency (``--concurrency`` connections, 1 thread), ``--duration``
seconds per scenario after a 5 s warm-up. Every server runs as ``--workers`` uvicorn worker
processes (default 1: on the 2-core machine 1 beat 2, docs/benchmarks-api.md), next to
Neo4j and wrk on this machine, so all of them
share the same cores; the API is measured only once every worker has loaded its snapshot.

Scenarios, in the same run:

* ``hello``          — a hello-world FastAPI route (the HTTP stack's ceiling);
* ``naive``          — the naive path: the same user read from Neo4j, then brute-force scoring
                       of all items (``M @ u`` and a full ``argsort``) in FastAPI's thread pool
                       with NumPy's default BLAS threads;
* ``naive-blas1``    — the same with one BLAS thread (isolates the oversubscription trap);
* ``api``            — ``GET /v1/users/{id}/recommendations?k=10&explain=false``: API key,
                       the user from the in-memory snapshot, policy adjustment and scoring in
                       batches, exact top-k;
* ``api-explain``    — the same with explanations (the README's request);
* ``suggest``        — ``GET /v1/users/{id}/query-suggestions?k=10`` for random users;
* ``similar``        — ``GET /v1/items/{id}/similar?k=10`` for random items.

``--profile N`` instead times N sequential in-process requests by part (no HTTP).

    export DPGCN_HOME=… NEO4J_BOLT_PORT=… (your services)   # then
    .venv/bin/python bench/bench_api.py                       # 1M users, 100k items, 60 s
    .venv/bin/python bench/bench_api.py --users 50000 --items 100000 --profile 300
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402

GENDERS = ("F", "M")
OCCUPATIONS = ("student", "engineer", "artist", "teacher", "manager", "retired", "other")
#: First words of the benchmark's query texts ("racing 17", …).
TOPICS = ("racing", "puzzle", "strategy", "shooter", "sports", "tv", "phone", "laptop", "camera")

# ----------------------------------------------------------------------------- baseline app


def baseline_app() -> FastAPI:
    """``/hello`` and ``/naive/{user_id}`` (brute force), for ``uvicorn --factory``."""
    from contextlib import asynccontextmanager

    from api.main import TELEMETRY_OFF
    from dpgcn.services import neo4j_connection
    from dpgcn.settings import get_settings
    from graphstore import serving, writeback
    from graphstore.driver import connect

    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        settings = get_settings()
        conn = neo4j_connection(settings)
        driver = connect(conn.uri, conn.user, conn.password, max_connection_pool_size=64)
        active = writeback.get_active(driver)
        assert active is not None
        vectors = serving.get_item_vectors(driver, active)
        state.update(
            driver=driver, active=active, ids=np.asarray(vectors.ids), matrix=vectors.matrix
        )
        yield
        driver.close()

    # the API's framework settings (FastAPI's OpenTelemetry hooks off, as in api.main)
    app = FastAPI(lifespan=lifespan, telemetry=TELEMETRY_OFF)  # type: ignore[arg-type]

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/naive/{user_id}")
    def naive(user_id: str, k: int = 10) -> dict[str, Any]:
        user = serving.get_user_state(state["driver"], user_id, state["active"])
        if user.vector is None:
            return {"items": []}
        scores = state["matrix"] @ user.vector
        order = np.argsort(-scores)
        seen = user.seen
        top = [int(j) for j in order[: k + len(seen)] if state["ids"][j] not in seen][:k]
        return {
            "items": [{"item_id": str(state["ids"][j]), "score": float(scores[j])} for j in top]
        }

    return app


# ----------------------------------------------------------------------------- data


def load_graph(
    users: int, items: int, dim: int, events: int, seed: int, queries: int = 0, searches: int = 0
) -> str:
    """Load the synthetic catalogue and activate random embeddings; returns the version."""
    import torch

    from dpgcn.services import neo4j_connection
    from dpgcn.settings import get_settings
    from graphstore import ingest, model, policies, writeback
    from graphstore.driver import QuietList, connect, delete_all, execute
    from graphstore.records import GraphSource
    from training.config import PolicyConfig
    from training.policy import DDPGPolicy

    version = f"bench-api-{users}-{items}-{dim}-{events}-{seed}"
    if queries:
        version += f"-q{queries}-{searches}"
    conn = neo4j_connection(get_settings())
    with connect(conn.uri, conn.user, conn.password) as driver:
        active = writeback.get_active(driver)
        if active is not None and active.version == version:
            print(f"graph already loaded ({version})", flush=True)
            return version
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        delete_all(driver)
        cats = [{"id": f"c{c}", "name": f"Category {c}", "parent": None} for c in range(50)]
        user_rows = [
            {
                "id": f"u{u}",
                "age": int(a),
                "gender": GENDERS[g],
                "occupation": OCCUPATIONS[o],
                "consent": True,
            }
            for u, a, g, o in zip(
                range(users),
                rng.integers(16, 80, users),
                rng.integers(0, 2, users),
                rng.integers(0, len(OCCUPATIONS), users),
                strict=True,
            )
        ]
        item_rows = [{"id": f"i{i}", "title": f"Item {i}", "price": 10.0} for i in range(items)]
        pop = rng.zipf(1.3, users * events) % items
        clicks = [
            {
                "user": f"u{n // events}",
                "target": f"i{int(i)}",
                "count": 1,
                "ts": 1.7e9 + n,
                "weight": 1.0,
            }
            for n, i in enumerate(pop)
        ]
        query_rows = [
            {"id": f"q{j}", "text": f"{TOPICS[j % len(TOPICS)]} {j}"} for j in range(queries)
        ]
        searched = rng.zipf(1.3, users * searches) % max(queries, 1) if queries else []
        search_rows = [
            {
                "user": f"u{n // searches}",
                "target": f"q{int(q)}",
                "count": 1,
                "ts": 1.7e9 + n,
                "weight": 1.0,
            }
            for n, q in enumerate(searched)
        ]
        interactions = {model.CLICKED: clicks}
        if search_rows:
            interactions[model.SEARCHED] = search_rows
        source = GraphSource(
            name="bench-api",
            users=user_rows,
            items=item_rows,
            queries=query_rows,
            categories=cats,
            interactions=interactions,
            item_categories=[{"item": f"i{i}", "category": f"c{i % 50}"} for i in range(items)],
        )
        ingest.load_source(driver, source, batch_size=10_000)
        t1 = time.perf_counter()
        print(f"loaded graph in {t1 - t0:.0f}s", flush=True)
        writeback.begin_version(driver, version, dim, "random")
        slot = str(writeback.get_model(driver, version)["slot"])  # type: ignore[index]
        item_vecs = rng.normal(0, 1 / np.sqrt(dim), (items, dim))
        writeback.write_embeddings(
            driver,
            version,
            model.ITEM,
            [f"i{j}" for j in range(items)],
            item_vecs,
            batch_size=5000,
        )
        print(f"wrote {items} Item vectors ({time.perf_counter() - t1:.0f}s)", flush=True)
        if queries:
            writeback.write_embeddings(
                driver,
                version,
                model.QUERY,
                [f"q{j}" for j in range(queries)],
                rng.normal(0, 1 / np.sqrt(dim), (queries, dim)),
                batch_size=5000,
            )
            print(f"wrote {queries} Query vectors ({time.perf_counter() - t1:.0f}s)", flush=True)
        # Users: production's write statement (writeback/set_embeddings) without the user
        # vector index, which serving never queries and which would cost most of the write.
        execute(
            driver,
            "writeback/drop_vector_index",
            {"name": model.vector_index_name(model.USER, slot)},
        )
        prop = model.embedding_property(slot)
        for start in range(0, users, 10_000):
            n = min(10_000, users - start)
            vecs = rng.normal(0, 1 / np.sqrt(dim), (n, dim)).astype(np.float32)
            ids = QuietList(f"u{start + j}" for j in range(n))
            execute(
                driver,
                "writeback/set_embeddings",
                {"ids": ids, "vectors": vecs.astype(np.float64), "version": version},
                label=model.USER,
                property=prop,
            )
            if (start // 10_000) % 10 == 9:
                print(f"  {start + n} User vectors ({time.perf_counter() - t1:.0f}s)", flush=True)
        print(f"wrote {users} User vectors ({time.perf_counter() - t1:.0f}s)", flush=True)
        counts = {"User": users, "Item": items} | ({"Query": queries} if queries else {})
        writeback.complete_version(driver, version, counts, {})
        writeback.activate_version(driver, version)
        policy = DDPGPolicy(2 * dim, dim, PolicyConfig(), seed=seed, alpha=0.5, scale=1.0)
        buf = io.BytesIO()
        torch.save(policy.state_dict(), buf)
        policies.save_policy(driver, version, buf.getvalue(), {"source": "bench"})
        print(f"activated {version} in {time.perf_counter() - t0:.0f}s total", flush=True)
    return version


def create_key() -> str:
    from dpgcn.services import neo4j_connection
    from dpgcn.settings import get_settings
    from graphstore import apikeys
    from graphstore.driver import connect

    conn = neo4j_connection(get_settings())
    with connect(conn.uri, conn.user, conn.password) as driver:
        return apikeys.create_key(driver, "read", name="bench")[1]


# ----------------------------------------------------------------------------- servers + wrk


def start_server(
    target: str, port: int, env: dict[str, str], factory: bool, workers: int = 1
) -> subprocess.Popen:  # type: ignore[type-arg]
    # api.server: uvicorn with TCP_NODELAY on the listening socket (see its docstring), for
    # the baselines and the API alike
    argv = [sys.executable, "-m", "api.server", "--app", target, "--port", str(port)]
    argv += ["--log-level", "warning", "--workers", str(workers)]
    argv += ["--factory"] if factory else []
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 900
    ready_in_a_row = 0
    while time.monotonic() < deadline:
        try:
            if factory:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2):
                    return proc
            # the API: wait until every worker serves from its snapshot (each answer comes
            # from some worker; 10 × workers answers in a row say all have loaded)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:
                snapshot = json.loads(r.read()).get("snapshot") or {}
            ready_in_a_row = ready_in_a_row + 1 if snapshot.get("ok") else 0
            if ready_in_a_row >= 10 * workers:
                return proc
            time.sleep(0.05 if ready_in_a_row else 1.0)
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server {target} exited ({proc.returncode})") from None
            time.sleep(0.5)
    raise SystemExit(f"server {target} did not start")


def stop_server(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


LUA = """
math.randomseed(%(seed)d)
wrk.headers["X-API-Key"] = "%(key)s"
request = function()
  local u = math.random(0, %(users)d - 1)
  return wrk.format("GET", string.format("%(path)s", u))
end
"""


def run_wrk(
    url: str, path: str, key: str, users: int, seconds: int, conns: int, server_pid: int
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % {"seed": 1, "key": key, "users": users, "path": path})
        script = f.name
    base = ["wrk", "-t1", f"-c{conns}", "--latency", "--timeout", "5s", "-s", script, url]
    subprocess.run(
        [*base[:1], "-t1", f"-c{conns}", "-d5s", "-s", script, url], capture_output=True, check=True
    )  # warm-up
    before = _cpu(server_pid)
    out = subprocess.run([*base, f"-d{seconds}s"], capture_output=True, text=True, check=True)
    after = _cpu(server_pid)
    os.unlink(script)
    result = parse_wrk(out.stdout)
    n = max(result["requests"], 1)
    busy = after["machine_busy"] - before["machine_busy"]
    total = after["machine_total"] - before["machine_total"]
    result["cpu"] = {
        "machine_busy_pct": round(100 * busy / max(total, 1e-9), 1),
        "server_ms_per_request": round(1000 * (after["server"] - before["server"]) / n, 3),
        "wrk_ms_per_request": round(1000 * (after["children"] - before["children"]) / n, 3),
        "server_processes": after["processes"],
    }
    return result


def _cpu(root: int) -> dict[str, float]:
    """CPU seconds so far: the whole machine (busy and total, /proc/stat), the server's
    process tree (``root`` and its descendants, all threads) and this script's finished
    children (wrk)."""
    import resource

    tick = os.sysconf("SC_CLK_TCK")
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry.name)] = int(stat[1])
        used[int(entry.name)] = (int(stat[11]) + int(stat[12])) / tick
    tree = {root}
    for _ in range(3):
        tree |= {p for p, pp in parent.items() if pp in tree}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "machine_busy": (sum(fields) - idle) / tick,
        "machine_total": sum(fields) / tick,
        "server": sum(used.get(p, 0.0) for p in tree),
        "children": children.ru_utime + children.ru_stime,
        "processes": float(len(tree)),
    }


def scoring_batch_mean(url: str) -> float | None:
    """Mean scoring batch size from the server's /metrics (one worker's, when several)."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    total = re.search(r"^dpgcn_api_scoring_batch_size_sum ([\d.e+]+)$", text, re.M)
    count = re.search(r"^dpgcn_api_scoring_batch_size_count ([\d.e+]+)$", text, re.M)
    if not total or not count or float(count.group(1)) == 0:
        return None
    return float(total.group(1)) / float(count.group(1))


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(text: str) -> dict[str, Any]:
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.M))
    total = re.search(r"(\d+) requests in", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "p50_ms": _ms(lat["50"]) if "50" in lat else float("nan"),
        "p90_ms": _ms(lat["90"]) if "90" in lat else float("nan"),
        "p99_ms": _ms(lat["99"]) if "99" in lat else float("nan"),
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(int(g) for g in sock.groups()) if sock else 0),
        "raw": text,
    }


def scoring_only(items: int, dim: int, threads: int, seconds: float) -> dict[str, Any]:
    """In-process: per-request scoring of ``items`` vectors from ``threads`` threads (FastAPI's
    thread pool size is 40; the load uses 32), no HTTP, no Neo4j. Variants: the naive full
    ``argsort`` with NumPy's default BLAS threads, the same with 1 BLAS thread, and serving's
    ``argpartition`` with 1 BLAS thread."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info, threadpool_limits

    rng = np.random.default_rng(0)
    matrix = rng.normal(0, 1 / np.sqrt(dim), (items, dim)).astype(np.float32)
    users = rng.normal(0, 1 / np.sqrt(dim), (256, dim)).astype(np.float32)
    default_threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    def naive(u: np.ndarray) -> np.ndarray:
        return np.argsort(-(matrix @ u))[:10]

    def fast(u: np.ndarray) -> np.ndarray:
        scores = matrix @ u
        top = np.argpartition(-scores, 9)[:10]
        return top[np.argsort(-scores[top])]

    def run(fn: Any) -> dict[str, float]:
        lat: list[float] = []
        stop = time.perf_counter() + seconds

        def loop(seed: int) -> None:
            j = seed
            while time.perf_counter() < stop:
                t = time.perf_counter()
                fn(users[j % len(users)])
                lat.append(time.perf_counter() - t)
                j += 1

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(loop, range(threads)))
        arr = np.asarray(lat) * 1000
        return {
            "ops_per_s": len(arr) / seconds,
            "p50_ms": float(np.percentile(arr, 50)),
            "p99_ms": float(np.percentile(arr, 99)),
        }

    out = {f"argsort, BLAS threads {default_threads}": run(naive)}
    with threadpool_limits(limits=1, user_api="blas"):
        out["argsort, BLAS threads 1"] = run(naive)
        out["argpartition, BLAS threads 1 (serving)"] = run(fast)
    return out


def profile(users: int, n: int, seed: int) -> None:
    """In-process cost of one recommendation request by part (sequential, one thread, no
    HTTP), on the loaded graph: the Neo4j path as it was, then the snapshot path."""
    import asyncio
    import hashlib
    import uuid

    from fastapi.encoders import jsonable_encoder
    from threadpoolctl import threadpool_limits

    from api import metrics
    from api.changes import Changes
    from api.explain import describe, explain_rows
    from api.recommender import Recommender
    from api.scoring import Scorer, Want, _Ask, rank, seen_arrays
    from api.serve import Ask, answer_model, to_said
    from api.snapshot import load_snapshot
    from dpgcn.services import neo4j_connection
    from dpgcn.settings import get_settings
    from graphstore import apikeys, serving
    from graphstore.driver import connect

    threadpool_limits(limits=1, user_api="blas")
    conn = neo4j_connection(get_settings())
    driver = connect(conn.uri, conn.user, conn.password)
    rec = Recommender(driver)
    active = rec.active()
    assert active is not None
    index = rec.index(active)
    policy = rec.policy(active)
    rng = np.random.default_rng(seed)
    sample = [f"u{u}" for u in rng.integers(0, users, n)]
    stored = apikeys.StoredKey("k", hashlib.sha256(b"s").hexdigest(), "read", False)
    parts: dict[str, list[float]] = {}

    def timed(name: str, fn: Any) -> Any:
        t = time.perf_counter()
        out = fn()
        parts.setdefault(name, []).append(time.perf_counter() - t)
        return out

    for user in sample:
        timed(
            "auth (cached key: split + sha256 check)",
            lambda: (apikeys.split_key("dpgcn_k_s"), apikeys.verify(stored, "s")),
        )
        state = timed(
            "Neo4j: user vector + history", lambda u=user: serving.get_user_state(driver, u, active)
        )
        vec = state.vector
        assert vec is not None and policy is not None
        seen_rows = [index.position[i] for i in state.recent if i in index.position]
        ranked = timed(
            "policy actor + scoring (api.scoring.rank, 1 user)",
            lambda v=vec, s=seen_rows: rank(
                index, v[None], [Want(10, True)], seen_arrays([s]), policy.adjuster
            ),
        )
        top, scores = ranked[0]
        items = [
            (index.ids[r], index.titles[r], float(x)) for r, x in zip(top, scores, strict=True)
        ]
        expl = timed(
            "Neo4j: explanations (10 items; the non-personalized answers' way)",
            lambda u=user, it=items: serving.get_explanations(
                driver, u, [i for i, _, _ in it], active.version
            ),
        )
        body = timed(
            "response model (pydantic)",
            lambda u=user, it=items, e=expl: answer_model(
                Ask(u),
                active.version,
                "policy",
                1,
                it,
                [to_said(describe(i, e.get(i), "policy")) for i, _, _ in it],
                True,
            ),
        )
        timed(
            "JSON: FastAPI default (jsonable_encoder + json.dumps)",
            lambda b=body: json.dumps(
                jsonable_encoder(b), ensure_ascii=False, separators=(",", ":")
            ).encode(),
        )
        timed("JSON: model_dump_json (what the API does now)", lambda b=body: b.model_dump_json())
        timed(
            "metrics + access-log id",
            lambda: (
                metrics.REQUEST_SECONDS.labels("GET", "/r").observe(0.01),
                metrics.REQUESTS.labels("GET", "/r", "200").inc(),
                metrics.RECOMMENDATIONS.labels("policy").inc(),
                metrics.cache_event("api_key", True),
                metrics.cache_event("snapshot", True),
                uuid.uuid4().hex[:16],
            ),
        )
    print(f"Neo4j path, {n} sequential requests for random users (ms per request):")
    for name, values in parts.items():
        arr = np.asarray(values) * 1000
        print(f"  {name:56} mean {arr.mean():7.3f}  p50 {np.median(arr):7.3f}")
    rss_before = _rss_mib()
    t = time.perf_counter()
    snap = load_snapshot(driver, active, index)
    print(
        f"snapshot load: {len(snap.user_pos)} users, {len(snap.seen_rows)} seen items in "
        f"{time.perf_counter() - t:.1f} s; user matrix {snap.users.nbytes / 2**20:.0f} MiB; "
        f"process RSS {rss_before:.0f} -> {_rss_mib():.0f} MiB",
        flush=True,
    )
    scorer = Scorer(Changes(), rec.snapshot_policy, rec.category_rows)
    scorer.snapshot = snap
    scoring_parts(snap, rec, sample)
    t = time.perf_counter()
    for user in sample:
        row = snap.user_pos.get(user)
        if row is not None:
            top, _ = rank(
                snap.items,
                snap.users[row][None],
                [Want(10, True)],
                snap.seen_of(np.asarray([row])),
                None,
            )[0]
            explain_rows(snap.items, snap.links, snap.segment_buys, snap.profile(row), top.tolist())
    per = (time.perf_counter() - t) / len(sample) * 1000
    print(f"ranking (no policy) + explanations from memory, 1 user: {per:.3f} ms per request")
    loop = asyncio.new_event_loop()
    for size in (1, 8, 16, 32, 64):
        batches = [sample[j : j + size] for j in range(0, min(n, 40 * size), size)]
        t = time.perf_counter()
        for batch in batches:
            asks = [_Ask(u, 10, True, None, loop.create_future(), loop) for u in batch]
            assert all(a is not None for a in scorer.score(asks))
        per = (time.perf_counter() - t) / sum(len(b) for b in batches) * 1000
        print(
            f"snapshot scoring (policy + GEMM + block top-10), batch {size:2}: "
            f"{per:.3f} ms per request"
        )
    loop.close()
    driver.close()


def asgi_profile(n: int, concurrency: int) -> None:
    """Framework cost per request, in process (no HTTP, no Neo4j): the app's middleware,
    routing, key check, parameters, hand-off to the scoring thread and response, against a
    stub snapshot of 256 items (scoring negligible), ``concurrency`` callers on one event loop.
    Rows: a hello-world route added to the same app; the recommendations route without and
    with explanations (cached lists after the first pass: the warm-up)."""
    import asyncio

    from api.main import create_app
    from api.recommender import Recommender
    from api.security import KeyCache
    from api.snapshot import Snapshot, item_index
    from graphstore import apikeys
    from graphstore.serving import ItemVectors

    rng = np.random.default_rng(5)
    users, items, dim = 1000, 256, 64
    matrix = rng.normal(size=(items, dim)).astype(np.float32)
    index = item_index(
        "v1",
        ItemVectors(
            [f"i{j}" for j in range(items)],
            [f"Item {j}" for j in range(items)],
            matrix,
            [(f"c{j % 10}",) for j in range(items)],
            [frozenset() for _ in range(items)],
        ),
    )
    app = create_app()
    rec = Recommender(None, snapshot=True)  # type: ignore[arg-type]
    assert rec.scorer is not None
    rec.scorer.snapshot = Snapshot(
        version="v1",
        items=index,
        user_pos={f"u{u}": u for u in range(users)},
        users=rng.normal(size=(users, dim)).astype(np.float32),
        seen_ptr=np.arange(users + 1, dtype=np.int64) * 2,
        seen_rows=rng.integers(0, items, users * 2).astype(np.int32),
        seen_how=np.zeros(users * 2, np.int8),
        searches=[()] * users,
        segment_of=np.full(users, -1, np.int32),
        segment_ids=[],
        links={},
        segment_buys={},
        started=0.0,
    )
    rec.scorer.start()
    app.state.recommender, app.state.driver, app.state.redis = rec, None, None
    keys = KeyCache(None, "neo4j", 1e9)  # type: ignore[arg-type]
    keys._data["k"] = (
        time.monotonic(),
        apikeys.StoredKey("k", apikeys.hash_secret("s"), "read", False),
    )
    app.state.keys = keys

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    async def call(path: str, query: bytes) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80), "headers": [(b"host", b"x"), (b"x-api-key", b"dpgcn_k_s")],
        }  # fmt: skip
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        assert status == [200], status

    async def run(path: str, query: bytes) -> float:
        async def caller(c: int) -> None:
            for j in range(n // concurrency):
                await call(path.replace("{u}", str((c * 31 + j) % users)), query)

        t = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in range(concurrency)))
        return (time.perf_counter() - t) / (n // concurrency * concurrency) * 1e6

    loop = asyncio.new_event_loop()
    route = "/v1/users/u{u}/recommendations"
    rows = [
        ("hello-world route", "/hello", b""),
        ("recommendations, explain=false", route, b"k=10&explain=false"),
        ("recommendations, explanations (README)", route, b"k=10"),
    ]
    print(f"in-process ASGI, {n} requests, {concurrency} concurrent callers (us per request):")
    try:
        for _, path, query in rows:  # warm-up
            loop.run_until_complete(run(path, query))
        for name, path, query in rows:
            print(f"  {name:36} {loop.run_until_complete(run(path, query)):8.1f}", flush=True)
    finally:
        rec.scorer.stop()
        loop.close()


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _timer(parts: dict[str, float]) -> Any:
    def timed(name: str, fn: Any) -> Any:
        t = time.perf_counter()
        out = fn()
        parts[name] = parts.get(name, 0.0) + time.perf_counter() - t
        return out

    return timed


def scoring_parts(snap: Any, rec: Any, sample: list[str]) -> None:
    """Per request, by batch size: the policy actor, the product ``M @ Uᵀ`` of the padded
    item rows, the seen-item mask, serving's exact block top-k, and the alternatives it
    replaced (``argpartition`` per row over all items; a full ``argsort``)."""
    from api.scoring import top_k_batch

    _, adjuster = rec.snapshot_policy(snap.version)
    rows_all = np.asarray([snap.user_pos[u] for u in sample], dtype=np.int64)
    n_items = len(snap.items.ids)
    print("scoring by part, ms per request (1 BLAS thread, float32, 100k items unless noted):")
    for size in (1, 8, 16, 32, 64):
        reps = max(3, 256 // size)
        parts: dict[str, float] = {}
        timed = _timer(parts)
        ks = [10] * size
        for r in range(reps):
            rows = rows_all[(r * size) % len(rows_all) :][:size]
            if len(rows) < size:
                rows = rows_all[:size]
            vecs = snap.users[rows]
            if adjuster is not None:
                hist = np.full((size, adjuster.state_history), -1, np.int64)
                vecs = timed(
                    "policy actor", lambda v=vecs, h=hist: adjuster.adjust(v, snap.items.matrix, h)
                )
            scores = timed(
                "GEMM M @ U.T", lambda v=vecs: snap.items.padded @ np.ascontiguousarray(v.T)
            )

            def mask(sc: np.ndarray = scores, rs: np.ndarray = rows) -> None:
                sc[n_items:] = -np.inf
                for i, row in enumerate(rs):
                    sc[snap.seen(int(row)), i] = -np.inf

            timed("seen mask", mask)
            timed("block top-10 (serving)", lambda sc=scores, kk=ks: top_k_batch(sc, kk))
            timed(
                "argpartition top-10 per user",
                lambda sc=scores: [np.argpartition(-col, 9)[:10] for col in sc.T],
            )
            if size <= 8:
                timed("full argsort (naive)", lambda sc=scores: np.argsort(-sc, axis=0)[:10])
        line = ", ".join(f"{k} {v / reps / size * 1000:.3f}" for k, v in parts.items())
        print(f"  batch {size:2}: {line}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--events-per-user", type=int, default=2)
    p.add_argument("--queries", type=int, default=50_000, help="Query nodes with vectors")
    p.add_argument("--searches-per-user", type=int, default=2)
    p.add_argument("--duration", type=int, default=60)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--port", type=int, default=int(os.environ.get("DPGCN_API_PORT", 8000)) + 50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scenarios", default="hello,naive,api,api-explain")
    p.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes of every server"
    )
    p.add_argument(
        "--profile", type=int, default=0, help="only profile N in-process requests by part"
    )
    p.add_argument(
        "--asgi", type=int, default=0, help="only time N in-process ASGI requests (framework)"
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--scoring-items", type=int, default=100_000)
    p.add_argument("--scoring-seconds", type=float, default=0.0)
    args = p.parse_args()

    def load_graph_of(args: argparse.Namespace) -> None:
        load_graph(
            args.users,
            args.items,
            args.dim,
            args.events_per_user,
            args.seed,
            args.queries,
            args.searches_per_user,
        )

    if args.asgi:
        print(f"load average before: {os.getloadavg()}", flush=True)
        asgi_profile(args.asgi, args.concurrency)
        print(f"load average after: {os.getloadavg()}", flush=True)
        return
    if args.profile:
        print(f"load average before: {os.getloadavg()}", flush=True)
        load_graph_of(args)
        profile(args.users, args.profile, args.seed)
        print(f"load average after: {os.getloadavg()}", flush=True)
        return
    if args.scoring_seconds > 0:
        print(
            f"scoring only: {args.scoring_items} items x {args.dim}, {args.concurrency} threads, "
            f"{args.scoring_seconds:.0f}s each (load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        scoring = scoring_only(args.scoring_items, args.dim, args.concurrency, args.scoring_seconds)
        for name, r in scoring.items():
            print(
                f"  {name:42} {r['ops_per_s']:8.1f} /s  p50 {r['p50_ms']:7.2f} ms"
                f"  p99 {r['p99_ms']:7.2f} ms",
                flush=True,
            )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    load_graph_of(args)
    key = create_key()
    env = {**os.environ, "DPGCN_LOG_LEVEL": "WARNING"}
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    one = {**env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    scenarios: dict[str, tuple[str, bool, dict[str, str], str]] = {
        "hello": ("bench.bench_api:baseline_app", True, env, "/hello?u=%d"),
        "naive": ("bench.bench_api:baseline_app", True, env, "/naive/u%d?k=10"),
        "naive-blas1": ("bench.bench_api:baseline_app", True, one, "/naive/u%d?k=10"),
        "api": ("api.main:app", False, env, "/v1/users/u%d/recommendations?k=10&explain=false"),
        "api-explain": ("api.main:app", False, env, "/v1/users/u%d/recommendations?k=10"),
        "suggest": ("api.main:app", False, env, "/v1/users/u%d/query-suggestions?k=10"),
        "similar": ("api.main:app", False, env, "/v1/items/i%d/similar?k=10"),
    }
    results: dict[str, dict[str, Any]] = {}
    print(
        f"cores: {os.cpu_count()}, uvicorn workers per server: {args.workers}, "
        f"load average before: {os.getloadavg()}",
        flush=True,
    )
    for name in _numbered(args.scenarios.split(",")):
        target, factory, server_env, path = scenarios[name.split("#")[0]]
        t_start = time.perf_counter()
        proc = start_server(target, args.port, server_env, factory, args.workers)
        print(f"{name}: server ready in {time.perf_counter() - t_start:.0f}s", flush=True)
        try:
            url = f"http://127.0.0.1:{args.port}"
            with urllib.request.urlopen(
                urllib.request.Request(url + path % 1, headers={"X-API-Key": key}), timeout=30
            ) as resp:
                assert resp.status == 200, resp.status
            results[name] = run_wrk(
                url,
                path,
                key,
                args.items if path.startswith("/v1/items/") else args.users,
                args.duration,
                args.concurrency,
                proc.pid,
            )
            results[name]["load_avg"] = os.getloadavg()[0]
            if not factory:
                results[name]["mean_batch"] = scoring_batch_mean(url)
        finally:
            stop_server(proc)
        r = results[name]
        if r["requests"] == 0 or r["errors"]:
            print(r["raw"], flush=True)
        print(
            f"{name:12} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f} ms  p90 {r['p90_ms']:7.2f} ms"
            f"  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}  (load {r['load_avg']:.1f})",
            flush=True,
        )
        c = r["cpu"]
        print(
            f"{'':12} CPU: machine {c['machine_busy_pct']:.0f}% busy; per request: server "
            f"{c['server_ms_per_request']:.3f} ms ({c['server_processes']:.0f} processes), wrk "
            f"{c['wrk_ms_per_request']:.3f} ms; mean scoring batch {r.get('mean_batch')}",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}", flush=True)
    print("\n| scenario | req/s | p50 ms | p90 ms | p99 ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(
            f"| {name} | {r['rps']:.1f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['errors']} |"
        )
    rps = {
        base: float(np.mean([r["rps"] for n, r in results.items() if n.split("#")[0] == base]))
        for base in {n.split("#")[0] for n in results}
    }
    if "api" in rps and "naive" in rps:
        print(f"\napi / naive throughput: {rps['api'] / rps['naive']:.2f}x")
    if "naive-blas1" in rps and "naive" in rps:
        ratio = rps["naive-blas1"] / rps["naive"]
        print(f"naive with 1 BLAS thread / default BLAS threads: {ratio:.2f}x")
    if "api" in rps and "hello" in rps:
        print(f"api / hello-world throughput: {rps['api'] / rps['hello']:.2f}x (means of repeats)")
    names = list(results)
    for j, name in enumerate(names):  # each api run against the hello runs next to it
        if name.split("#")[0] != "api":
            continue
        near = [results[n]["rps"] for n in names[max(0, j - 1) : j + 2] if n.startswith("hello")]
        if near:
            print(
                f"{name} / adjacent hello-world runs: {results[name]['rps'] / np.mean(near):.2f}x"
            )
    for r in results.values():
        r.pop("raw", None)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
        )


def _numbered(names: list[str]) -> list[str]:
    """Scenario names, repeats numbered (``hello``, ``api``, ``hello#2``, …): the machine's
    speed drifts within minutes here, so a ratio is best taken against runs next to it."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


if __name__ == "__main__":
    main()
