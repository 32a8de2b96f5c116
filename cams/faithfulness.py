"""Faithfulness of a map: does the model's decision depend on the pixels the map ranks highest?

Deletion and insertion (Petsiuk et al. 2018, RISE) and ROAD, remove and debias (Rong et al.
2022), each a function of a model, the inputs, the maps and the explained classes
(docs/equations.md, "Faithfulness"). The evaluation's faithfulness tables and the Compare tab's
faithfulness rows call these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cams.folding import folded

FAITHFULNESS_STEPS = 16  # deletion / insertion at fractions 0, 1/16, …, 1 of the pixels
BLUR_SIGMA = 0.1  # the blurred baseline's Gaussian σ, as a fraction of the image side


@dataclass(frozen=True)
class FaithfulnessCurves:
    """Deletion and insertion (Petsiuk et al. 2018, RISE; the DiffGradCAM paper's "common test"):
    the target's probability as the pixels a map ranks most relevant are replaced by a baseline
    (deletion: a faithful map makes it fall fast, low AUC) or revealed on the baseline
    (insertion: it rises fast, high AUC). ``fractions``: S+1; curves N×(S+1)."""

    fractions: Tensor
    deletion: Tensor
    insertion: Tensor

    @property
    def deletion_auc(self) -> Tensor:
        return torch.trapezoid(self.deletion, self.fractions.to(self.deletion), dim=1)

    @property
    def insertion_auc(self) -> Tensor:
        return torch.trapezoid(self.insertion, self.fractions.to(self.insertion), dim=1)


def faithfulness_baseline(inputs: Tensor, kind: str = "blur") -> Tensor:
    """What removed pixels become: ``blur`` (a Gaussian blur of the image, σ = BLUR_SIGMA of
    its side: no new edges, little information) or ``mean`` (each channel's mean)."""
    if kind == "mean":
        return inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs)
    if kind != "blur":
        raise ValueError(f"unknown faithfulness baseline {kind!r}: blur or mean")
    sigma = BLUR_SIGMA * max(inputs.shape[-2:])
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=inputs.device, dtype=inputs.dtype)
    kernel = torch.exp(-offsets.square() / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = inputs.shape[1]
    blurred = F.pad(inputs, (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(blurred, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1),
                       groups=channels)
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1),
                    groups=channels)


@torch.no_grad()
def faithfulness_curves(model: Callable[[Tensor], Tensor], inputs: Tensor, maps: Tensor,
                        targets: Tensor, steps: int = FAITHFULNESS_STEPS,
                        baseline: str | Tensor = "blur",
                        progress: Callable[[int, int], None] | None = None
                        ) -> FaithfulnessCurves:
    """Deletion and insertion curves of ``maps`` (N×H×W, the inputs' resolution) for the
    ``targets`` (N, or one for all) of ``model`` (logits of N×C×H×W ``inputs``, or of one image
    whose N maps are scored). Pixels are taken in the order of the map, most relevant first
    (ties: in raster order); at step k the first ``round(k/steps·H·W)`` are replaced / revealed
    in every channel. The ends are the same for every map (nothing replaced: the image and the
    baseline; everything: the baseline and the image), so one pass of the images and their
    baselines gives both; each step between is one pass of 2N images. ``progress(done,
    total)`` after each step."""
    if steps < 1:
        raise ValueError(f"deletion and insertion need at least one step, not {steps}")
    model = folded(model, inputs) if isinstance(model, nn.Module) else model  # (no graph)
    n, (height, width) = len(maps), maps.shape[-2:]
    pixels = height * width
    order = torch.argsort(maps.flatten(1), dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(pixels, device=order.device).expand(n, -1))
    ranks = ranks.view(n, 1, height, width)
    base = (faithfulness_baseline(inputs, baseline) if isinstance(baseline, str)
            else baseline.expand_as(inputs))
    fractions = torch.linspace(0, 1, steps + 1)
    rows = torch.arange(n, device=maps.device)
    targets = targets.expand(n)
    ends = model(torch.cat([inputs, base])).softmax(dim=1)
    image, blurred = (ends[:len(inputs)].expand(n, -1)[rows, targets],
                      ends[len(inputs):].expand(n, -1)[rows, targets])
    deletion, insertion = [image], [blurred]
    if progress is not None:
        progress(1, len(fractions))
    for fraction in fractions[1:-1].tolist():
        chosen = ranks < round(fraction * pixels)
        batch = torch.cat([torch.where(chosen, base, inputs), torch.where(chosen, inputs, base)])
        probabilities = model(batch).softmax(dim=1)
        deletion.append(probabilities[:n][rows, targets])
        insertion.append(probabilities[n:][rows, targets])
        if progress is not None:
            progress(len(deletion), len(fractions))
    deletion.append(blurred)
    insertion.append(image)
    if progress is not None:
        progress(len(fractions), len(fractions))
    return FaithfulnessCurves(fractions, torch.stack(deletion, 1), torch.stack(insertion, 1))


# ROAD's linear imputation (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy
# for Attribution Methods"): a removed pixel is the weighted mean of its 8 neighbours, direct
# ones weighing 1/6 and diagonal ones 1/12 (the weights of the neighbours inside the image).
ROAD_NEIGHBOURS = {(0, 1): 1 / 6, (0, -1): 1 / 6, (1, 0): 1 / 6, (-1, 0): 1 / 6,
                   (1, 1): 1 / 12, (1, -1): 1 / 12, (-1, 1): 1 / 12, (-1, -1): 1 / 12}
SUPERLU_RELAX, SUPERLU_PANEL = 60, 4  # SuperLU's supernode relaxation and panel width


def road_impute(image: Tensor, removed: Tensor, noise: float = 0.0,
                generator: torch.Generator | None = None) -> Tensor:
    """``image`` (C×H×W) with the ``removed`` pixels (H×W, bool) filled by ROAD's noisy linear
    imputation: one sparse linear system for all removed pixels (every channel a right-hand
    side), each equal to the weighted mean of its neighbours, then Gaussian noise of std
    ``noise`` on the filled values (ROAD's default is 0.01)."""
    return _add_noise(*_linear_impute(image, removed), noise, generator)


def _add_noise(filled: Tensor, unknown: np.ndarray, noise: float,
               generator: torch.Generator | None) -> Tensor:
    """Gaussian noise of std ``noise`` on the filled pixels (flat indices ``unknown``), in place."""
    if noise and unknown.size:
        flat = filled.view(filled.shape[0], -1)
        flat[:, unknown] += noise * torch.randn(filled.shape[0], unknown.size,
                                                generator=generator,
                                                dtype=torch.float64).to(flat)
    return filled


def _linear_impute(image: Tensor, removed: Tensor) -> tuple[Tensor, np.ndarray]:
    """``road_impute`` without the noise: the filled image and the removed pixels' flat indices.
    Its sparse solve leaves the interpreter free, so several run at once in threads."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu
    channels, height, width = image.shape
    missing = removed.cpu().numpy().ravel().astype(bool)
    values = image.detach().double().cpu().numpy().reshape(channels, -1)
    unknown = np.flatnonzero(missing)
    if unknown.size == 0:
        return image.clone(), unknown
    variable = np.full(height * width, -1)
    variable[unknown] = np.arange(unknown.size)
    rows, columns = np.divmod(unknown, width)
    total = np.zeros(unknown.size)
    right = np.zeros((unknown.size, channels))
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for (dy, dx), weight in ROAD_NEIGHBOURS.items():
        y, x = rows + dy, columns + dx
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        total[inside] += weight
        equations = np.flatnonzero(inside)
        neighbours = y[inside] * width + x[inside]
        known = ~missing[neighbours]
        np.add.at(right, equations[known], weight * values[:, neighbours[known]].T)
        entries.append((equations[~known], variable[neighbours[~known]],
                        np.full(int((~known).sum()), -weight)))
    # total_p · x_p − Σ_{removed q} w_q x_q = Σ_{kept q} w_q x_q, for every removed pixel p
    system_rows = np.concatenate([np.arange(unknown.size), *(e[0] for e in entries)])
    system_columns = np.concatenate([np.arange(unknown.size), *(e[1] for e in entries)])
    weights = np.concatenate([total, *(e[2] for e in entries)])
    system = coo_matrix((weights, (system_rows, system_columns)),
                        shape=(unknown.size, unknown.size)).tocsc()
    # The system is symmetric (a pixel weighs its neighbour as the neighbour weighs it):
    # SuperLU's symmetric mode with a minimum-degree ordering of A + Aᵀ, 1.25× faster than
    # spsolve's defaults at 80 % removed, the same solution to 1e-13. Larger relaxed supernodes
    # and narrower panels than SuperLU's defaults: another 1.29× on 17 systems of Lite0 maps
    # (10–40 thousand unknowns), the same solution to 1e-14 (BENCHMARKS.md, 2026-12-07).
    factors = splu(system, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                   relax=SUPERLU_RELAX, panel_size=SUPERLU_PANEL,
                   options={"SymmetricMode": True})
    solution = np.asarray(factors.solve(right)).reshape(unknown.size, channels)
    filled = torch.from_numpy(values.copy())
    filled[:, unknown] = torch.from_numpy(solution.T)
    return filled.reshape(channels, height, width).to(image), unknown


ROAD_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)  # pytorch-grad-cam's default
# The evaluation's and the Compare tab's: each percentile is one sparse solve per image and order
# (about 0.25 s at 224 px on a 2-core CPU), so three instead of nine.
ROAD_QUICK_PERCENTILES = (20, 50, 80)


@torch.no_grad()
def road_scores(model: Callable[[Tensor], Tensor], inputs: Tensor, maps: Tensor,
                targets: Tensor, most_relevant_first: bool = True,
                percentiles: Sequence[int] = ROAD_PERCENTILES, noise: float = 0.01,
                seed: int = 0, progress: Callable[[int, int], None] | None = None) -> Tensor:
    """ROAD (remove and debias): per image and percentile ``q``, the change of the target's
    softmax probability when the pixels whose map value is at or above the map's q-th percentile
    (most relevant first; with ``most_relevant_first=False`` those of ``1 − map``, the least
    relevant) are filled by ``road_impute``: N×len(percentiles). MoRF: a faithful map makes it
    drop fast (more negative); LeRF: it stays near 0. Seeded noise, so a run repeats exactly.
    ``inputs`` may be one image whose N maps are scored (``targets``: N or one).
    ``progress(done, total)`` after each imputation."""
    # One generator per image, each seeded alike: an image's scores do not depend on the
    # images scored beside it (a batch of maps scores each as it would alone).
    n = len(maps)
    generators = [torch.Generator().manual_seed(seed) for _ in range(n)]
    model = folded(model, inputs) if isinstance(model, nn.Module) else model  # (no graph)
    ranked = maps if most_relevant_first else 1 - maps
    rows, targets = torch.arange(n, device=maps.device), targets.expand(n)
    before = model(inputs).softmax(dim=1).expand(n, -1)[rows, targets]
    images = inputs.expand(n, *inputs.shape[1:])
    changes = []
    done = 0

    def removed(relevance: Tensor, percentile: int) -> Tensor:
        threshold = torch.quantile(relevance.flatten().double(), percentile / 100)
        return relevance.double() >= threshold

    # The solves run side by side (one per core), every percentile's queued at once so that
    # neither core waits for a percentile's last solve; the noise is drawn afterwards in the
    # images' order, so the scores are those of one image after another.
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as solvers:
        solved = [solvers.map(_linear_impute, images,
                              [removed(relevance, percentile) for relevance in ranked])
                  for percentile in percentiles]
        for solutions in solved:
            filled = []
            for (image, unknown), generator in zip(solutions, generators, strict=True):
                filled.append(_add_noise(image, unknown, noise, generator))
                done += 1
                if progress is not None:
                    progress(done, len(percentiles) * n)
            after = model(torch.stack(filled)).softmax(dim=1)
            changes.append(after[rows, targets] - before)
    return torch.stack(changes, dim=1)


@dataclass(frozen=True)
class RoadScores:
    """ROAD's two orders for N maps: ``morf`` and ``lerf`` (N×P probability changes, one column
    per percentile). ``combined`` is pytorch-grad-cam's ROADCombined, the mean over percentiles
    of (LeRF − MoRF) / 2: higher = more faithful."""

    morf: Tensor
    lerf: Tensor

    @property
    def combined(self) -> Tensor:
        return ((self.lerf - self.morf) / 2).mean(dim=1)


def road(model: Callable[[Tensor], Tensor], inputs: Tensor, maps: Tensor, targets: Tensor,
         percentiles: Sequence[int] = ROAD_QUICK_PERCENTILES, noise: float = 0.01,
         seed: int = 0, progress: Callable[[int, int], None] | None = None) -> RoadScores:
    """``road_scores`` most relevant first and least relevant first, on the same seed;
    ``progress(done, total)`` after each imputation of either order."""
    total = 2 * len(percentiles) * len(maps)

    def counted(offset: int) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, _: progress(offset + done, total))

    return RoadScores(*(road_scores(model, inputs, maps, targets, first, percentiles, noise, seed,
                                    counted(index * total // 2))
                        for index, first in enumerate((True, False))))
