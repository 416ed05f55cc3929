"""The loader registry: every source is listed, documented and reachable by name."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from graphstore.sources.loaders import LOADERS, load_dataset


def test_every_source_is_registered() -> None:
    assert set(LOADERS) == {"generic", "movielens", "bestbuy", "jdsearch", "amazon"}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_each_loader_documents_its_format(name: str) -> None:
    module = importlib.import_module(f"graphstore.sources.loaders.{name}")
    assert module.load is LOADERS[name]
    assert module.__doc__ and len(module.__doc__) > 400
    parameters = inspect.signature(module.load).parameters
    assert next(iter(parameters)) == "path"
    assert parameters["on_error"].default == "raise"


def test_load_dataset_by_name(generic_dir: Path) -> None:
    source = load_dataset("generic", str(generic_dir))
    assert len(list(source.users)) == 3
    with pytest.raises(ValueError, match="unknown dataset loader 'csv'"):
        load_dataset("csv", generic_dir)
    with pytest.raises(TypeError):
        load_dataset("generic", generic_dir, limit=3)
