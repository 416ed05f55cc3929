"""Versions of the DDPG re-ranking policy of a model version, stored in the graph.

Each version is a ``(:Policy {model_version, version, created_at, actor, …stats})`` node
linked ``-[:POLICY_OF]->`` its ``(:Model {version})``. ``actor`` holds the bytes of a policy
file that :func:`training.inference.load_policy_adjuster` reads (``policy.pt``). Version 1 is
the policy trained with the model (saved at write-back); later versions come from the online
updates fed by user feedback (``workers.online``). Serving always takes the newest version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from neo4j import Driver

from graphstore.driver import execute
from graphstore.errors import VersionError

logger = logging.getLogger(__name__)

#: Properties a caller's statistics may not overwrite.
RESERVED = frozenset({"model_version", "version", "actor", "created_at"})


@dataclass(frozen=True)
class PolicyRecord:
    model_version: str
    version: int
    actor: bytes
    created_at: str


def save_policy(
    driver: Driver,
    model_version: str,
    actor_blob: bytes,
    stats: Mapping[str, Any],
    database: str = "neo4j",
) -> int:
    """Store ``actor_blob`` as the next policy version of ``model_version``; returns its number.

    Numbering is atomic: the model node is write-locked in the same transaction, so two
    concurrent savers get consecutive numbers. ``stats`` must be flat (numbers, text, bools).
    Raises :class:`VersionError` when the model version does not exist.
    """
    if not isinstance(actor_blob, bytes | bytearray) or not actor_blob:
        raise ValueError("actor_blob must be non-empty bytes (a policy file)")
    clean: dict[str, Any] = {}
    for key, value in stats.items():
        if key in RESERVED:
            raise ValueError(f"policy statistic {key!r} is reserved")
        if not isinstance(value, int | float | str | bool) and value is not None:
            raise ValueError(f"policy statistic {key!r} must be a number, text or bool")
        clean[key] = value
    records = execute(
        driver,
        "policies/create_policy",
        {
            "model_version": model_version,
            "actor": bytes(actor_blob),
            "created_at": datetime.now(UTC).isoformat(),
            "stats": clean,
        },
        database=database,
    )
    if not records:
        raise VersionError(f"cannot save a policy: no model version {model_version!r}")
    version = int(records[0]["version"])
    logger.info("saved policy version %d of model %s", version, model_version)
    return version


def get_latest_policy(
    driver: Driver, model_version: str, database: str = "neo4j"
) -> PolicyRecord | None:
    """The newest policy version of ``model_version``, or ``None`` when it has none."""
    records = execute(
        driver,
        "policies/get_latest_policy",
        {"model_version": model_version},
        database=database,
        read=True,
    )
    if not records:
        return None
    r = records[0]
    return PolicyRecord(
        model_version=str(r["model_version"]),
        version=int(r["version"]),
        actor=bytes(r["actor"]),
        created_at=str(r["created_at"]),
    )


def list_policies(
    driver: Driver, model_version: str, database: str = "neo4j"
) -> list[dict[str, Any]]:
    """Every policy version of ``model_version`` with its statistics (without the actor
    bytes), newest first."""
    records = execute(
        driver,
        "policies/list_policies",
        {"model_version": model_version},
        database=database,
        read=True,
    )
    return [{k: v for k, v in dict(r["policy"]).items() if k != "actor"} for r in records]
