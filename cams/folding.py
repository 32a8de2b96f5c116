"""Batch norm folded into the convolution before it, for passes that need no graph to the weights.

In evaluation mode a batch norm is an affine map per channel, so ``conv → bn`` is one
convolution with rescaled weights and a bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``). A
Lite0 forward pass then skips 49 separate normalisation passes over its feature maps: 1.2–1.6×
faster at batch 8 on a 2-core CPU (BENCHMARKS.md, "Drawing once, batch norms folded"), the
logits the same to 1e-5.

``folded(model)`` is that copy of ``model``, made once and used by the engine wherever a pass
runs without a graph below the target layer (the features seam's forward pass, the masked and
perturbed passes of ScoreCAM and faithfulness): never for training, where the batch norms'
parameters are learnt. The copy is checked on one input against the model itself and dropped if
it does not agree (a model whose children are not applied in the order they are listed); it is
made again when the model's weights change in place or move (a model being fine-tuned and
explained in turn), and it lives as long as the model does (a cache that bounds models' memory
counts it: ``has_batch_norms``).
"""

from __future__ import annotations

import copy
import itertools
import threading
import weakref

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

AGREEMENT = 1e-4  # the largest |difference| of the probe's outputs, relative to their largest |value|
_copies: weakref.WeakKeyDictionary[nn.Module, tuple[_State, nn.Module | None]] = (
    weakref.WeakKeyDictionary())
_lock = threading.Lock()


def folded(model: nn.Module, probe: torch.Tensor | None = None) -> nn.Module:
    """``model`` with every batch norm that directly follows a convolution among the same
    module's children folded into it (its activation, if it carries one, kept), or ``model``
    itself where nothing folds, where any batch norm is in training mode, or where the copy's
    output on ``probe`` (one input; a batch norm model's first call must give it) differs from the
    model's by more than ``AGREEMENT``."""
    with _lock:
        known = _copies.get(model)
    if known is not None:  # (checked in 0.1 ms: a panel at batch 1 takes 30)
        state, copied = known
        if any(norm.training for norm in state.norms):
            return model
        if state.current():
            return model if copied is None else copied
    state = _State.of(model)
    if not state.norms or any(norm.training for norm in state.norms):
        return model
    if probe is None:
        return model
    copied: nn.Module | None = copy.deepcopy(model).eval()
    if not _fold_children(copied) or not _agrees(model, copied, probe[:1]):
        copied = None  # (kept as None: a value holding its key would keep the model alive)
    with _lock:
        _copies[model] = (state, copied)
    return model if copied is None else copied


def has_batch_norms(model: nn.Module) -> bool:
    """Whether ``folded`` may make a copy of ``model`` (its memory, for a cache's bound)."""
    return any(isinstance(module, nn.BatchNorm2d) for module in model.modules())


class _State:
    """A model's batch norms and its weights as they were when its copy was made: a step changes
    a tensor in place (its version), a move to another device or dtype its storage."""

    def __init__(self, norms: list[nn.Module], tensors: list[torch.Tensor]):
        self.norms, self.tensors = norms, tensors
        self.marks = self._marks()

    @classmethod
    def of(cls, model: nn.Module) -> _State:
        return cls([module for module in model.modules() if isinstance(module, nn.BatchNorm2d)],
                   [*model.parameters(), *model.buffers()])

    def _marks(self) -> list[tuple[int, int]]:
        return [(tensor._version, tensor.data_ptr()) for tensor in self.tensors]

    def current(self) -> bool:
        return self._marks() == self.marks


def _fold_children(module: nn.Module) -> bool:
    """Fold in place, recursively; whether anything was folded."""
    changed = False
    children = list(module.named_children())
    for (conv_name, conv), (norm_name, norm) in itertools.pairwise(children):
        if (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
                and norm.track_running_stats and norm.running_mean is not None):
            setattr(module, conv_name, fuse_conv_bn_eval(conv, norm))
            # timm's BatchNormAct2d applies its dropout and activation after the norm.
            after = [part for part in (getattr(norm, "drop", None), getattr(norm, "act", None))
                     if isinstance(part, nn.Module) and not isinstance(part, nn.Identity)]
            setattr(module, norm_name, nn.Sequential(*after) if after else nn.Identity())
            changed = True
    for child in module.children():
        changed = _fold_children(child) or changed
    return changed


@torch.no_grad()
def _agrees(model: nn.Module, copied: nn.Module, probe: torch.Tensor) -> bool:
    expected, got = model(probe), copied(probe)
    if not isinstance(expected, torch.Tensor) or expected.shape != got.shape:
        return False
    scale = float(expected.abs().max().clamp_min(1e-12))
    return bool(torch.isfinite(got).all()) and float((expected - got).abs().max()) <= AGREEMENT * scale
