"""Dotted paths of experiment settings: reading every stored form of the settings as
``{dotted path: value}``, comparing two sets of settings, and checking a path or a whole set
against the settings classes with errors that name the setting.

Settings are a tree of frozen pydantic models, its root :class:`training.config.TrainConfig`
(sections, and sections inside sections such as ``model.dpgcn``); a dotted path names one
field of that tree (``"optim.lr"``, ``"model.dpgcn.cold_simulation"``) or a whole section
(``"model.dpgcn"``). :mod:`training.config` imports this module, so each function here takes
the root class (``root``, always ``TrainConfig`` outside the tests) instead of importing it.

The stored forms: sections as objects (``to_json()``), dotted paths (``tuned.json``,
``TrainConfig.replace``), and the forms older code wrote: one flat object of before the
sections (checkpoints, stored runs, ``tuned.json`` files, Celery messages in flight;
:data:`LEGACY_PATHS`) and DP-GCN's settings in the ``model`` section (:data:`MOVED_PATHS`).
:func:`config_paths` is the one place that knows the older names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from training.errors import ConfigError

#: A root settings class (:class:`training.config.TrainConfig`).
Root = TypeVar("Root", bound=BaseModel)

#: The flat names written before :class:`TrainConfig` had sections, by their section then.
_FLAT_NAMES = {
    "model": "dim num_layers dropout mlp_hidden history_len query_loss_weight word2vec_terms "
    "cold_simulation",
    "optim": "epochs lr weight_decay batch_size num_negatives patience batching "
    "minibatch_min_edges fanout fanout_per mixed_precision deterministic checkpoint_interval_s "
    "processes",
    "eval": "protocol ratios cold_share min_interactions select_metric top_k click_negatives "
    "sampled_candidates",
}
#: The flat names written before :class:`TrainConfig` had sections → their section paths then
#: (:data:`MOVED_PATHS` takes them on to today's). Only :func:`config_paths` reads it.
LEGACY_PATHS: dict[str, str] = {
    **{
        name: f"{section}.{name}"
        for section, names in _FLAT_NAMES.items()
        for name in names.split()
    },
    "eval_max_users": "eval.max_users",
    "rewards": "policy.rewards",
    "cold_start_k": "serving.cold_start_k",
}

#: Paths of settings that have moved since the sections → where they are now: DP-GCN's own
#: settings went from the ``model`` section to ``model.dpgcn``. Only :func:`config_paths` reads it.
MOVED_PATHS: dict[str, str] = {
    "model.word2vec_terms": "model.dpgcn.word2vec_terms",
    "model.cold_simulation": "model.dpgcn.cold_simulation",
}

#: Settings stored before ``model.dpgcn.relation_mean`` and ``model.dpgcn.side_scale`` existed
#: (the code of ``d471da9``) got them from the cold-start share: ``"node"`` and ``5.0`` from a
#: share of :data:`LEGACY_COLD_SCALE_SHARE` on, ``"type"`` and ``1.0`` below it.
#: :func:`config_paths` gives such settings those values, so their runs still match and
#: reproduce.
LEGACY_COLD_SCALE_SHARE = 0.25


def settings_differ(
    root: type[BaseModel],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    ignore: tuple[str, ...] = (),
) -> list[str]:
    """The dotted paths whose values differ between two sets of ``root`` settings in any
    stored form (:func:`config_paths`), a setting that one side lacks (added to or removed from
    the code since) counting as its default value; paths starting with one of ``ignore`` aside.
    The one comparison behind stored runs (``training.report.same_settings``), stored studies
    (``dpgcn tune``) and resumed checkpoints."""
    defaults = config_paths(root, root().model_dump(mode="json"))
    a, b = (json.loads(json.dumps(config_paths(root, side))) for side in (old, new))
    keys = (key for key in a.keys() | b.keys() if not key.startswith(ignore))
    return sorted(
        key for key in keys if a.get(key, defaults.get(key)) != b.get(key, defaults.get(key))
    )


def config_paths(root: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """``{dotted path: value}`` of ``root`` settings in any stored form: sections as objects
    (``{"optim": {"lr": ...}, "model": {"dpgcn": {...}}}``), dotted paths
    (``{"optim.lr": ...}``), or a form written by older code: the flat form of before the
    sections (``{"lr": ..., "model": "dpgcn", "ddpg": {...}}``: checkpoints, stored runs,
    ``tuned.json`` files, Celery messages), and DP-GCN's settings in the ``model`` section
    (:data:`MOVED_PATHS`), which then get the relation mean and side scale the code of the
    time derived from the share (:data:`LEGACY_COLD_SCALE_SHARE`). Unknown names are kept as
    they are (:meth:`TrainConfig.replace` rejects them; stored-run matching counts them as
    differences). This is the one place that knows the older names."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "ddpg" and isinstance(value, Mapping):
            out.update((f"policy.{k}", v) for k, v in value.items())
        elif key == "model" and not isinstance(value, Mapping):
            out["model.name"] = value
        else:
            _flatten(root, LEGACY_PATHS.get(key, key), value, out)
    legacy_share = out.get("model.cold_simulation")
    for old, new in MOVED_PATHS.items():
        if old in out:
            moved = out.pop(old)
            out.setdefault(new, moved)
    if legacy_share is not None:
        cold = isinstance(legacy_share, int | float) and legacy_share >= LEGACY_COLD_SCALE_SHARE
        out.setdefault("model.dpgcn.relation_mean", "node" if cold else "type")
        out.setdefault("model.dpgcn.side_scale", 5.0 if cold else 1.0)
    return out


def path_parts(root: type[BaseModel], path: str) -> list[str]:
    """The attribute names of a dotted path, checked against ``root`` and its sections
    (a :class:`~training.errors.ConfigError` naming the known settings otherwise)."""
    parts = path.split(".")
    cls: type[BaseModel] | None = root
    for part in parts:
        if cls is None or part not in cls.model_fields:
            known = ", ".join(
                f"{name}.*" if _section_type(root, name) else name for name in root.model_fields
            )
            raise ConfigError(f"unknown setting {root.__name__}.{path} (known: {known})")
        cls = _section_type(cls, part)
    return parts


def validated(root: type[Root], data: dict[str, Any]) -> Root:
    """``root`` settings from nested dicts, a bad value raising a
    :class:`~training.errors.ConfigError` that names each failing setting's path
    (``TrainConfig.optim.lr must be positive, got 0.0``)."""
    try:
        return root.model_validate(data)
    except ValidationError as e:
        raise ConfigError("; ".join(_message(root, err) for err in e.errors())) from None


def _flatten(root: type[BaseModel], path: str, value: Any, out: dict[str, Any]) -> None:
    """``out[path] = value``, or one entry per field when ``path`` names a section and
    ``value`` is a mapping (recursively)."""
    if isinstance(value, Mapping) and _section_at(root, path) is not None:
        for k, v in value.items():
            _flatten(root, f"{path}.{k}", v, out)
    else:
        out[path] = value


def _section_at(root: type[BaseModel], path: str) -> type[BaseModel] | None:
    """The settings class at ``path`` (``"model"``, ``"model.dpgcn"``), None when the path
    is not a section."""
    cls: type[BaseModel] | None = root
    for part in path.split("."):
        if cls is None or part not in cls.model_fields:
            return None
        cls = _section_type(cls, part)
    return cls


def _section_type(cls: type[BaseModel], name: str) -> type[BaseModel] | None:
    annotation = cls.model_fields[name].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _message(root: type[BaseModel], err: Any) -> str:
    path = ".".join(str(p) for p in err["loc"])
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "value_error":
        text = str(ctx.get("error", err["msg"]))
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        text = (
            "must be positive"
            if (kind, bound) == ("greater_than", 0)
            else f"must be {_BOUNDS[kind]} {bound}"
        )
    elif kind == "extra_forbidden":
        text = "is not a setting"
    elif kind == "finite_number":
        text = "must be a finite number"
    else:
        text = err["msg"][:1].lower() + err["msg"][1:]
    got = err.get("input")
    shown = "" if kind == "extra_forbidden" or isinstance(got, dict) else f", got {got!r}"
    return f"{root.__name__}.{path} {text}{shown}"
