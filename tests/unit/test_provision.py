from __future__ import annotations

import socket
from pathlib import Path

import pytest

from graphstore import provision
from graphstore.errors import ProvisionError


def spec(tmp_path: Path, **kw: object) -> provision.Neo4jServerSpec:
    return provision.Neo4jServerSpec(
        home=tmp_path / "home", cache=tmp_path / "cache", secrets_dir=tmp_path / "secrets", **kw
    )  # type: ignore[arg-type]


def test_config_binds_loopback_with_auth_and_apoc(tmp_path: Path) -> None:
    s = spec(tmp_path, bolt_port=17001, http_port=17002, heap="1g", pagecache="256m")
    conf = provision.write_config(s).read_text()
    assert "server.bolt.listen_address=127.0.0.1:17001" in conf
    assert "server.http.listen_address=127.0.0.1:17002" in conf
    assert "dbms.security.auth_enabled=true" in conf
    assert "server.memory.heap.max_size=1g" in conf
    assert "dbms.security.procedures.unrestricted=apoc.*" in conf


def test_start_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ProvisionError, match=f"Port {port} .* taken"):
            provision.start(spec(tmp_path, bolt_port=port, http_port=port))


def test_missing_java_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", "/nonexistent")
    monkeypatch.setattr(provision.shutil, "which", lambda _: None)
    monkeypatch.setattr(provision, "Path", lambda p: Path("/nonexistent") / str(p).lstrip("/"))
    with pytest.raises(ProvisionError, match="No Java 17 or 21 runtime found"):
        provision.find_java()


def test_missing_maven_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provision.shutil, "which", lambda _: None)
    with pytest.raises(ProvisionError, match="Maven"):
        provision.assemble(spec(tmp_path))


def test_pid_of_a_dead_process_reads_as_none(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("999999999")
    assert provision.read_pid(pid_file) is None
    assert provision.stop_process(pid_file, "x") is False
