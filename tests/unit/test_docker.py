"""Structure of the container files: docker/Dockerfile, its ignore file and the compose files.

No Docker engine is needed: the files are parsed and checked. Each check is a function that
raises ``AssertionError``; it runs once on the real file and, in ``test_check_catches_*``,
on deliberately broken copies, so every check is shown to be able to fail. Only the
``docker compose config`` test needs the compose plugin, and it alone is skipped without it.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
DOCKERIGNORE = DOCKER_DIR / "Dockerfile.dockerignore"  # BuildKit: <Dockerfile>.dockerignore
COMPOSE = DOCKER_DIR / "compose.yaml"
COMPOSE_GPU_WORKER = DOCKER_DIR / "compose.worker-gpu.yaml"
DOCS = REPO / "docs" / "docker.md"

APP_SERVICES = ("api", "worker-cpu", "worker-gpu", "beat")
REQUIRED_SERVICES = ("neo4j", "redis", *APP_SERVICES)
SECRET_VARS = ("NEO4J_PASSWORD", "REDIS_PASSWORD")
#: Passwords that must never reach a server (mirrors dpgcn.settings.DEFAULT_PASSWORDS).
DEFAULT_PASSWORDS = frozenset({"neo4j", "password", "changeme", ""})
#: Image stage each compose service builds.
SERVICE_TARGETS = {
    "api": "api",
    "worker-cpu": "worker",
    "worker-gpu": "worker-gpu",
    "beat": "worker",
}
CUDA_RE = re.compile(r"nvidia/cuda:12|/whl/cu1\d{2}\b|\+cu1\d{2}\b")


# ======================================================================== compose helpers


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "compose file has no services"
    return services


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


_VAR_RE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def expand(value: str) -> str:
    """Interpolate like compose with an empty environment: defaults applied, ``$$`` → ``$``,
    required or plain variables shown as ``<NAME>``."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if op in (":-", "-"):
            return arg
        return f"<{name}>"

    parts = value.split("$$")
    return "$".join(_VAR_RE.sub(sub, part) for part in parts)


def _strings(node: Any) -> Iterator[str]:
    """Every string (keys and values) in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    if isinstance(cmd, str):
        return shlex.split(expand(cmd))
    assert isinstance(cmd, list), f"no command list: {cmd!r}"
    return [expand(str(c)) for c in cmd]


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            ports.add(int(p["target"]))
        else:
            ports.add(int(expand(str(p)).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def _healthcheck_test(service: dict[str, Any]) -> str:
    hc = service.get("healthcheck")
    assert isinstance(hc, dict), "no healthcheck"
    assert not hc.get("disable"), "healthcheck disabled"
    test = hc.get("test")
    if isinstance(test, list):
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"bad healthcheck test {test!r}"
        assert len(test) > 1, "empty healthcheck test"
        return " ".join(str(t) for t in test[1:])
    assert isinstance(test, str) and test.strip() and test != "NONE", "empty healthcheck test"
    return test


def _gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    deploy = service.get("deploy") or {}
    devices = ((deploy.get("resources") or {}).get("reservations") or {}).get("devices") or []
    return [d for d in devices if isinstance(d, dict)]


def _assert_reserves_nvidia_gpu(service: dict[str, Any]) -> None:
    devices = _gpu_devices(service)
    assert devices, "no deploy.resources.reservations.devices"
    ok = [
        d
        for d in devices
        if d.get("driver") == "nvidia"
        and "gpu" in (d.get("capabilities") or [])
        and (str(d.get("count")) in ("1", "all") or d.get("device_ids"))
    ]
    assert ok, f"no nvidia gpu reservation with count or device_ids: {devices!r}"


# ======================================================================== compose checks


def check_required_services(c: dict[str, Any]) -> None:
    missing = set(REQUIRED_SERVICES) - set(_services(c))
    assert not missing, f"missing services: {sorted(missing)}"


def check_neo4j(c: dict[str, Any]) -> None:
    neo4j = _services(c)["neo4j"]
    assert re.fullmatch(r"neo4j:5\.26(\.\d+)?-community", str(neo4j.get("image"))), (
        f"neo4j image must be 5.26 community, got {neo4j.get('image')!r}"
    )
    env = _env(neo4j)
    assert "apoc" in json.loads(env.get("NEO4J_PLUGINS", "[]")), "APOC not in NEO4J_PLUGINS"
    assert re.fullmatch(r"neo4j/\$\{NEO4J_PASSWORD:\?[^}]*\}", env.get("NEO4J_AUTH", "")), (
        f"NEO4J_AUTH must be neo4j/${{NEO4J_PASSWORD:?...}}, got {env.get('NEO4J_AUTH')!r}"
    )
    assert not any(k in env for k in ("NEO4J_PASSWORD", "NEO4J_USER", "NEO4J_URI")), (
        "the neo4j image turns NEO4J_* into config settings; app variables break it"
    )
    assert {7474, 7687} <= _container_ports(neo4j), "neo4j must publish 7474 and 7687"
    targets = {
        expand(str(v)).split(":")[-1] if isinstance(v, str) else v.get("target")
        for v in neo4j.get("volumes") or []
    }
    assert {"/data", "/logs"} <= targets, f"neo4j needs /data and /logs volumes: {targets}"


def check_redis(c: dict[str, Any]) -> None:
    redis = _services(c)["redis"]
    assert re.fullmatch(r"redis:7([.\-].*)?", str(redis.get("image"))), "redis must be redis:7"
    argv = _command(redis)
    assert _option(argv, "--appendonly") == "yes", "redis must run with --appendonly yes"
    raw = [str(a) for a in redis["command"]] if isinstance(redis["command"], list) else []
    raw_cmd = " ".join(raw) or str(redis["command"])
    assert re.search(r"--requirepass\s+\$\{REDIS_PASSWORD:\?[^}]*\}", raw_cmd), (
        "redis must run with --requirepass ${REDIS_PASSWORD:?...}"
    )


def check_no_default_passwords(c: dict[str, Any]) -> None:
    for s in _strings(c):
        assert "neo4j/neo4j" not in s, f"default Neo4j credentials in {s!r}"
        # ``$${`` is an escaped dollar (shell inside a container), not compose interpolation.
        for m in re.finditer(r"(?<!\$)\$\{?(NEO4J_PASSWORD|REDIS_PASSWORD)\b(.?.?)", s):
            assert m.group(0).startswith("${") and m.group(2) == ":?", (
                f"{m.group(1)} must be required (${{{m.group(1)}:?...}}) in {s!r}"
            )
    for name, service in _services(c).items():
        env = _env(service)
        for key, value in env.items():
            if key.endswith("PASSWORD") or key in ("NEO4J_AUTH", "REDISCLI_AUTH"):
                secret = value.split("/", 1)[-1] if key == "NEO4J_AUTH" else value
                assert secret not in DEFAULT_PASSWORDS, f"{name}: {key} is a default password"
                assert "${" in secret, f"{name}: {key} is a literal password, not ${{VAR:?}}"


def check_app_env(c: dict[str, Any]) -> None:
    services = _services(c)
    envs = {name: _env(services[name]) for name in APP_SERVICES}
    for name, env in envs.items():
        assert env.get("NEO4J_URI") == "bolt://neo4j:7687", f"{name}: NEO4J_URI"
        assert env.get("NEO4J_USER"), f"{name}: NEO4J_USER"
        assert re.fullmatch(r"\$\{NEO4J_PASSWORD:\?[^}]*\}", env.get("NEO4J_PASSWORD", "")), (
            f"{name}: NEO4J_PASSWORD must be ${{NEO4J_PASSWORD:?...}}"
        )
        assert re.fullmatch(
            r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/\d+", env.get("REDIS_URL", "")
        ), f"{name}: REDIS_URL {env.get('REDIS_URL')!r}"
        assert env.get("DPGCN_HOME") == "/data", f"{name}: DPGCN_HOME must be /data"
    first = envs[APP_SERVICES[0]]
    for name, env in envs.items():
        assert env == first, f"{name} does not share the app environment block"


def check_artifacts_volume(c: dict[str, Any]) -> None:
    assert "artifacts" in (c.get("volumes") or {}), "top-level volume 'artifacts' missing"
    for name in APP_SERVICES:
        mounts = []
        for v in _services(c)[name].get("volumes") or []:
            if isinstance(v, dict):
                mounts.append((v.get("source"), v.get("target")))
            else:
                src, dst = expand(str(v)).split(":")[:2]
                mounts.append((src, dst))
        assert ("artifacts", "/data") in mounts, f"{name}: artifacts volume not at /data"


def check_depends_on_healthy(c: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        deps = _services(c)[name].get("depends_on")
        assert isinstance(deps, dict), f"{name}: depends_on must use conditions"
        for dep in ("neo4j", "redis"):
            cond = (deps.get(dep) or {}).get("condition")
            assert cond == "service_healthy", f"{name} -> {dep}: condition is {cond!r}"


def check_healthchecks(c: dict[str, Any]) -> None:
    services = _services(c)
    neo4j = _healthcheck_test(services["neo4j"])
    assert "cypher-shell" in neo4j or "7474" in neo4j, f"neo4j healthcheck: {neo4j!r}"
    assert "neo4j/neo4j" not in neo4j and "-p neo4j " not in neo4j, "default password in check"
    redis = _healthcheck_test(services["redis"])
    assert "redis-cli" in redis and "ping" in redis.lower(), f"redis healthcheck: {redis!r}"
    api = _healthcheck_test(services["api"])
    assert "/health" in api, f"api healthcheck must hit /health: {api!r}"


def check_commands(c: dict[str, Any]) -> None:
    services = _services(c)
    api = _command(services["api"])
    assert api[:2] == ["dpgcn", "serve"], f"api command: {api}"
    assert _option(api, "--host") == "0.0.0.0" and _option(api, "--port") == "8000", api
    cpu = _command(services["worker-cpu"])
    assert cpu[:2] == ["dpgcn", "worker"], f"worker-cpu command: {cpu}"
    assert set((_option(cpu, "--queues") or "").split(",")) == {"graph", "training"}, cpu
    gpu = _command(services["worker-gpu"])
    assert gpu[:2] == ["dpgcn", "worker"], f"worker-gpu command: {gpu}"
    assert "training" in (_option(gpu, "--queues") or "").split(","), gpu
    assert _command(services["beat"])[:2] == ["dpgcn", "beat"], "beat must run `dpgcn beat`"


def check_gpu_worker(c: dict[str, Any]) -> None:
    gpu = _services(c)["worker-gpu"]
    _assert_reserves_nvidia_gpu(gpu)
    assert "gpu" in (gpu.get("profiles") or []), "worker-gpu must be opt-in (profile gpu)"
    for name in ("api", "worker-cpu", "beat", "neo4j", "redis"):
        assert not _gpu_devices(_services(c)[name]), f"{name} must not reserve a GPU"
        assert not _services(c)[name].get("profiles"), f"{name} must start by default"


def check_builds(c: dict[str, Any], compose_path: Path = COMPOSE) -> None:
    stages = {s.name for s in parse_dockerfile(DOCKERFILE.read_text())}
    for name, service in _services(c).items():
        build = service.get("build")
        if name not in SERVICE_TARGETS:
            continue
        assert isinstance(build, dict), f"{name}: build must be a mapping with a target"
        context = (compose_path.parent / expand(str(build.get("context", ".")))).resolve()
        assert context == REPO, f"{name}: build context {context} is not the repo root"
        dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
        assert dockerfile.resolve() == DOCKERFILE.resolve(), f"{name}: dockerfile {dockerfile}"
        target = build.get("target")
        assert target == SERVICE_TARGETS[name], f"{name}: target {target!r}"
        assert target in stages, f"{name}: target {target!r} is not a Dockerfile stage"


COMPOSE_CHECKS: list[Callable[[dict[str, Any]], None]] = [
    check_required_services,
    check_neo4j,
    check_redis,
    check_no_default_passwords,
    check_app_env,
    check_artifacts_volume,
    check_depends_on_healthy,
    check_healthchecks,
    check_commands,
    check_gpu_worker,
    check_builds,
]


def check_gpu_worker_file(c: dict[str, Any]) -> None:
    """docker/compose.worker-gpu.yaml: a GPU worker against external Neo4j and Redis."""
    services = _services(c)
    assert set(services) == {"worker-gpu"}, f"unexpected services {sorted(services)}"
    gpu = services["worker-gpu"]
    _assert_reserves_nvidia_gpu(gpu)
    env = _env(gpu)
    for key in ("NEO4J_URI", "NEO4J_PASSWORD", "REDIS_URL"):
        assert re.fullmatch(rf"\$\{{{key}:\?[^}}]*\}}", env.get(key, "")), (
            f"{key} must be required (${{{key}:?...}}), got {env.get(key)!r}"
        )
    assert env.get("DPGCN_HOME") == "/data"
    argv = _command(gpu)
    assert argv[:2] == ["dpgcn", "worker"] and "training" in (_option(argv, "--queues") or "")
    assert not gpu.get("depends_on"), "a remote worker cannot depend on services it lacks"
    check_no_default_passwords(c)
    check_builds(c, COMPOSE_GPU_WORKER)


# ======================================================================== Dockerfile parsing


@dataclass
class Instr:
    keyword: str
    args: str
    line: int

    def json_args(self) -> list[str] | None:
        if self.args.startswith("["):
            try:
                value = json.loads(self.args)
            except json.JSONDecodeError:
                return None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        return None


@dataclass
class Stage:
    name: str  # the AS name, or its index as a string
    base: str  # FROM image or stage name, global ARG defaults substituted
    instrs: list[Instr] = field(default_factory=list)


def parse_instructions(text: str) -> list[Instr]:
    """Dockerfile lines → instructions (comments dropped, ``\\`` continuations joined)."""
    out: list[Instr] = []
    buf: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped
        if not buf:
            start = lineno
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        joined = " ".join(b for b in buf if b)
        buf = []
        keyword, _, args = joined.partition(" ")
        out.append(Instr(keyword.upper(), args.strip(), start))
    assert not buf, "Dockerfile ends inside a line continuation"
    return out


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), value
    )


def parse_dockerfile(text: str) -> list[Stage]:
    instrs = parse_instructions(text)
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instrs:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            base = _substitute(words[0], global_args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, base))
        elif not stages:
            assert ins.keyword == "ARG", f"line {ins.line}: {ins.keyword} before FROM"
            key, _, default = ins.args.partition("=")
            global_args[key.strip()] = default.strip().strip('"')
        else:
            stages[-1].instrs.append(ins)
    return stages


def _stage_map(stages: list[Stage]) -> dict[str, Stage]:
    return {s.name: s for s in stages}


def _lineage(stages: list[Stage], target: str) -> list[Stage]:
    """``target`` and the stages it is built FROM, nearest first."""
    by_name = _stage_map(stages)
    assert target in by_name, f"no stage {target!r}"
    chain = [by_name[target]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
        assert len(chain) <= len(stages), "FROM cycle"
    return chain


def _effective(stages: list[Stage], target: str, keyword: str) -> Instr | None:
    """The last ``keyword`` instruction in effect for ``target`` (inherited through FROM)."""
    for stage in _lineage(stages, target):
        found = [i for i in stage.instrs if i.keyword == keyword]
        if found:
            return found[-1]
    return None


def _copy_from(ins: Instr) -> str | None:
    m = re.search(r"--from=(\S+)", ins.args)
    return m.group(1) if m else None


def _closure(stages: list[Stage], target: str) -> list[Stage]:
    """Every stage whose output reaches ``target`` (FROM parents and COPY --from stages)."""
    by_name = _stage_map(stages)
    seen: dict[str, Stage] = {}
    todo = [target]
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        stage = by_name[name]
        seen[name] = stage
        todo.append(stage.base)
        todo.extend(f for i in stage.instrs if i.keyword in ("COPY", "ADD") if (f := _copy_from(i)))
    return list(seen.values())


def _copy_sources(ins: Instr) -> list[str]:
    words = ins.json_args() or shlex.split(ins.args)
    words = [w for w in words if not w.startswith("--")]
    assert len(words) >= 2, f"line {ins.line}: COPY needs a source and a destination"
    return words[:-1]


def _has_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


# ------------------------------------------------------------------ .dockerignore matching


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1
                    out += "(?:.*/)?"
                else:
                    out += ".*"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            if body.startswith(("!", "^")):
                body = "^" + body[1:]
            out += f"[{body}]"
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


def read_dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negated, _ignore_regex(pattern)))
    return rules


def is_ignored(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.match(p) for p in prefixes):
            ignored = not negated
    return ignored


# ======================================================================== Dockerfile checks

TARGETS = ("api", "worker", "worker-gpu")


def check_multistage(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "Dockerfile must be multi-stage"
    missing = set(TARGETS) - {s.name for s in stages}
    assert not missing, f"missing targets: {sorted(missing)}"


def check_python_base(stages: list[Stage]) -> None:
    for target in TARGETS:
        root = _lineage(stages, target)[-1].base
        allowed = (
            ("python:3.11-slim", "nvidia/cuda:12")
            if target == "worker-gpu"
            else ("python:3.11-slim",)
        )
        assert root.startswith(allowed), f"{target} is based on {root!r}"


def check_non_root_user(stages: list[Stage]) -> None:
    for target in TARGETS:
        user = _effective(stages, target, "USER")
        assert user is not None, f"{target}: no USER (runs as root)"
        name = user.args.split(":")[0].strip()
        assert name and name not in ("root", "0"), f"{target}: USER {user.args!r} is root"


def check_healthcheck(stages: list[Stage]) -> None:
    hc = _effective(stages, "api", "HEALTHCHECK")
    assert hc is not None and hc.args.strip().upper() != "NONE", "api: no HEALTHCHECK"
    assert "/health" in hc.args, f"api HEALTHCHECK must hit /health: {hc.args!r}"
    cmd = _effective(stages, "api", "CMD")
    port = _option((cmd.json_args() or []) if cmd else [], "--port")
    assert port and f":{port}/health" in hc.args, "HEALTHCHECK port differs from serve --port"


def check_cmds(stages: list[Stage]) -> None:
    def argv(target: str) -> list[str]:
        cmd = _effective(stages, target, "CMD")
        assert cmd is not None, f"{target}: no CMD"
        words = cmd.json_args()
        assert words is not None, f"{target}: CMD must be exec (JSON) form for signals"
        return words

    api = argv("api")
    assert api[:2] == ["dpgcn", "serve"], api
    assert _option(api, "--host") == "0.0.0.0" and _option(api, "--port") == "8000", api
    worker = argv("worker")
    assert worker[:2] == ["dpgcn", "worker"], worker
    assert set((_option(worker, "--queues") or "").split(",")) == {"graph", "training"}, worker
    gpu = argv("worker-gpu")
    assert gpu[:2] == ["dpgcn", "worker"], gpu
    assert "training" in (_option(gpu, "--queues") or "").split(","), gpu


def check_gpu_variant(stages: list[Stage]) -> None:
    def text(target: str) -> str:
        return "\n".join(
            [s.base for s in _closure(stages, target)]
            + [i.args for s in _closure(stages, target) for i in s.instrs]
        )

    assert CUDA_RE.search(text("worker-gpu")), "worker-gpu installs no CUDA torch / CUDA base"
    for target in ("api", "worker"):
        assert not CUDA_RE.search(text(target)), f"{target} pulls CUDA (should be CPU-only)"


def check_installs_project(stages: list[Stage]) -> None:
    runs = [i.args for s in stages for i in s.instrs if i.keyword == "RUN"]
    assert any(
        re.search(r"pip install (?:[^&|;]*\s)?(?:\.|/src/?)(?:\s|$|&|;)", r) for r in runs
    ), "no RUN pip install of the project (pip install . or /src)"


def check_copy_sources(stages: list[Stage], root: Path = REPO) -> None:
    """Every COPY/ADD source from the build context (the repo root) exists and is sent."""
    rules = read_dockerignore(DOCKERIGNORE.read_text()) if DOCKERIGNORE.exists() else []
    copied_top: set[str] = set()
    for stage in stages:
        for ins in stage.instrs:
            if ins.keyword not in ("COPY", "ADD") or _copy_from(ins):
                continue
            matched: list[str] = []
            for src in _copy_sources(ins):
                assert "$" not in src, f"line {ins.line}: COPY source {src!r} uses a variable"
                assert not re.match(r"[a-z]+://", src), f"line {ins.line}: remote ADD {src!r}"
                norm = os.path.normpath(src.lstrip("/"))
                assert not norm.startswith(".."), f"line {ins.line}: {src!r} leaves the context"
                if _has_glob(norm):
                    hits = [os.path.relpath(h, root) for h in glob.glob(str(root / norm))]
                else:
                    assert (root / norm).exists(), f"line {ins.line}: COPY source {src!r} missing"
                    hits = [norm]
                matched += hits
                copied_top.update(h.split("/")[0] for h in hits if h != ".")
            assert matched, f"line {ins.line}: COPY matches nothing"
            for path in matched:
                assert not is_ignored(rules, path), (
                    f"line {ins.line}: {path!r} is excluded by {DOCKERIGNORE.name}"
                )
    # Every package `pip install .` builds must be in the image.
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {re.split(r"[.*]", inc)[0] for inc in includes} | {"pyproject.toml"}
    missing = packages - copied_top
    assert not missing, f"not copied into the image: {sorted(missing)}"


DOCKERFILE_CHECKS: list[Callable[[list[Stage]], None]] = [
    check_multistage,
    check_python_base,
    check_non_root_user,
    check_healthcheck,
    check_cmds,
    check_gpu_variant,
    check_installs_project,
    check_copy_sources,
]


# ======================================================================== tests: real files


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE.is_file(), f"{COMPOSE} missing"
    return _load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} missing"
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.mark.parametrize("check", COMPOSE_CHECKS, ids=lambda f: f.__name__)
def test_compose(compose: dict[str, Any], check: Callable[[dict[str, Any]], None]) -> None:
    check(compose)


def test_compose_app_env_uses_yaml_anchor() -> None:
    text = COMPOSE.read_text()
    anchors = re.findall(r"&([\w-]+)", text)
    assert anchors, "no YAML anchor for the shared app block"
    uses = {a: len(re.findall(rf"\*{re.escape(a)}(?![\w-])", text)) for a in anchors}
    assert max(uses.values()) >= len(APP_SERVICES), f"app services do not share a block: {uses}"


def test_compose_gpu_worker_file() -> None:
    check_gpu_worker_file(_load_yaml(COMPOSE_GPU_WORKER))


@pytest.mark.parametrize("check", DOCKERFILE_CHECKS, ids=lambda f: f.__name__)
def test_dockerfile(stages: list[Stage], check: Callable[[list[Stage]], None]) -> None:
    check(stages)


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    assert DOCKERIGNORE.is_file(), f"{DOCKERIGNORE} missing (BuildKit reads it for the build)"
    rules = read_dockerignore(DOCKERIGNORE.read_text())
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        ".state/neo4j/data",
        ".env",
        "artifacts/model.pt",
        "tests/unit/test_docker.py",
        "dpgcn/__pycache__/cli.cpython-311.pyc",
    ):
        assert is_ignored(rules, path), f"{path} would be sent to the builder"


def test_dockerignore_matcher_follows_docker_semantics() -> None:
    """The helper above agrees with moby/patternmatcher on the cases the checks rely on."""
    rules = read_dockerignore("*\n!dpgcn\n**/__pycache__\n!keep/**/x.py\nsub/*.txt\n")
    assert is_ignored(rules, "README.md")
    assert is_ignored(rules, ".git/objects/ab")
    assert not is_ignored(rules, "dpgcn")
    assert not is_ignored(rules, "dpgcn/cli.py")
    assert is_ignored(rules, "dpgcn/__pycache__/cli.pyc")
    assert not is_ignored(rules, "keep/a/b/x.py")
    assert not is_ignored(read_dockerignore("sub/*.txt"), "sub/d/a.txt")
    assert is_ignored(read_dockerignore("sub/*.txt"), "sub/a.txt")
    assert is_ignored(read_dockerignore("READ?E.m[d]"), "README.md")


def test_docs_cover_compose_and_external_servers() -> None:
    text = DOCS.read_text()
    for needle in (
        "NEO4J_PASSWORD",
        "REDIS_PASSWORD",
        "docker compose -f docker/compose.yaml",
        "--profile gpu",
        "NEO4J_URI",
        "NEO4J_USER",
        "REDIS_URL",
        "compose.worker-gpu.yaml",
    ):
        assert needle in text, f"docs/docker.md does not mention {needle}"


# ======================================================================== tests: broken copies


def _svc(c: dict[str, Any], name: str) -> dict[str, Any]:
    return c["services"][name]


def _set_env(c: dict[str, Any], name: str, key: str, value: str | None) -> None:
    env = dict(_env(_svc(c, name)))  # unshare the anchor
    if value is None:
        env.pop(key, None)
    else:
        env[key] = value
    _svc(c, name)["environment"] = env


C = dict[str, Any]


@dataclass
class Break:
    """A deliberate defect, the check that must catch it and what its message must say."""

    breaker: Callable[[Any], object]
    check: Callable[[Any], None]
    match: str


COMPOSE_BREAKS: dict[str, Break] = {
    "no beat": Break(lambda c: c["services"].pop("beat"), check_required_services, "beat"),
    "neo4j 4.4": Break(
        lambda c: _svc(c, "neo4j").update(image="neo4j:4.4-community"),
        check_neo4j,
        "5.26 community",
    ),
    "neo4j enterprise": Break(
        lambda c: _svc(c, "neo4j").update(image="neo4j:5.26-enterprise"),
        check_neo4j,
        "5.26 community",
    ),
    "no apoc": Break(lambda c: _set_env(c, "neo4j", "NEO4J_PLUGINS", "[]"), check_neo4j, "APOC"),
    "app var in neo4j": Break(
        lambda c: _set_env(c, "neo4j", "NEO4J_PASSWORD", "${NEO4J_PASSWORD:?x}"),
        check_neo4j,
        "config settings",
    ),
    "neo4j no bolt port": Break(
        lambda c: _svc(c, "neo4j").update(ports=["7474:7474"]), check_neo4j, "7687"
    ),
    "default auth": Break(
        lambda c: _set_env(c, "neo4j", "NEO4J_AUTH", "neo4j/neo4j"),
        check_no_default_passwords,
        "default Neo4j credentials",
    ),
    "auth with default": Break(
        lambda c: _set_env(c, "neo4j", "NEO4J_AUTH", "neo4j/${NEO4J_PASSWORD:-password}"),
        check_no_default_passwords,
        "must be required",
    ),
    "optional password": Break(
        lambda c: _set_env(c, "api", "NEO4J_PASSWORD", "${NEO4J_PASSWORD}"),
        check_no_default_passwords,
        "must be required",
    ),
    "unbraced password": Break(
        lambda c: _set_env(c, "worker-gpu", "NEO4J_PASSWORD", "$NEO4J_PASSWORD"),
        check_no_default_passwords,
        "must be required",
    ),
    "literal password": Break(
        lambda c: _set_env(c, "beat", "NEO4J_PASSWORD", "changeme"),
        check_no_default_passwords,
        "default password",
    ),
    "literal redis password": Break(
        lambda c: _set_env(c, "redis", "REDISCLI_AUTH", "hunter2hunter2"),
        check_no_default_passwords,
        "literal password",
    ),
    "redis no auth": Break(
        lambda c: _svc(c, "redis").update(command=["redis-server", "--appendonly", "yes"]),
        check_redis,
        "requirepass",
    ),
    "redis no aof": Break(
        lambda c: _svc(c, "redis").update(
            command=["redis-server", "--requirepass", "${REDIS_PASSWORD:?x}"]
        ),
        check_redis,
        "appendonly",
    ),
    "no neo4j uri": Break(
        lambda c: _set_env(c, "worker-cpu", "NEO4J_URI", None),
        check_app_env,
        "worker-cpu: NEO4J_URI",
    ),
    "redis url no pw": Break(
        lambda c: _set_env(c, "beat", "REDIS_URL", "redis://redis:6379/0"),
        check_app_env,
        "beat: REDIS_URL",
    ),
    "env differs": Break(
        lambda c: _set_env(c, "worker-gpu", "EXTRA", "1"),
        check_app_env,
        "worker-gpu does not share",
    ),
    "no artifacts": Break(
        lambda c: _svc(c, "api").update(volumes=[]), check_artifacts_volume, "api: artifacts"
    ),
    "no healthy dep": Break(
        lambda c: _svc(c, "worker-cpu").update(depends_on=["neo4j", "redis"]),
        check_depends_on_healthy,
        "worker-cpu: depends_on",
    ),
    "started dep": Break(
        lambda c: _svc(c, "api").update(
            depends_on={
                "neo4j": {"condition": "service_started"},
                "redis": {"condition": "service_healthy"},
            }
        ),
        check_depends_on_healthy,
        "api -> neo4j",
    ),
    "no neo4j healthcheck": Break(
        lambda c: _svc(c, "neo4j").pop("healthcheck"), check_healthchecks, "no healthcheck"
    ),
    "redis healthcheck off": Break(
        lambda c: _svc(c, "redis").update(healthcheck={"disable": True}),
        check_healthchecks,
        "disabled",
    ),
    "api wrong health": Break(
        lambda c: _svc(c, "api").update(healthcheck={"test": ["CMD", "true"]}),
        check_healthchecks,
        "/health",
    ),
    "no gpu reservation": Break(
        lambda c: _svc(c, "worker-gpu").pop("deploy"), check_gpu_worker, "reservations"
    ),
    "amd gpu": Break(
        lambda c: _gpu_devices(_svc(c, "worker-gpu"))[0].update(driver="amd"),
        check_gpu_worker,
        "nvidia",
    ),
    "gpu not opt-in": Break(
        lambda c: _svc(c, "worker-gpu").pop("profiles"), check_gpu_worker, "profile gpu"
    ),
    "cpu worker queues": Break(
        lambda c: _svc(c, "worker-cpu").update(command=["dpgcn", "worker", "--queues", "graph"]),
        check_commands,
        "graph",
    ),
    "api localhost": Break(
        lambda c: _svc(c, "api").update(
            command=["dpgcn", "serve", "--host", "127.0.0.1", "--port", "8000"]
        ),
        check_commands,
        "127.0.0.1",
    ),
    "beat not beat": Break(
        lambda c: _svc(c, "beat").update(command=["dpgcn", "worker"]), check_commands, "dpgcn beat"
    ),
    "wrong target": Break(
        lambda c: _svc(c, "worker-gpu")["build"].update(target="worker"),
        check_builds,
        "worker-gpu: target",
    ),
    "wrong context": Break(
        lambda c: _svc(c, "api")["build"].update(context="."), check_builds, "build context"
    ),
    "remote worker optional uri": Break(
        lambda c: _set_env(c, "worker-gpu", "NEO4J_URI", "${NEO4J_URI:-bolt://localhost:7687}"),
        check_gpu_worker_file,
        "NEO4J_URI must be required",
    ),
    "remote worker no gpu": Break(
        lambda c: _svc(c, "worker-gpu").pop("deploy"), check_gpu_worker_file, "reservations"
    ),
}


@pytest.mark.parametrize("name", sorted(COMPOSE_BREAKS))
def test_check_catches_broken_compose(compose: C, name: str) -> None:
    b = COMPOSE_BREAKS[name]
    source = _load_yaml(COMPOSE_GPU_WORKER) if name.startswith("remote") else compose
    broken = copy.deepcopy(source)
    b.breaker(broken)
    with pytest.raises(AssertionError, match=re.escape(b.match)):
        b.check(broken)


def _drop(keyword: str, startswith: str = "") -> Callable[[list[Stage]], None]:
    def breaker(stages: list[Stage]) -> None:
        for s in stages:
            s.instrs = [
                i for i in s.instrs if not (i.keyword == keyword and i.args.startswith(startswith))
            ]

    return breaker


def _edit(keyword: str, old: str, new: str) -> Callable[[list[Stage]], None]:
    def breaker(stages: list[Stage]) -> None:
        hits = 0
        for s in stages:
            for i in s.instrs:
                if i.keyword == keyword and old in i.args:
                    i.args = i.args.replace(old, new)
                    hits += 1
        assert hits, f"nothing to break: no {keyword} with {old!r}"

    return breaker


def _add_copy(src: str) -> Callable[[list[Stage]], None]:
    def breaker(stages: list[Stage]) -> None:
        stages[-1].instrs.append(Instr("COPY", f"{src} /app/", 9999))

    return breaker


def _root_user(stages: list[Stage]) -> None:
    _stage_map(stages)["api"].instrs.append(Instr("USER", "root", 9999))


def _single_stage(stages: list[Stage]) -> None:
    del stages[:-1]


def _alpine(stages: list[Stage]) -> None:
    for s in stages:
        if s.base.startswith("python:"):
            s.base = "python:3.11-alpine"


def _cuda_everywhere(stages: list[Stage]) -> None:
    for s in stages:
        s.instrs.insert(0, Instr("ARG", "X=https://download.pytorch.org/whl/cu124", 0))


def _no_cuda(stages: list[Stage]) -> None:
    for s in stages:
        for i in s.instrs:
            i.args = CUDA_RE.sub("/whl/cpu", i.args)
        s.base = CUDA_RE.sub("python:3.11-slim", s.base)


DOCKERFILE_BREAKS: dict[str, Break] = {
    "single stage": Break(_single_stage, check_multistage, "multi-stage"),
    "alpine base": Break(_alpine, check_python_base, "python:3.11-alpine"),
    "no USER": Break(_drop("USER"), check_non_root_user, "no USER"),
    "USER root": Break(_root_user, check_non_root_user, "is root"),
    "no HEALTHCHECK": Break(_drop("HEALTHCHECK"), check_healthcheck, "no HEALTHCHECK"),
    "HEALTHCHECK elsewhere": Break(
        _edit("HEALTHCHECK", "/health", "/"), check_healthcheck, "/health"
    ),
    "HEALTHCHECK wrong port": Break(
        _edit("HEALTHCHECK", ":8000/", ":9000/"), check_healthcheck, "port differs"
    ),
    "shell CMD": Break(
        _edit("CMD", '["dpgcn", "serve"', 'dpgcn serve ["x"'), check_cmds, "exec (JSON) form"
    ),
    "worker queues": Break(_edit("CMD", '"graph,training"', '"graph"'), check_cmds, "graph"),
    "no CUDA": Break(_no_cuda, check_gpu_variant, "worker-gpu installs no CUDA"),
    "CUDA in cpu images": Break(_cuda_everywhere, check_gpu_variant, "pulls CUDA"),
    "no pip install": Break(_drop("RUN"), check_installs_project, "pip install"),
    "missing COPY source": Break(_add_copy("no_such_dir"), check_copy_sources, "missing"),
    "ignored COPY source": Break(_add_copy("tests"), check_copy_sources, "excluded by"),
    "COPY outside context": Break(_add_copy("../etc"), check_copy_sources, "leaves the context"),
    "package not copied": Break(_drop("COPY", "cypher"), check_copy_sources, "cypher"),
}


@pytest.mark.parametrize("name", sorted(DOCKERFILE_BREAKS))
def test_check_catches_broken_dockerfile(name: str) -> None:
    b = DOCKERFILE_BREAKS[name]
    broken = parse_dockerfile(DOCKERFILE.read_text())
    b.breaker(broken)
    with pytest.raises(AssertionError, match=re.escape(b.match)):
        b.check(broken)


def test_parser_reads_continuations_and_global_args() -> None:
    stages = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nARG BASE=python:3.11-slim\nFROM ${BASE} AS a\n"
        "RUN echo 1 \\\n  # a comment\n  && echo 2\nFROM a AS b\nUSER 10001\n"
    )
    assert [s.name for s in stages] == ["a", "b"]
    assert stages[0].base == "python:3.11-slim"
    assert stages[0].instrs[0].args == "echo 1 && echo 2"
    assert _effective(stages, "b", "USER") is not None
    assert _effective(stages, "a", "USER") is None


# ======================================================================== docker compose config


def _compose_cli() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        r = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


@pytest.mark.skipif(not _compose_cli(), reason="docker compose plugin not installed")
def test_docker_compose_config_validates() -> None:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in (*SECRET_VARS, "NEO4J_URI", "REDIS_URL", "COMPOSE_FILE", "COMPOSE_PROFILES")
    }
    env = {**base, "NEO4J_PASSWORD": "s3cret-test-pw", "REDIS_PASSWORD": "0123abcd"}

    def config(path: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", "-f", str(path), "--profile", "gpu", "config", "--quiet"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )

    ok = config(COMPOSE, env)
    assert ok.returncode == 0, ok.stderr
    missing = config(COMPOSE, {**base, "REDIS_PASSWORD": "0123abcd"})
    assert missing.returncode != 0 and "NEO4J_PASSWORD" in missing.stderr
    remote = {**env, "NEO4J_URI": "bolt://head:7687", "REDIS_URL": "redis://:x@head:6379/0"}
    ok = config(COMPOSE_GPU_WORKER, remote)
    assert ok.returncode == 0, ok.stderr
    missing = config(COMPOSE_GPU_WORKER, env)
    assert missing.returncode != 0 and "NEO4J_URI" in missing.stderr
