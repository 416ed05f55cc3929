"""Equal-budget hyper-parameter tuning (issue 16, item 4).

:func:`tune` runs one Optuna study per model on one export, every study with the same number of
trials: a seeded TPE sampler proposes a configuration from the model's own search space (the
``search_space(trial)`` function at the end of the model's module under ``training/models/``),
:func:`training.train.fit` trains it under the project's one training rule, and the objective is
the best validation selection metric (``TrainConfig.eval.select_metric``, NDCG@10 by default) of the
run. Every epoch's validation value is reported to the study at the trial's training budget so
far, measured in scored training pairs (:func:`budget_step`), and a successive-halving pruner
keeps, at each rung of that budget, only the trials in the top third of those that reached it:
a trial with 32 negatives per positive is judged after as many scored pairs as one with 2, not
after as many epochs. Test data is never looked at: the split is the chosen protocol's split
for ``seed`` and only its validation part is scored.

The result, ``tuned.json`` (model → best params, value, trial counts, seconds), is what
``dpgcn evaluate --tuned`` applies per model. See ``docs/tuning.md``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.config_paths import config_paths, settings_differ
from training.data import load_export
from training.errors import ConfigError, TrainingError
from training.loop import fit, split_for
from training.models import MODEL_SPECS

logger = logging.getLogger(__name__)

#: Model name → the module that declares its ``search_space(trial) -> dict`` (the TrainConfig
#: settings a trial changes, by their dotted paths: ``{"optim.lr": ...}``), from the registry.
#: The three DP-GCN variants share DP-GCN's module.
SEARCH_SPACE_MODULES: dict[str, str] = {
    name: spec.module for name, spec in MODEL_SPECS.items() if spec.module is not None
}

TUNED_FILE = "tuned.json"
#: Successive halving on the training budget (:func:`budget_step`): the first rung at
#: ``PRUNER_MIN_BUDGET`` scored pairs per training positive (epoch 6 at the default 2
#: negatives, epoch 1 at 15 or more), each later rung ``PRUNER_REDUCTION`` times the last, and
#: at each rung only the top ``1 / PRUNER_REDUCTION`` of the trials that reached it go on.
PRUNER_MIN_BUDGET = 16
PRUNER_REDUCTION = 3
#: What a stored study records of the pruning rule; a study made under another rule is not
#: resumed (its trials were judged on another scale).
PRUNING = f"successive-halving/pairs/{PRUNER_MIN_BUDGET}/{PRUNER_REDUCTION}"

SearchSpace = Callable[[Any], dict[str, Any]]


def search_space_of(model: str) -> SearchSpace:
    """The ``search_space`` function declared next to ``model`` (ConfigError when none is)."""
    module_name = SEARCH_SPACE_MODULES.get(model)
    fn = None
    if module_name is not None:
        fn = getattr(importlib.import_module(module_name), "search_space", None)
    if fn is None:
        raise ConfigError(
            f"model {model!r} declares no search space; tunable models: {', '.join(tunable())}"
        )
    return fn  # type: ignore[no-any-return]


def tunable() -> list[str]:
    """The models whose module declares a ``search_space`` (registry order)."""
    out = []
    for name, module_name in SEARCH_SPACE_MODULES.items():
        if hasattr(importlib.import_module(module_name), "search_space"):
            out.append(name)
    return out


def tune(
    export_dir: Path,
    models: Sequence[str] | None = None,
    trials: int = 20,
    seed: int = 0,
    protocol: str = "leave-last-out",
    timeout: float | None = None,
    out_path: Path | None = None,
    config: TrainConfig | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    pruner: Any = None,
    start_from_defaults: bool = True,
    storage_dir: Path | None = None,
    stop_after: float | None = None,
) -> dict[str, Any]:
    """One study of ``trials`` trials per model; returns (and writes to ``out_path`` when
    given) ``{"protocol", "seed", "trials", "select_metric", "models": {name: {"params",
    "value", "trials", "complete", "pruned", "failed", "seconds", "best_trial"}}}``.

    ``timeout`` (seconds) caps each model's study; a study it stops early has fewer trials
    than asked, which its ``trials`` entry shows and a warning names (the budget is no longer
    equal). ``config`` holds the settings every trial starts from (its ``model``, ``seed`` and
    ``protocol`` are overridden). ``progress`` receives ``{"model", "trial", "trials",
    "state", "value"}`` after every trial. ``pruner`` replaces the default successive
    halving (:data:`PRUNING`; a fresh one is not made per study when given, so pass a
    stateless pruner such as Optuna's). ``start_from_defaults`` makes
    each study's first trial the shared default configuration (``config``'s values, clamped
    into the space), so a tuned model is never worse on validation than the untuned one; that
    trial counts towards the budget like any other.

    Chunked runs: with ``storage_dir`` every study lives in an Optuna journal file there
    (``<model>.<protocol>.seed<seed>.journal``) and a later call resumes it up to ``trials``
    finished trials; a trial that a killed process left running does not count. ``stop_after``
    (seconds for this call) starts no trial after that time: the unfinished studies are listed
    under ``"unfinished"`` (their models are left out of ``"models"``) and the same call again
    continues them, so every model still gets ``trials`` trials. An existing ``out_path`` of
    the same protocol, seed, trial count and metric keeps its other models' entries.
    """
    import optuna

    if trials < 1:
        raise ConfigError("trials must be >= 1")
    names = list(models) if models else tunable()
    spaces = {name: search_space_of(name) for name in names}
    base = (config or TrainConfig()).replace({"seed": seed, "eval.protocol": protocol})
    graph = load_export(Path(export_dir))
    split = split_for(graph, base, seed)
    if len(split.val) == 0:
        raise TrainingError(f"{export_dir}: the {protocol} split has no validation interactions")
    metric = f"val_{base.eval.select_metric}"
    out: dict[str, Any] = {
        "export_dir": str(export_dir),
        "protocol": protocol,
        "seed": seed,
        "trials": trials,
        "select_metric": base.eval.select_metric,
        "models": _kept_entries(out_path, protocol, seed, trials, base.eval.select_metric, names),
    }
    unfinished: list[str] = []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    for name in names:
        space = spaces[name]

        def objective(trial: optuna.Trial, name: str = name, space: SearchSpace = space) -> float:
            cfg = base.replace({"model.name": name, **space(trial)})

            def on_epoch(event: dict[str, Any]) -> None:
                value = event.get(metric)
                if not isinstance(value, float) or not math.isfinite(value):
                    return
                trial.report(value, budget_step(int(event["epoch"]), cfg))
                if trial.should_prune():
                    raise optuna.TrialPruned()

            result = fit(split, cfg, on_epoch)
            value = result.best_val
            if result.policy is not None and result.policy.val_by_alpha:
                value = max(value, *result.policy.val_by_alpha.values())
            trial.set_user_attr("best_epoch", result.best_epoch)
            trial.set_user_attr("seconds", result.train_seconds)
            return float(value)

        study = _open_study(
            name, seed, protocol, base, graph_key(export_dir), storage_dir, _pruning(pruner)
        )
        done = _finished(study)
        # A fresh sampler per call: seeded with the finished-trial count, so a resumed study
        # does not draw the configurations of its first call's random start-up again.
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
        study.pruner = pruner or optuna.pruners.SuccessiveHalvingPruner(
            min_resource=PRUNER_MIN_BUDGET, reduction_factor=PRUNER_REDUCTION
        )

        def after(study: optuna.Study, frozen: optuna.trial.FrozenTrial, name: str = name) -> None:
            number = len(_finished(study))
            logger.info(
                "%s trial %d/%d %s value=%s params=%s",
                name,
                number,
                trials,
                frozen.state.name,
                frozen.value,
                frozen.params,
            )
            if progress is not None:
                progress(
                    {
                        "model": name,
                        "trial": number,
                        "trials": trials,
                        "state": frozen.state.name.lower(),
                        "value": frozen.value,
                    }
                )

        defaults = default_params(space, base)
        waiting = [t for t in study.trials if t.state == optuna.trial.TrialState.WAITING]
        if start_from_defaults and not waiting and not any(_is_default(t, defaults) for t in done):
            study.enqueue_trial(defaults)  # the only trials ever enqueued are the defaults
        if done:
            logger.info("%s: resuming its study at %d of %d trials", name, len(done), trials)
        left = trials - len(done)
        budget = timeout
        if stop_after is not None:
            remaining = stop_after - (time.perf_counter() - started)
            budget = remaining if budget is None else min(budget, remaining)
        if left > 0 and (budget is None or budget > 0):
            study.optimize(objective, n_trials=left, timeout=budget, callbacks=[after])
        done = _finished(study)
        stopped = stop_after is not None and time.perf_counter() - started >= stop_after
        if len(done) < trials and stopped:
            unfinished.append(name)
            logger.warning(
                "%s: %d of %d trials after the stop time; run again to continue",
                name,
                len(done),
                trials,
            )
            continue
        out["models"][name] = _summary(study, done, defaults if start_from_defaults else None)
        if len(done) < trials:
            logger.warning(
                "%s: %d of %d trials ran before the timeout (budget no longer equal)",
                name,
                len(done),
                trials,
            )
        if out_path is not None:
            write_tuned(out_path, out)
    if unfinished:
        out["unfinished"] = unfinished
    if out_path is not None:
        write_tuned(out_path, out)
    return out


def budget_step(epoch: int, config: TrainConfig) -> int:
    """A trial's training budget after ``epoch`` epochs, the step its validation values are
    reported at: the training pairs scored so far per training positive, ``epoch x (1 +
    num_negatives)``. An epoch's cost grows with the negatives drawn per positive, so rungs in
    epochs would let a 32-negative trial spend 11 times a 2-negative one's budget before it is
    first judged. An epoch holds the same number of optimizer steps whatever the negative
    count, so in exchange a many-negative trial is judged after fewer steps (docs/tuning.md,
    "Measured ... session 20")."""
    return epoch * (1 + config.optim.num_negatives)


def _pruning(pruner: Any) -> str:
    """The pruning rule a study records: :data:`PRUNING`, or the given pruner's class."""
    return PRUNING if pruner is None else f"{type(pruner).__name__}/pairs"


def graph_key(export_dir: Path) -> str:
    """What identifies an export for a stored study: its ``meta.json`` (counts, dataset)."""
    meta = Path(export_dir) / "meta.json"
    text = meta.read_text() if meta.is_file() else str(Path(export_dir).resolve())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _open_study(
    name: str,
    seed: int,
    protocol: str,
    base: TrainConfig,
    export_key: str,
    storage_dir: Path | None,
    pruning: str = PRUNING,
) -> Any:
    """The model's study: in memory, or resumed from its journal file in ``storage_dir``
    (ConfigError when the stored study was made with other settings, another export or
    another pruning rule)."""
    import optuna

    study_name = f"{name}.{protocol}.seed{seed}"
    settings = {
        "config": base.replace({"model.name": name}).to_dict(),
        "export": export_key,
        "pruning": pruning,
    }
    if storage_dir is None:
        return optuna.create_study(direction="maximize", study_name=study_name)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(storage_dir).mkdir(parents=True, exist_ok=True)
    path = Path(storage_dir) / f"{study_name}.journal"
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(
        direction="maximize", study_name=study_name, storage=storage, load_if_exists=True
    )
    stored = study.user_attrs.get("settings")
    if stored is not None and isinstance((stored.get("config") or {}).get("model"), str):
        raise ConfigError(
            f"{path}: this study was stored before TrainConfig had sections (its trials' "
            "parameters have the old flat names); use another --storage folder or delete the "
            "file for a fresh study"
        )
    if stored is not None and stored.get("pruning", _OLD_PRUNING) != pruning:
        raise ConfigError(
            f"{path}: this study was pruned by another rule "
            f"({stored.get('pruning', _OLD_PRUNING)}, now {pruning}); use another --storage "
            "folder or delete the file for a fresh study"
        )
    if stored is None:
        study.set_user_attr("settings", json.loads(json.dumps(settings)))
    elif not _same_settings(stored, json.loads(json.dumps(settings))):
        raise ConfigError(
            f"{path}: this study was made with other settings or another export; "
            "use another --storage folder or delete the file for a fresh study"
        )
    return study


#: The rule of the studies stored before the pruning rule was recorded.
_OLD_PRUNING = "median/epochs/3/5"


def _same_settings(stored: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a stored study's settings are the current ones: the same export and the same
    ``TrainConfig`` values, a setting that one side lacks (added to or removed from the code
    since) counting as its default value."""
    if stored.get("export") != current["export"]:
        return False
    return not settings_differ(TrainConfig, stored.get("config") or {}, current["config"])


def _is_default(trial: Any, defaults: dict[str, Any]) -> bool:
    """Whether ``trial`` is the study's default-configuration trial (the enqueued one)."""
    return all(trial.params.get(k) == v for k, v in defaults.items())


def _finished(study: Any) -> list[Any]:
    """The trials that count towards the budget: complete, pruned or failed (a trial a killed
    process left running does not)."""
    import optuna

    state = optuna.trial.TrialState
    return [t for t in study.trials if t.state in (state.COMPLETE, state.PRUNED, state.FAIL)]


def _summary(study: Any, done: list[Any], defaults: dict[str, Any] | None) -> dict[str, Any]:
    """One model's ``tuned.json`` entry; ``seconds`` is the sum of its trials' durations, so a
    study run in several calls reports its whole cost."""
    import optuna

    state = optuna.trial.TrialState
    states = [t.state for t in done]
    seconds = sum(t.duration.total_seconds() for t in done if t.duration is not None)
    entry: dict[str, Any] = {
        "trials": len(done),
        "complete": states.count(state.COMPLETE),
        "pruned": states.count(state.PRUNED),
        "failed": states.count(state.FAIL),
        "interrupted": len(study.trials)
        - len(done)
        - sum(t.state == state.WAITING for t in study.trials),
        "seconds": round(seconds, 1),
        "seconds_per_trial": round(seconds / max(len(done), 1), 1),
    }
    if defaults is not None:
        first = next((t for t in done if _is_default(t, defaults)), None)
        entry["default_params"] = defaults
        entry["default_value"] = first.value if first is not None else None  # None: pruned
    complete = [t for t in done if t.state == state.COMPLETE]
    if complete:
        best = max(complete, key=lambda t: t.value)
        entry.update(
            params=best.params,
            value=best.value,
            best_trial=best.number,
            best_epoch=best.user_attrs.get("best_epoch"),
        )
    else:
        entry.update(params={}, value=None, best_trial=None)
        logger.warning("no trial of the study %s completed; defaults stay", study.study_name)
    return entry


def _kept_entries(
    out_path: Path | None,
    protocol: str,
    seed: int,
    trials: int,
    metric: str,
    names: Sequence[str],
) -> dict[str, Any]:
    """The other models' entries of an existing ``out_path`` made with the same protocol, seed,
    trial count and metric (a per-model call adds to the file instead of replacing it)."""
    if out_path is None or not Path(out_path).is_file():
        return {}
    try:
        old = json.loads(Path(out_path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{out_path}: cannot read the tuned configs: {e}") from e
    same = (old.get("protocol"), old.get("seed"), old.get("trials"), old.get("select_metric"))
    if same != (protocol, seed, trials, metric):
        raise ConfigError(
            f"{out_path}: holds a tune of protocol {same[0]}, seed {same[1]}, {same[2]} trials, "
            f"{same[3]}; this one is {protocol}, seed {seed}, {trials} trials, {metric} "
            "(equal budgets only: use another --out)"
        )
    models = old.get("models") if isinstance(old.get("models"), dict) else {}
    return {k: v for k, v in models.items() if k not in names}


def default_params(space: SearchSpace, config: TrainConfig) -> dict[str, Any]:
    """``config``'s values of the settings ``space`` suggests (by their dotted paths), clamped
    into their ranges
    (a weight decay of 0 becomes the log range's lower end); categorical values outside the
    choices are left to the sampler."""
    import optuna

    out: dict[str, Any] = {}
    # A space may suggest a setting only under a condition (DP-GCN's dropout with 2 layers or
    # more): each probe fixes the values found so far, until no new setting turns up.
    for _ in range(4):
        study = optuna.create_study()
        study.enqueue_trial(out)
        probe = study.ask()
        space(probe)
        found: dict[str, Any] = {}
        for name, dist in probe.distributions.items():
            value = config.get(name)
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                if value in dist.choices:
                    found[name] = value
            elif isinstance(
                dist, optuna.distributions.IntDistribution | optuna.distributions.FloatDistribution
            ):
                found[name] = min(max(value, dist.low), dist.high)
        if found == out:
            break
        out = found
    return out


def write_tuned(path: Path, tuned: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(tuned, indent=2, sort_keys=True))
    tmp.replace(path)


def load_tuned(path: Path) -> dict[str, dict[str, Any]]:
    """Model → TrainConfig changes of a ``tuned.json`` by dotted path (``{"optim.lr": ...}``;
    a file written before TrainConfig had sections holds the old flat names, read through
    :func:`training.config_paths.config_paths`); each set is checked against :class:`TrainConfig`
    (unknown settings or bad values raise a ConfigError naming the file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the tuned configs: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f"{path}: not a tuned.json (no 'models' object)")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in data["models"].items():
        params = entry.get("params") if isinstance(entry, dict) else None
        if not isinstance(params, dict):
            raise ConfigError(f"{path}: model {name!r} has no 'params' object")
        changes = config_paths(TrainConfig, params)
        try:
            TrainConfig().replace({"model.name": name, **changes})
        except ConfigError as e:
            raise ConfigError(f"{path}: model {name!r}: {e}") from e
        out[name] = changes
    return out


def tuned_table(tuned: dict[str, Any]) -> str:
    """A markdown table of a tune result: model, best validation value, trials, seconds,
    best params."""
    metric = tuned.get("select_metric", "ndcg@10")
    lines = [
        f"| model | default val {metric} | best val {metric} | trials (complete / pruned) | "
        "seconds | s / trial | best params |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in tuned.get("models", {}).items():
        value = e.get("value")
        shown = f"{value:.4f}" if isinstance(value, float) else "–"
        default = e.get("default_value")
        default_shown = f"{default:.4f}" if isinstance(default, float) else "–"
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(e.get("params", {}).items()))
        lines.append(
            f"| {name} | {default_shown} | {shown} | {e['trials']} ({e['complete']} / "
            f"{e['pruned']}) | "
            f"{e['seconds']} | {e['seconds_per_trial']} | {params} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
