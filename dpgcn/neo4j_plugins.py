"""The project's Neo4j procedure (the export's store reader): a Maven module in the package
(``graphstore/assets/plugin``: ``pom.xml`` and ``src/main/java``), built with Maven against the
managed Neo4j version on first use and cached per version and source digest::

    <cache>/procedures/neo4j-<version>/dpgcn-procs-<digest>.jar

:func:`link_plugins` links the jar into the server's plugin directory at each start
(:func:`dpgcn.neo4j_server.start`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from dpgcn.neo4j_install import Neo4jServerSpec, find_maven
from dpgcn.processes import ProvisionError

logger = logging.getLogger(__name__)


#: The module's directory in the package: ``pom.xml`` and ``src/main/java``.
PROCEDURE_MODULE = "assets/plugin"


def find_javac(java: str) -> str | None:
    """``javac`` beside the runtime, else on PATH; None when only a JRE is installed."""
    beside = Path(java).resolve().parent / "javac"
    if beside.exists():
        return str(beside)
    return shutil.which("javac")


def _module_files() -> list[tuple[str, bytes]]:
    """(relative path, content) of the procedure module's ``pom.xml`` and sources, sorted."""
    root = resources.files("graphstore").joinpath(PROCEDURE_MODULE)
    files: list[tuple[str, bytes]] = []
    if not root.is_dir():  # an installed package without the module's sources
        return files
    pending: list[tuple[str, Traversable]] = [("", root)]
    while pending:
        prefix, node = pending.pop()
        for item in node.iterdir():
            rel = f"{prefix}{item.name}"
            if item.is_dir():
                if item.name != "target":  # a hand build's output
                    pending.append((rel + "/", item))
            elif rel == "pom.xml" or item.name.endswith(".java"):
                files.append((rel, item.read_bytes()))
    return sorted(files)


def procedures_jar(spec: Neo4jServerSpec, files: list[tuple[str, bytes]] | None = None) -> Path:
    """Where the procedures built for this Neo4j version from the current module live:
    ``<cache>/procedures/neo4j-<version>/dpgcn-procs-<digest of pom and sources>.jar``."""
    digest = hashlib.sha256(spec.version.encode())
    for name, data in _module_files() if files is None else files:
        digest.update(name.encode() + b"\0" + data)
    return (
        spec.cache
        / "procedures"
        / f"neo4j-{spec.version}"
        / f"dpgcn-procs-{digest.hexdigest()[:16]}.jar"
    )


def build_procedures(spec: Neo4jServerSpec, java: str) -> Path | None:
    """The project's procedures for this Neo4j version, built with Maven on first use.

    ``mvn package`` runs on a copy of the module with ``-Dneo4j.version`` set to the managed
    version (the Neo4j API is a ``provided`` dependency from Maven Central), on the JDK of
    ``java``; the jar is cached by version and source digest (:func:`procedures_jar`), so a
    start with an unchanged module builds nothing. Returns None (with a warning) when no
    Java compiler is installed: the server then runs without them and the exporter reads
    through Cypher."""
    files = _module_files()
    if "pom.xml" not in dict(files):
        logger.warning(
            "the procedure module (graphstore/%s/pom.xml) is not installed: Neo4j starts "
            "without the dpgcn procedures, and exports go through Cypher",
            PROCEDURE_MODULE,
        )
        return None
    jar = procedures_jar(spec, files)
    if jar.exists():
        return jar
    javac = find_javac(java)
    if javac is None:
        logger.warning(
            "no Java compiler (javac) beside %s or on PATH: Neo4j starts without the dpgcn "
            "procedures, and exports go through Cypher (install openjdk-17-jdk-headless)",
            java,
        )
        return None
    mvn = find_maven(f"to build the dpgcn procedures ({PROCEDURE_MODULE}/pom.xml) once per version")
    jar.parent.mkdir(parents=True, exist_ok=True)
    log = jar.parent / "build.log"
    logger.info(
        "building the dpgcn procedures for Neo4j %s with Maven (log: %s)", spec.version, log
    )
    with tempfile.TemporaryDirectory(dir=jar.parent) as tmp:
        for name, data in files:
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(data)
        env = dict(os.environ, JAVA_HOME=str(Path(javac).resolve().parent.parent))
        with log.open("w") as out:
            try:
                result = subprocess.run(
                    [
                        mvn,
                        "-B",
                        "-f",
                        str(Path(tmp) / "pom.xml"),
                        "package",
                        f"-Dneo4j.version={spec.version}",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    timeout=900,
                    check=False,
                )
            except subprocess.TimeoutExpired as e:
                raise ProvisionError(
                    f"Maven took over 900 s to build the procedures; see {log}"
                ) from e
        built = sorted((Path(tmp) / "target").glob("dpgcn-procs-*.jar"))
        if result.returncode != 0 or not built:
            tail = log.read_text(errors="replace").strip()[-2000:]
            raise ProvisionError(f"Maven could not build the dpgcn procedures (see {log}): {tail}")
        built[0].replace(jar)
    logger.info("built the dpgcn procedures: %s", jar)
    return jar


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
