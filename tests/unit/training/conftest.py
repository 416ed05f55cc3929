"""Shared fixtures: one tiny random export, its split and training tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from export_factory import write_random_export

from training.config import TrainConfig
from training.data import ExportGraph, load_export
from training.dataset import GraphData, build_graph_data
from training.splits import Split, split_interactions

TINY = TrainConfig().replace(
    {
        "model.dim": 8,
        "optim.epochs": 2,
        "optim.batch_size": 64,
        "model.mlp_hidden": (16,),
        "model.history_len": 5,
        "eval.sampled_candidates": 20,
        "eval.top_k": (5, 10),
    }
)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_export(tmp_path_factory.mktemp("export") / "tiny", seed=1)


@pytest.fixture(scope="session")
def graph(export_dir: Path) -> ExportGraph:
    return load_export(export_dir)


@pytest.fixture(scope="session")
def split(graph: ExportGraph) -> Split:
    return split_interactions(graph, seed=0, rewards=TINY.policy.reward_of())


@pytest.fixture(scope="session")
def data(split: Split) -> GraphData:
    return build_graph_data(split, torch.device("cpu"), TINY.model.history_len)


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    return TINY
