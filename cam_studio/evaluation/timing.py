"""Wall-clock timing of engine work, with the GPU's queue drained before and after.

The evaluation's run-time table (DiffGradCAM paper, Table 1) and the benchmarks time with this;
the tables' estimates scale their Lite0 times to another backbone by it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import torch

from cams.backbones.specs import DEFAULT_BACKBONE, spec_for
from cams.layers import resolve_layer


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


MEASURED_ON = DEFAULT_BACKBONE  # the tables' per-image seconds were measured on Lite0
MEASURED_CHANNELS = 1280  # Lite0's channels at its target layer (one masked pass each: ScoreCAM)


def lite0_scale(backbone: str, per_channel: bool = False) -> float:
    """How many times Lite0's time ``backbone`` takes here for a table's work, measured on
    Lite0 (``_measured``), times the ratio of their target layers' channels when the work is
    ``per_channel`` (a masked pass per channel). 1.0 for Lite0, and for a name that cannot be
    built here."""
    if backbone == MEASURED_ON:
        return 1.0
    ratio, channels = _measured(backbone)
    return ratio * (channels / MEASURED_CHANNELS if per_channel else 1.0)


@functools.lru_cache(maxsize=16)
def _measured(backbone: str) -> tuple[float, int]:
    """``backbone``'s forward pass ÷ Lite0's, and its layer's channels (Lite0's for a name that
    cannot be built): a pass of each at its own input size (batch 8, random weights), the two
    timed in turn three times after an untimed pass each, the least of the three ratios (paired
    in time; a small model's short pass is the one a busy moment stretches most). FLOPs would
    not do: ResNet-50 has 11× Lite0's but takes about 3× its time on this CPU."""
    try:
        mine, channels = _timed_pass(backbone)
    except (ValueError, OSError, RuntimeError, ImportError):  # an unknown name (UserInputError
        # is a ValueError), a family whose code is missing here
        return 1.0, MEASURED_CHANNELS
    lite0, _ = _timed_pass(MEASURED_ON)
    return min(mine() / lite0() for _ in range(3)), channels


def _timed_pass(backbone: str) -> tuple[Callable[[], float], int]:
    """A function timing one forward pass of ``backbone`` at batch 8 (ms; after an untimed
    one, which picks and builds the shape's kernels), and the channels at its target layer."""
    spec = spec_for(backbone)
    model = spec.create()
    size = (3, spec.input_px, spec.input_px)
    _, (channels, _, _) = resolve_layer(model, size)
    inputs = torch.randn(8, *size)

    @torch.inference_mode()
    def timed_pass() -> float:
        return timed(lambda: model(inputs), torch.device("cpu"))

    timed_pass()
    return timed_pass, channels
