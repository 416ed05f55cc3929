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


def test_without_javac_the_server_starts_without_the_procedures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(provision, "find_javac", lambda java: None)
    with caplog.at_level("WARNING", logger="graphstore.provision"):
        assert provision.build_procedures(spec(tmp_path), "/usr/bin/java") is None
    assert "no Java compiler" in caplog.text
    assert not (tmp_path / "cache" / "procedures").exists()


def test_a_compile_error_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "javac"
    fake.write_text("#!/bin/sh\necho 'Broken.java:1: error: oops' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(provision, "find_javac", lambda java: str(fake))
    with pytest.raises(ProvisionError, match=r"javac could not build .*oops"):
        provision.build_procedures(spec(tmp_path), "/usr/bin/java")
    assert not list((tmp_path / "cache" / "procedures").glob("*.jar"))


def test_plugin_directory_holds_apoc_and_the_current_procedures_only(tmp_path: Path) -> None:
    s = spec(tmp_path)
    s.dist_plugins.mkdir(parents=True)
    (s.dist_plugins / "apoc-core-5.26.19.jar").write_bytes(b"apoc")
    old = tmp_path / "cache" / "procedures" / "dpgcn-procs-old.jar"
    new = tmp_path / "cache" / "procedures" / "dpgcn-procs-new.jar"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    provision.link_plugins(s, old)
    (s.plugins / "stray.jar").write_bytes(b"stray")
    provision.link_plugins(s, new)
    assert sorted(p.name for p in s.plugins.iterdir()) == [
        "apoc-core-5.26.19.jar",
        "dpgcn-procs.jar",
    ]
    assert (s.plugins / "dpgcn-procs.jar").read_bytes() == b"new"
    provision.link_plugins(s, None)
    assert [p.name for p in s.plugins.iterdir()] == ["apoc-core-5.26.19.jar"]
