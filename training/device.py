"""Device selection and mixed precision: CUDA when present, CPU otherwise; AMP only on CUDA."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator

import numpy as np
import torch

from training.errors import ConfigError

logger = logging.getLogger(__name__)


def select_device(name: str = "auto") -> torch.device:
    """Resolve a device name: ``"auto"`` picks CUDA when available, else the CPU."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as e:
            raise ConfigError(f"unknown device {name!r}") from e
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available")
    logger.debug("using device %s", device)
    return device


def use_amp(device: torch.device, requested: bool = True) -> bool:
    """Mixed precision is used only on CUDA, and only when requested."""
    return requested and device.type == "cuda"


def amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the GPU supports it (no loss scaling needed), else float16."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool) -> Iterator[None]:
    """``torch.autocast`` on CUDA when enabled; a no-op context on the CPU."""
    if enabled and device.type == "cuda":
        with torch.autocast(device_type="cuda", dtype=amp_dtype(device)):
            yield
    else:
        yield


def make_grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """A gradient scaler, active only for float16 autocast on CUDA."""
    active = enabled and device.type == "cuda" and amp_dtype(device) == torch.float16
    return torch.amp.GradScaler("cuda", enabled=active)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
