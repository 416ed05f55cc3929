"""The managed Neo4j server: configured, given its password and supervised locally.

The server is launched with ``org.neo4j.server.CommunityEntryPoint`` on Java 17 or 21 from the
distribution :mod:`dpgcn.neo4j_install` assembles, with the project's procedure linked into its
plugin directory (:mod:`dpgcn.neo4j_plugins`). Its initial password is generated on first
start, kept in a 0600 file outside the repository and set with ``neo4j-admin dbms
set-initial-password`` before the first start, so the server never runs with the default
password.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import time
from pathlib import Path

from dpgcn.browser_style import browser_style_command
from dpgcn.neo4j_install import ADMIN_TOOL, Neo4jServerSpec, assemble, find_java, server_env
from dpgcn.neo4j_plugins import build_procedures, link_plugins
from dpgcn.processes import (
    ProvisionError,
    launch,
    port_open,
    read_pid,
    stop_process,
    write_secret,
)
from graphstore.errors import GraphAuthError

logger = logging.getLogger(__name__)

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
#: The server's JVM options beside the heap: what Neo4j's own start script would pass (its
#: packaged ``neo4j.conf``'s ``server.jvm.additional`` lines). The ``--add-opens`` matter:
#: without ``sun.nio.ch`` the transaction log files are neither preallocated nor evicted from
#: the OS cache ("Incorrect file descriptor" warnings in debug.log), and Netty and the page
#: cache fall back to slower buffer handling without ``java.nio``.
SERVER_JVM_OPTIONS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+AlwaysPreTouch",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "-XX:FlightRecorderOptions=stackdepth=256",
    "-XX:+UnlockDiagnosticVMOptions",
    "-XX:+DebugNonSafepoints",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
)


def write_config(spec: Neo4jServerSpec) -> Path:
    for sub in ("conf", "data", "logs", "run", "import"):
        (spec.home / sub).mkdir(parents=True, exist_ok=True)
    conf = spec.conf_dir / "neo4j.conf"
    conf.write_text(
        "\n".join(
            [
                "# Written by dpgcn (dpgcn.neo4j_server); edits are overwritten on start.",
                "server.default_listen_address=127.0.0.1",
                "server.default_advertised_address=127.0.0.1",
                f"server.bolt.listen_address=127.0.0.1:{spec.bolt_port}",
                f"server.bolt.advertised_address=127.0.0.1:{spec.bolt_port}",
                f"server.http.listen_address=127.0.0.1:{spec.http_port}",
                f"server.http.advertised_address=127.0.0.1:{spec.http_port}",
                "server.https.enabled=false",
                "dbms.security.auth_enabled=true",
                f"server.memory.heap.initial_size={spec.heap}",
                f"server.memory.heap.max_size={spec.heap}",
                f"server.memory.pagecache.size={spec.pagecache}",
                "dbms.memory.transaction.total.max=0",
                "dbms.security.procedures.unrestricted=apoc.*,dpgcn.*",
                "dbms.security.procedures.allowlist=apoc.*,dpgcn.*",
                "dbms.usage_report.enabled=false",
                f"server.directories.plugins={spec.plugins}",
                f"server.directories.data={spec.home / 'data'}",
                f"server.directories.logs={spec.logs}",
                f"server.directories.run={spec.home / 'run'}",
                f"server.directories.import={spec.home / 'import'}",
                "db.tx_log.rotation.retention_policy=2 files",
                # Neo4j Browser: the project's style (users, items, queries, terms, categories,
                # segments) on every connect, and guides served by `dpgcn segments browser`.
                f"browser.post_connect_cmd={browser_style_command()}",
                "browser.remote_content_hostname_whitelist=127.0.0.1,localhost",
                "",
            ]
        )
    )
    return conf


def read_password(spec: Neo4jServerSpec) -> str | None:
    try:
        return spec.password_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_password(spec: Neo4jServerSpec, java: str) -> str:
    """The server's password; generated and set before the first start."""
    password = read_password(spec)
    auth_ini = spec.home / "data" / "dbms" / "auth.ini"
    system_db = spec.home / "data" / "databases" / "system"
    if password is not None:
        if not system_db.exists() and not auth_ini.exists():
            _set_initial_password(spec, java, password)
        return password
    if system_db.exists():
        raise ProvisionError(
            f"The Neo4j store in {spec.home / 'data'} exists but its password file "
            f"{spec.password_file} is gone; restore the file or remove {spec.home} to start afresh."
        )
    password = secrets.token_urlsafe(24)
    while password.startswith("-"):  # neo4j-admin would read it as an option
        password = secrets.token_urlsafe(24)
    write_secret(spec.password_file, password)
    _set_initial_password(spec, java, password)
    return password


def _set_initial_password(spec: Neo4jServerSpec, java: str, password: str) -> None:
    result = subprocess.run(
        [java, "-cp", f"{spec.lib}/*", ADMIN_TOOL, "dbms", "set-initial-password", "--", password],
        env=server_env(spec),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        spec.logs.mkdir(parents=True, exist_ok=True)
        (spec.logs / "admin.log").write_text(result.stdout + result.stderr)
        raise ProvisionError(
            f"neo4j-admin could not set the initial password; see {spec.logs / 'admin.log'}"
        )


def wait_for_bolt(spec: Neo4jServerSpec, password: str, timeout: float, pid: int | None) -> None:
    """Block until Bolt accepts the credentials; fail fast when the process dies."""
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError, ServiceUnavailable

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if pid is not None and read_pid(spec.pid_file) is None:
            raise ProvisionError(f"Neo4j exited during start-up; see {spec.log_file}")
        if port_open(spec.bolt_port):
            try:
                with GraphDatabase.driver(spec.bolt_uri, auth=("neo4j", password)) as driver:
                    driver.verify_connectivity()
                    driver.execute_query("RETURN 1", database_="neo4j")
                return
            except AuthError as e:
                raise GraphAuthError(
                    f"Neo4j on {spec.bolt_uri} rejected the password in {spec.password_file}"
                ) from e
            except (ServiceUnavailable, OSError) as e:
                last = e
            except Exception as e:  # database still starting: Neo.TransientError.*
                last = e
        time.sleep(0.5)
    raise ProvisionError(
        f"Neo4j did not answer on {spec.bolt_uri} within {timeout:.0f}s ({last}); "
        f"see {spec.log_file}"
    )


def start(spec: Neo4jServerSpec, timeout: float = 180.0) -> str:
    """Start the managed server (a no-op when it runs); returns its password."""
    pid = read_pid(spec.pid_file)
    if pid is not None:
        password = read_password(spec)
        if password is None:
            raise ProvisionError(f"Neo4j runs (pid {pid}) but {spec.password_file} is missing")
        wait_for_bolt(spec, password, timeout, pid)
        return password
    for port in (spec.bolt_port, spec.http_port):
        if port_open(port):
            raise ProvisionError(
                f"Port {port} on 127.0.0.1 is taken by another process; stop it or set "
                "NEO4J_BOLT_PORT / NEO4J_HTTP_PORT to free ports."
            )
    java = find_java()
    assemble(spec)
    write_config(spec)
    link_plugins(spec, build_procedures(spec, java))
    password = ensure_password(spec, java)
    spec.pid_file.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting Neo4j %s on %s (log: %s)", spec.version, spec.bolt_uri, spec.log_file)
    with spec.console_log.open("ab") as console:
        launch(
            [
                java,
                f"-Xms{spec.heap}",
                f"-Xmx{spec.heap}",
                *SERVER_JVM_OPTIONS,
                "-cp",
                f"{spec.plugins}/*:{spec.lib}/*",
                ENTRY_POINT,
                f"--home-dir={spec.home}",
                f"--config-dir={spec.conf_dir}",
            ],
            spec.pid_file,
            lambda pid: wait_for_bolt(spec, password, timeout, pid),
            cwd=spec.home,
            env=server_env(spec),
            stdout=console,
            stderr=subprocess.STDOUT,
        )
    return password


def stop(spec: Neo4jServerSpec) -> bool:
    return stop_process(spec.pid_file, "Neo4j")
