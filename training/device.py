"""Device selection and mixed precision: CUDA when present, CPU otherwise; AMP only on CUDA."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from training.errors import ConfigError

logger = logging.getLogger(__name__)


def select_device(name: str = "auto") -> torch.device:
    """Resolve a device name: ``"auto"`` picks CUDA when available, else the CPU; ``"cpu"``,
    ``"cuda"`` and ``"cuda:N"`` are checked against this machine.

    Raises:
        ConfigError: An unknown name, or a CUDA device this machine does not have.
    """
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError) as e:
            raise ConfigError(f"unknown device {name!r}") from e
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} requested but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
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


@contextlib.contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Run the block with ``torch.use_deterministic_algorithms(True, warn_only=True)`` and
    restore the previous setting afterwards (``docs/evaluation.md``, "Determinism").

    On the CPU every op the harness uses has a deterministic kernel, so two runs of one seed
    with the same thread count give identical numbers. ``warn_only`` keeps CUDA runs going
    where an op has no deterministic CUDA kernel (torch warns once per op; the sparse CSR
    product's is the known one). cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` for deterministic
    matrix products; it is set here when unset, which only takes effect if CUDA has not been
    initialised yet in this process."""
    if not enabled:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    was = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)
        torch.backends.cudnn.benchmark = cudnn
