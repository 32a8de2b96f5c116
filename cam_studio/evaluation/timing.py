"""Wall-clock timing of engine work, with the GPU's queue drained before and after.

The evaluation's run-time table (DiffGradCAM paper, Table 1) and the benchmarks time with this.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def synchronise(device: torch.device) -> None:
    """Wait for the GPU's queued work (CUDA runs asynchronously); nothing to do on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function: Callable[[], object], device: torch.device) -> float:
    """Milliseconds one call of ``function`` takes on ``device``."""
    synchronise(device)
    start = time.perf_counter()
    function()
    synchronise(device)
    return (time.perf_counter() - start) * 1000
