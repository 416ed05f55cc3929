from __future__ import annotations

import pytest
import torch

from training.device import autocast, make_grad_scaler, select_device, use_amp
from training.errors import ConfigError


def test_auto_picks_cuda_only_when_available() -> None:
    dev = select_device("auto")
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("cpu").type == "cpu"


def test_mixed_precision_only_on_cuda() -> None:
    cpu = torch.device("cpu")
    assert not use_amp(cpu, True)
    assert not make_grad_scaler(cpu, True).is_enabled()
    with autocast(cpu, True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_request_without_cuda_fails() -> None:
    with pytest.raises(ConfigError):
        select_device("cuda")
