"""The model registry is one table: every other view is read from ``MODEL_SPECS``."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from training.models import DISPLAY_NAMES, MODEL_REGISTRY, MODEL_SPECS, SERVABLE
from training.tuning import SEARCH_SPACE_MODULES, tunable


def test_views_follow_the_specs() -> None:
    assert list(MODEL_REGISTRY) == list(MODEL_SPECS)
    assert all(MODEL_REGISTRY[n] is s.builder for n, s in MODEL_SPECS.items())
    assert set(SERVABLE) == {n for n, s in MODEL_SPECS.items() if s.servable}
    assert {n: DISPLAY_NAMES[n] for n in MODEL_SPECS} == {
        n: s.display for n, s in MODEL_SPECS.items()
    }
    assert {n: s.module for n, s in MODEL_SPECS.items() if s.module} == SEARCH_SPACE_MODULES


def test_every_named_tuning_module_declares_a_search_space() -> None:
    for name, spec in MODEL_SPECS.items():
        if spec.module is not None:
            module = importlib.import_module(spec.module)
            assert callable(getattr(module, "search_space", None)), name
    assert set(tunable()) == set(SEARCH_SPACE_MODULES)


def test_display_names_are_unique() -> None:
    names = [s.display for s in MODEL_SPECS.values()]
    assert len(names) == len(set(names))


def test_the_registry_loads_no_torch_and_the_cli_lists_its_names() -> None:
    """The CLI reads the model names from the registry itself (no copied list), so importing
    ``training.models`` must stay cheap."""
    code = "import sys, training.models; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.strip() == "False"
    from dpgcn.cli_evaluate import MODEL_NAMES

    assert MODEL_NAMES.split(", ") == list(MODEL_SPECS)
