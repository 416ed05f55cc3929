"""Backup pieces without services: the logs outside the graph, the archive's manifest and
checksums, the admin command line, and the API's store watch."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from api.storewatch import StoreWatch
from dpgcn import backup, neo4j_install
from graphstore import statelog


@pytest.fixture
def logs(tmp_path: Path) -> Any:
    statelog.set_directory(tmp_path)
    yield tmp_path
    statelog.set_directory(None)


def test_logs_are_append_only_private_json_lines(logs: Path) -> None:
    statelog.append(statelog.ERASURES, {"id_hash": "a" * 64, "salt": "s", "erased_at": 1.0})
    statelog.append(statelog.ERASURES, {"id_hash": "b" * 64, "salt": "s", "erased_at": 2.0})
    path = logs / statelog.ERASURES
    assert (path.stat().st_mode & 0o777) == 0o600
    assert [r["id_hash"][0] for r in statelog.read(statelog.ERASURES)] == ["a", "b"]
    assert statelog.read(statelog.REVOCATIONS) == []


def test_a_torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error(logs: Path) -> None:
    path = logs / statelog.REVOCATIONS
    path.write_text('{"key_id": "k1"}\n{"key_id": "k2"}\n{"key_id": "k')
    assert [r["key_id"] for r in statelog.read(statelog.REVOCATIONS)] == ["k1", "k2"]
    path.write_text('{"key_id": "k1"}\nnot json\n{"key_id": "k2"}\n')
    with pytest.raises(ValueError, match=r"revocations.log:2: not a log record"):
        statelog.read(statelog.REVOCATIONS)


def test_the_log_directory_defaults_to_the_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    statelog.set_directory(None)
    monkeypatch.setenv("DPGCN_HOME", "/somewhere/home")
    assert statelog.path(statelog.ERASURES) == Path("/somewhere/home/erasures.log")


def test_erasure_log_entries_are_grouped_by_salt() -> None:
    grouped = backup._salted(
        [
            {"id_hash": "h1", "salt": "s1"},
            {"id_hash": "h2", "salt": "s1"},
            {"id_hash": "h3", "salt": "s2"},
            {"key_id": "not an erasure"},
        ]
    )
    assert grouped == {"s1": {"h1", "h2"}, "s2": {"h3"}}


def _archive(tmp_path: Path, body: bytes, recorded: bytes) -> Path:
    work = tmp_path / "work"
    (work / "redis").mkdir(parents=True)
    (work / backup.REDIS_MEMBER).write_bytes(body)
    digest = backup._sha256(work / backup.REDIS_MEMBER)
    if recorded != body:
        (work / "other").write_bytes(recorded)
        digest = backup._sha256(work / "other")
    manifest = {"format": backup.FORMAT, "sha256": {backup.REDIS_MEMBER: digest}}
    (work / backup.MANIFEST).write_text(json.dumps(manifest))
    path = tmp_path / "b.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(work / backup.MANIFEST, arcname=backup.MANIFEST)
        tar.add(work / backup.REDIS_MEMBER, arcname=backup.REDIS_MEMBER)
    return path


def test_unpack_checks_every_member_against_the_manifest(tmp_path: Path) -> None:
    good = _archive(tmp_path / "good", b"REDIS0011", b"REDIS0011")
    assert backup.unpack(good, tmp_path / "out")["format"] == backup.FORMAT
    bad = _archive(tmp_path / "bad", b"REDIS0011", b"tampered")
    with pytest.raises(backup.BackupError, match="does not match its checksum"):
        backup.unpack(bad, tmp_path / "out2")


def test_a_file_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.tar"
    path.write_bytes(b"not a tar")
    with pytest.raises(backup.BackupError, match="not a dpgcn backup"):
        backup.read_manifest(path)


def test_admin_command_runs_the_admin_tool_on_the_server_jars(tmp_path: Path) -> None:
    spec = neo4j_install.Neo4jServerSpec(
        home=tmp_path / "neo4j",
        cache=tmp_path / "cache",
        secrets_dir=tmp_path / "secrets",
        version="5.26.0",
        browser_version="5.26.0",
        bolt_port=7687,
        http_port=7474,
        heap="512m",
        pagecache="256m",
    )
    argv = backup.admin_argv(spec, "java", "database", "dump", "neo4j", "--to-path=/x")
    assert argv[:3] == ["java", "-cp", f"{spec.lib}/*"]
    assert argv[3] == neo4j_install.ADMIN_TOOL and argv[4:] == [
        "database",
        "dump",
        "neo4j",
        "--to-path=/x",
    ]


class _Result:
    def __init__(self, row: dict[str, Any]) -> None:
        self.records = [row]


class _Driver:
    """Answers ``admin/get_store_id`` from a list (an exception entry: Neo4j is away)."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls: list[dict[str, Any]] = []
        self._query_bookmark_manager: object = object()

    def execute_query(self, query: str, **kwargs: Any) -> _Result:
        self.calls.append(kwargs)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return _Result(answer)


def test_store_watch_resets_bookmarks_and_caches_only_when_the_store_changes() -> None:
    old = {"store_id": "a", "created": "t", "epoch": None}
    restored = {"store_id": "b", "created": "t", "epoch": None}
    replayed = {"store_id": "b", "created": "t", "epoch": "e1"}
    driver = _Driver([old, old, OSError("down"), restored, restored, replayed])
    changed: list[int] = []
    watch = StoreWatch(driver, "neo4j", lambda: changed.append(1))  # type: ignore[arg-type]
    manager = driver._query_bookmark_manager
    assert [watch.check() for _ in range(6)] == [False, False, False, True, False, True]
    assert len(changed) == 2 and watch.changes == 2
    assert driver._query_bookmark_manager is not manager
    # the identity is read without bookmarks: it never waits for the old store's transactions
    assert all(call["bookmark_manager_"] is None for call in driver.calls)


def test_the_transaction_id_is_read_from_a_neo4j_5_bookmark() -> None:
    # a bookmark the managed Neo4j 5.26 returned (its transaction 1289)
    assert backup.bookmark_tx("FB:kcwQ111IXB80QNe9VuCLDoqx08kFCZA=") == 1289
    assert backup.bookmark_tx("neo4j:bookmark:v1:tx42") is None
    assert backup.bookmark_tx("FB:AAAA") is None
