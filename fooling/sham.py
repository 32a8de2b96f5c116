"""SHAM: the Salience-Hoax Activation Map, a fake salience target for passive fooling.

DiffGradCAM paper, §3.2 and Fig. 1: a binary mask at the CAM's layer resolution that marks the
image border, as large as the CAMs of salience-trained models are (their mean CAM entropy is 3.35
nats). Pixels switch on in order of their distance to the nearest edge (outer ring first); within a
ring, pixels farther from the centre (nearer the corners) come first. Pixels that the mask's
mirror symmetries (and, on a square map, its rotations) map onto each other switch on together, so
the mask is symmetric and deterministic. Of the symmetric sizes, the one whose entropy ``ln(n_on)``
is closest to the target wins: on 7×7 that is 28 pixels, 3.33 nats, as in the paper.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from cams.methods import minmax
from cams.metrics import mse

DEFAULT_ENTROPY_NATS = 3.35  # mean CAM entropy of salience-trained models (DiffGradCAM paper, §3.2)


def _pixel_groups(height: int, width: int) -> list[list[tuple[int, int]]]:
    """Pixels grouped by (ring, squared distance to the centre), in switch-on order."""
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i in range(height):
        for j in range(width):
            ring = min(i, j, height - 1 - i, width - 1 - j)
            # Doubled coordinates keep the centre of an even-sized map on the integer grid.
            distance2 = (2 * i - (height - 1)) ** 2 + (2 * j - (width - 1)) ** 2
            groups.setdefault((ring, -distance2), []).append((i, j))
    return [groups[key] for key in sorted(groups)]


def sham_mask(height: int, width: int, entropy_nats: float = DEFAULT_ENTROPY_NATS) -> Tensor:
    """The SHAM of a ``height``×``width`` layer: a float mask of 0s and 1s whose ``ln(n_on)``
    is as close to ``entropy_nats`` as a symmetric border mask can be (ties: the smaller mask).

    The centre always stays off (an all-ones mask says nothing), so on maps too small for the
    target entropy the SHAM is everything but the centre.
    """
    if entropy_nats < 0:
        raise ValueError(f"entropy {entropy_nats} nats is negative: give a value ≥ 0, e.g. 3.35")
    groups = _pixel_groups(height, width) if height > 0 and width > 0 else []
    if len(groups) < 2:
        raise ValueError(f"a {height}×{width} map has no border distinct from its centre: a SHAM "
                         "needs a layer of at least 1×3 or 3×1 pixels")
    mask = torch.zeros(height, width)
    chosen: list[tuple[int, int]] = []
    best: list[tuple[int, int]] = []
    best_gap = math.inf
    for group in groups[:-1]:
        chosen = chosen + group
        gap = abs(math.log(len(chosen)) - entropy_nats)
        if gap < best_gap - 1e-12:
            best, best_gap = chosen, gap
    rows, columns = zip(*best)
    mask[list(rows), list(columns)] = 1.0
    return mask


def sham_distance(layer_maps: Tensor, entropy_nats: float = DEFAULT_ENTROPY_NATS) -> Tensor:
    """MSE between each normalised layer map (N×h×w) and the SHAM of its layer: what the SHAM
    attack minimises, so how far a map was pushed onto the border (N)."""
    sham = sham_mask(*layer_maps.shape[-2:], entropy_nats).to(layer_maps.device)
    return mse(sham.expand_as(layer_maps), minmax(layer_maps))


def parse_size(text: str) -> tuple[int, int]:
    """``"7x7"`` (or ``7×7``, or ``7``) → (7, 7)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        raise ValueError(f"size {text!r} is not HEIGHTxWIDTH, e.g. 7x7") from None
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise ValueError(f"size {text!r} is not HEIGHTxWIDTH with positive numbers, e.g. 7x7")
    return sizes[0], sizes[1]
