"""The managed Neo4j: its configuration, Java and Maven checks, pid files, the procedure's
Maven build and the plugin directory (dpgcn.neo4j_install, neo4j_plugins, neo4j_server)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from dpgcn import neo4j_install, neo4j_plugins, neo4j_server, processes
from dpgcn.processes import ProvisionError


def spec(tmp_path: Path, **kw: Any) -> neo4j_install.Neo4jServerSpec:
    return neo4j_install.Neo4jServerSpec(
        home=tmp_path / "home", cache=tmp_path / "cache", secrets_dir=tmp_path / "secrets", **kw
    )


def test_config_binds_loopback_with_auth_and_apoc(tmp_path: Path) -> None:
    s = spec(tmp_path, bolt_port=17001, http_port=17002, heap="1g", pagecache="256m")
    conf = neo4j_server.write_config(s).read_text()
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
            neo4j_server.start(spec(tmp_path, bolt_port=port, http_port=port))


def test_missing_java_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", "/nonexistent")
    monkeypatch.setattr(neo4j_install.shutil, "which", lambda _: None)
    monkeypatch.setattr(neo4j_install, "Path", lambda p: Path("/nonexistent") / str(p).lstrip("/"))
    with pytest.raises(ProvisionError, match="No Java 17 or 21 runtime found"):
        neo4j_install.find_java()


def test_missing_maven_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neo4j_install.shutil, "which", lambda _: None)
    with pytest.raises(ProvisionError, match="Maven"):
        neo4j_install.assemble(spec(tmp_path))


def test_pid_of_a_dead_process_reads_as_none(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("999999999")
    assert processes.read_pid(pid_file) is None
    assert processes.stop_process(pid_file, "x") is False


def test_without_javac_the_server_starts_without_the_procedures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(neo4j_plugins, "find_javac", lambda java: None)
    with caplog.at_level("WARNING", logger="dpgcn.neo4j_plugins"):
        assert neo4j_plugins.build_procedures(spec(tmp_path), "/usr/bin/java") is None
    assert "no Java compiler" in caplog.text
    assert not (tmp_path / "cache" / "procedures").exists()


def fake_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A JDK's ``javac`` and an ``mvn`` on PATH that runs ``script`` (its calls are logged)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    javac = bin_dir / "javac"
    javac.write_text("#!/bin/sh\n")
    javac.chmod(0o755)
    mvn = bin_dir / "mvn"
    mvn.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/mvn-calls\n{script}\n')
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(neo4j_plugins, "find_javac", lambda java: str(javac))
    return tmp_path / "mvn-calls"


def test_a_compile_error_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_maven(tmp_path, monkeypatch, "echo 'ExportProcedures.java:[1,1] error: oops'; exit 1")
    with pytest.raises(ProvisionError, match=r"Maven could not build .*oops"):
        neo4j_plugins.build_procedures(spec(tmp_path), "/usr/bin/java")
    assert not list((tmp_path / "cache" / "procedures").rglob("*.jar"))


def test_the_procedures_are_built_once_per_neo4j_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Maven runs on a copy of the module with the managed version; the jar is cached by
    version (a second start builds nothing, another version builds its own)."""
    calls = fake_maven(
        tmp_path,
        monkeypatch,
        'd=$(dirname "$3"); test -f "$d/src/main/java/dpgcn/procs/ExportProcedures.java" '
        '|| exit 3; mkdir -p "$d/target" && echo jar > "$d/target/dpgcn-procs-1.jar"',
    )
    s = spec(tmp_path)
    jar = neo4j_plugins.build_procedures(s, "/usr/bin/java")
    assert jar == neo4j_plugins.procedures_jar(s) and jar.read_text() == "jar\n"
    assert jar.parent == tmp_path / "cache" / "procedures" / f"neo4j-{s.version}"
    assert neo4j_plugins.build_procedures(s, "/usr/bin/java") == jar
    (call,) = calls.read_text().splitlines()
    assert re.fullmatch(
        rf"-B -f {jar.parent}/\S+/pom\.xml package -Dneo4j\.version={s.version}", call
    )
    other = spec(tmp_path, version="5.26.20")
    assert neo4j_plugins.build_procedures(other, "/usr/bin/java") != jar
    assert len(calls.read_text().splitlines()) == 2


def test_the_module_is_pinned_to_the_managed_neo4j_version() -> None:
    """The pom's default Neo4j version is the managed server's, provided by the server."""
    import xml.etree.ElementTree as ET
    from importlib import resources

    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.fromstring(resources.files("graphstore").joinpath("assets/plugin/pom.xml").read_text())
    assert pom.findtext("m:properties/m:neo4j.version", namespaces=ns) == (
        neo4j_install.Neo4jServerSpec.version
    )
    (dep,) = pom.findall("m:dependencies/m:dependency", ns)
    assert dep.findtext("m:artifactId", namespaces=ns) == "neo4j"
    assert dep.findtext("m:version", namespaces=ns) == "${neo4j.version}"
    assert dep.findtext("m:scope", namespaces=ns) == "provided"
    names = [name for name, _ in neo4j_plugins._module_files()]
    assert names == ["pom.xml", "src/main/java/dpgcn/procs/ExportProcedures.java"]


def test_plugin_directory_holds_apoc_and_the_current_procedures_only(tmp_path: Path) -> None:
    s = spec(tmp_path)
    s.dist_plugins.mkdir(parents=True)
    (s.dist_plugins / "apoc-core-5.26.19.jar").write_bytes(b"apoc")
    old = tmp_path / "cache" / "procedures" / "dpgcn-procs-old.jar"
    new = tmp_path / "cache" / "procedures" / "dpgcn-procs-new.jar"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    neo4j_plugins.link_plugins(s, old)
    (s.plugins / "stray.jar").write_bytes(b"stray")
    neo4j_plugins.link_plugins(s, new)
    assert sorted(p.name for p in s.plugins.iterdir()) == [
        "apoc-core-5.26.19.jar",
        "dpgcn-procs.jar",
    ]
    assert (s.plugins / "dpgcn-procs.jar").read_bytes() == b"new"
    neo4j_plugins.link_plugins(s, None)
    assert [p.name for p in s.plugins.iterdir()] == ["apoc-core-5.26.19.jar"]


def test_launch_records_the_pid_and_cleans_up_when_not_ready(tmp_path: Path) -> None:
    """``processes.launch`` (the managed servers' start): the pid file names the process while
    it is waited for; a failed wait terminates it and removes the pid file."""
    pid_file = tmp_path / "x.pid"
    seen: list[int | None] = []
    pid = processes.launch(
        ["sleep", "30"], pid_file, lambda p: seen.append(processes.read_pid(pid_file))
    )
    assert seen == [pid] and processes.read_pid(pid_file) == pid
    assert processes.stop_process(pid_file, "sleep", timeout=10) is True
    assert not pid_file.exists()

    def not_ready(p: int) -> None:
        raise processes.ServiceError("did not answer")

    with pytest.raises(processes.ServiceError, match="did not answer"):
        processes.launch(["sleep", "30"], pid_file, not_ready)
    assert not pid_file.exists()
