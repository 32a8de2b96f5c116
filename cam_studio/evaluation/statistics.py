"""Statistics over independent units (photos, training runs): what the evaluation's tables and the
fooling check report about the per-image metrics of ``cams.metrics``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def mean_std(values: Sequence[float] | Tensor) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    array = torch.as_tensor(values, dtype=torch.float64).flatten()
    return float(array.mean()), float(array.std()) if array.numel() > 1 else 0.0


@dataclass(frozen=True)
class RankSum:
    statistic: float
    p_value: float


def rank_sum(scores_a: Tensor, scores_b: Tensor) -> RankSum:
    """Wilcoxon rank-sum test between two sets of per-image scores (``scipy.stats.ranksums``)."""
    from scipy import stats  # a second to import: only where a test is computed
    result = stats.ranksums(scores_a.detach().cpu().numpy(), scores_b.detach().cpu().numpy())
    return RankSum(float(result.statistic), float(result.pvalue))


def unit_means(values: Sequence[float], units: Sequence[str]) -> dict[str, float]:
    """The mean of ``values`` per unit (e.g. per photo, over its crops), in order of appearance:
    crops of one photo are not independent samples, photos are."""
    groups: dict[str, list[float]] = {}
    for value, unit in zip(values, units):
        groups.setdefault(unit, []).append(float(value))
    return {unit: sum(group) / len(group) for unit, group in groups.items()}


@dataclass(frozen=True)
class PairedComparison:
    """Paired scores a and b of the same units: the Wilcoxon signed-rank p-value (two-sided;
    NaN with fewer than 2 units or no difference), the mean difference a − b over the units, and
    its 95 % bootstrap interval (resampling units)."""

    p_value: float
    mean_difference: float
    low: float
    high: float
    units: int


def bootstrap_interval(values: Sequence[float], draws: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (each value one independent unit).

    A function of the values alone, not of their order: they are sorted before resampling, so
    records gathered from several processes in another order give the same interval."""
    array = torch.as_tensor(values, dtype=torch.float64).flatten().sort().values
    if array.numel() < 2:
        value = float(array.mean()) if array.numel() else math.nan
        return value, value
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(array.numel(), (draws, array.numel()), generator=generator)
    means = array[picks].mean(dim=1)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


def paired_comparison(scores_a: Sequence[float], scores_b: Sequence[float]) -> PairedComparison:
    """Two methods measured on the same units: signed-rank test and mean difference with its
    bootstrap interval (``scipy.stats.wilcoxon``; the papers' rank-sum ignores the pairing)."""
    from scipy import stats
    differences = [float(a) - float(b) for a, b in zip(scores_a, scores_b, strict=True)]
    nonzero = [value for value in differences if value != 0]
    p_value = (float(stats.wilcoxon(differences).pvalue) if len(nonzero) >= 2 else math.nan)
    low, high = bootstrap_interval(differences)
    mean = sum(differences) / len(differences) if differences else math.nan
    return PairedComparison(p_value, mean, low, high, len(differences))


@dataclass(frozen=True)
class Dissimilarity:
    """MOD (mean observed dissimilarity), VID (variance in dissimilarity) and its square root."""

    mod: float
    vid: float
    vid_std: float
    count: int


def mod_vid(nissims: Sequence[float] | Tensor) -> Dissimilarity:
    """MOD and VID over a set of images: the mean and the (population) variance of the NISSIM
    values between each image's clean and attacked maps (``nissim(clean, attacked)``)."""
    values = torch.as_tensor(nissims, dtype=torch.float64).flatten()
    variance = float(values.var(unbiased=False)) if values.numel() > 1 else 0.0
    return Dissimilarity(float(values.mean()), variance, variance ** 0.5, values.numel())
