"""Seeded randomness: every random choice of the data layer is a pure function of a key.

So a synthetic image, a photo crop, or the batch a training run draws at step ``k`` is the same on
every machine and in every process, and a run resumes exactly where it stopped.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor


def seeded_generator(*key: object) -> torch.Generator:
    """A generator seeded from a stable hash of ``key`` (not Python's salted ``hash``)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def batch_indices(length: int, batch: int, step: int, seed: int) -> list[int]:
    """The dataset indices of batch ``step``: a fresh seeded permutation per epoch."""
    indices = []
    for position in range(step * batch, (step + 1) * batch):
        epoch, offset = divmod(position, length)
        indices.append(int(epoch_order(length, seed, epoch)[offset]))
    return indices


_ORDERS: dict[tuple[int, int, int], Tensor] = {}


def epoch_order(length: int, seed: int, epoch: int) -> Tensor:
    key = (length, seed, epoch)
    if key not in _ORDERS:
        _ORDERS.clear()  # one epoch's order at a time
        _ORDERS[key] = torch.randperm(length, generator=seeded_generator(seed, "epoch", epoch))
    return _ORDERS[key]
