"""The managed services: health, Browser, credentials, persistence across down/up."""

from __future__ import annotations

import os
import shlex
import socket
import stat
import subprocess
import urllib.request
from pathlib import Path

import pytest
from neo4j import Driver

from dpgcn import apps, neo4j_server, services
from dpgcn.neo4j_install import Neo4jServerSpec
from dpgcn.processes import ProvisionError
from dpgcn.settings import get_settings
from graphstore.driver import connect, execute
from graphstore.errors import GraphAuthError
from tests.integration.conftest import DPGCN, run_cli

pytestmark = pytest.mark.integration


def test_status_reports_both_healthy(services_up: None) -> None:
    out = run_cli("services", "status").stdout
    assert "neo4j  healthy" in out and "redis  healthy" in out
    assert "5.26" in out


def test_up_twice_is_a_noop(services_up: None) -> None:
    pid_before = services.status(get_settings())[0].pid
    run_cli("services", "up")
    assert services.status(get_settings())[0].pid == pid_before


def test_browser_is_served(services_up: None) -> None:
    settings = get_settings()
    if not settings.neo4j.managed:
        pytest.skip("Browser is only served by the managed server")
    url = f"http://127.0.0.1:{settings.neo4j.http_port}/browser/"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read().decode()
    assert resp.status == 200 and "<html" in body.lower()


def test_password_file_is_private_and_not_default(services_up: None) -> None:
    settings = get_settings()
    if not settings.neo4j.managed:
        pytest.skip("managed server only")
    spec = services.neo4j_spec(settings)
    mode = stat.S_IMODE(os.stat(spec.password_file).st_mode)
    assert mode == 0o600
    conn = services.neo4j_connection(settings)
    assert conn.password not in ("neo4j", "password") and len(conn.password) >= 16
    with pytest.raises(GraphAuthError, match="rejected the credentials"):
        connect(conn.uri, "neo4j", "neo4j")


def test_wrong_credentials_give_a_clear_cli_error(services_up: None) -> None:
    conn = services.neo4j_connection(get_settings())
    env = {**os.environ, "NEO4J_URI": conn.uri, "NEO4J_PASSWORD": "not-the-password"}
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(os.sys.executable), "dpgcn"),
            "services",
            "status",
            "--wait",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "rejected the credentials" in result.stdout


def test_env_prints_export_lines(services_up: None) -> None:
    out = run_cli("services", "env").stdout.splitlines()
    keys = [line.split("=", 1)[0] for line in out]
    assert keys == [
        "export NEO4J_URI",
        "export NEO4J_USER",
        "export NEO4J_PASSWORD",
        "export NEO4J_DATABASE",
        "export REDIS_URL",
    ]


def test_data_survives_down_and_up(driver: Driver) -> None:
    settings = get_settings()
    if not settings.neo4j.managed:
        pytest.skip("managed server only")
    execute(
        driver,
        "ingest/merge_users",
        {
            "rows": [
                {"id": "persist-1", "age": 30, "gender": "F", "occupation": "x", "consent": True}
            ]
        },
    )
    debug_log = services.neo4j_spec(settings).logs / "debug.log"
    seen = debug_log.stat().st_size
    # after `eval "$(dpgcn services env)"` the variables name the managed servers: `down`
    # still stops them (managed is decided by this home's state, not by the variables)
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in run_cli("services", "env").stdout.splitlines()
    )
    env = {**os.environ, **{k: shlex.split(v)[0] for k, v in exported.items()}}
    down = subprocess.run(
        [DPGCN, "services", "down"], capture_output=True, text=True, env=env, timeout=120
    )
    assert down.returncode == 0 and "neo4j" in down.stdout and "redis" in down.stdout, down
    assert not services.status(settings)[0].healthy
    assert services.status(settings)[1].pid is None
    run_cli("services", "up", timeout=300)
    conn = services.neo4j_connection(settings)
    with connect(conn.uri, conn.user, conn.password) as fresh:
        records = fresh.execute_query("MATCH (u:User {id: 'persist-1'}) RETURN u.age AS age")
    assert records.records[0]["age"] == 30
    # the server runs with Neo4j's own JVM options: its transaction logs' native access
    # (preallocation, cache eviction at shutdown and rotation) needs the sun.nio.ch opening
    with debug_log.open("rb") as log:
        log.seek(seen)
        written = log.read().decode("utf-8", "replace")
    assert 'Checkpoint triggered by "Database shutdown"' in written  # the stop is logged
    assert "Incorrect file descriptor" not in written


def test_a_server_that_cannot_start_fails_fast_with_the_log_path(
    services_up: None, tmp_path: Path
) -> None:
    settings = get_settings()
    if not settings.neo4j.managed:
        pytest.skip("managed server only")
    good = services.neo4j_spec(settings)
    with socket.socket() as blocker:  # bound, not listening: passes the pre-check, not Jetty
        blocker.bind(("127.0.0.1", 0))
        broken = Neo4jServerSpec(
            home=tmp_path / "neo4j",
            cache=good.cache,
            secrets_dir=tmp_path / "secrets",
            version=good.version,
            browser_version=good.browser_version,
            bolt_port=free_port(),
            http_port=int(blocker.getsockname()[1]),
            heap="512m",
            pagecache="64m",
        )
        # the message proves the process' exit was noticed (a timeout reads "did not answer")
        with pytest.raises(ProvisionError, match=r"exited during start-up; see .*neo4j\.log"):
            neo4j_server.start(broken, timeout=120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_stop_start_and_restart_one_service(services_up: None, tmp_path: Path) -> None:
    settings = get_settings()
    if not services.redis_managed(settings):
        pytest.skip("managed server only")
    before = services.status(settings)[1].pid
    assert "redis: restarted" in run_cli("services", "restart", "redis").stdout
    after = services.status(settings, wait=5)[1]
    assert after.healthy and after.pid not in (None, before)
    assert "redis: stopped" in run_cli("services", "stop", "redis").stdout
    assert not services.status(settings)[1].healthy
    assert "redis: was not running" in run_cli("services", "stop", "redis").stdout
    run_cli("services", "start", "redis")
    assert services.status(settings, wait=5)[1].healthy
    assert services.status(settings)[0].healthy  # Neo4j was not touched
    bad = run_cli("services", "stop", "nothing", check=False)
    assert bad.returncode == 1 and "unknown service 'nothing'" in bad.stderr
    external = subprocess.run(
        [DPGCN, "services", "stop", "redis"],
        capture_output=True,
        text=True,
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "DPGCN_HOME": str(tmp_path)},
        timeout=60,
    )
    assert external.returncode == 1 and "redis is external" in external.stderr, external
    assert services.status(settings)[1].healthy


def test_background_worker_log_is_stamped_rotated_and_stopped(services_up: None) -> None:
    import re
    import time

    settings = get_settings()
    log = apps.app_log(settings, "worker")
    log.unlink(missing_ok=True)
    run_cli("services", "start", "worker")
    try:
        deadline = time.monotonic() + 90
        while not (log.exists() and "ready." in log.read_text()):
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
            time.sleep(0.5)
        pid = apps.app_status(settings)[0].pid
        assert pid is not None
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 1  # the supervisor runs the worker
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
        assert all(stamp.match(line) for line in lines), lines[:5]
        assert any("INFO celery" in line for line in lines)
    finally:
        assert "worker: stopped" in run_cli("services", "stop", "worker").stdout
    assert apps.app_status(settings) == [] or all(
        s.name != "worker" for s in apps.app_status(settings)
    )
    assert not Path(f"/proc/{children[0]}").exists()
    assert "exited with status 0" in log.read_text().splitlines()[-1]
