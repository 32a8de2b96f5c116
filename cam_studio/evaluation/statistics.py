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
class Estimate:
    """The mean of independent units with its two-sided t interval (``level``, n − 1 degrees of
    freedom: right for the few units here, photos or training runs)."""

    mean: float
    low: float
    high: float
    units: int


def t_interval(values: Sequence[float], level: float = 0.95) -> Estimate:
    """``Estimate`` of the mean of ``values`` (one value per independent unit); with one unit the
    interval is unbounded (NaN bounds)."""
    from scipy import stats
    array = torch.as_tensor(list(values), dtype=torch.float64).flatten()
    n = array.numel()
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(array.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, 1)
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * float(array.std()) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class PairedComparison:
    """Paired scores a and b of the same units: the mean difference a − b with its t interval
    (the effect, first), and the two-sided Wilcoxon signed-rank p-value (exact for few units;
    NaN with fewer than 2 units or no difference)."""

    mean_difference: float
    low: float
    high: float
    p_value: float
    units: int


def paired_comparison(scores_a: Sequence[float], scores_b: Sequence[float]) -> PairedComparison:
    """Two quantities measured on the same units (``scipy.stats.wilcoxon``; the papers' rank-sum
    ignores the pairing)."""
    from scipy import stats
    differences = [float(a) - float(b) for a, b in zip(scores_a, scores_b, strict=True)]
    nonzero = [value for value in differences if value != 0]
    p_value = float(stats.wilcoxon(differences).pvalue) if len(nonzero) >= 2 else math.nan
    estimate = t_interval(differences)
    return PairedComparison(estimate.mean, estimate.low, estimate.high, p_value, estimate.units)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of the p-values of one family (a table's tests): the k-th
    smallest is multiplied by (m − k + 1), then made monotone and capped at 1. NaN stays NaN and
    does not count in m."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted


def equivalence_p(differences: Sequence[float], margin: float) -> float:
    """Paired TOST: the p-value that the mean difference lies within ±``margin`` (the larger of
    the two one-sided t tests); small = equivalent within the margin. NaN with fewer than 2
    units."""
    from scipy import stats
    array = torch.as_tensor(list(differences), dtype=torch.float64).flatten()
    n = array.numel()
    if n < 2:
        return math.nan
    error = float(array.std()) / math.sqrt(n)
    if error == 0:
        return 0.0 if abs(float(array.mean())) < margin else 1.0
    mean = float(array.mean())
    lower = float(stats.t.sf((mean + margin) / error, n - 1))
    upper = float(stats.t.cdf((mean - margin) / error, n - 1))
    return max(lower, upper)


def below_margin_p(values: Sequence[float], margin: float) -> float:
    """One-sided one-sample t test that the mean of ``values`` (one per unit) is below
    ``margin``: small = below. NaN with fewer than 2 units."""
    from scipy import stats
    array = torch.as_tensor(list(values), dtype=torch.float64).flatten()
    n = array.numel()
    if n < 2:
        return math.nan
    mean, error = float(array.mean()), float(array.std()) / math.sqrt(n)
    if error == 0:
        return 0.0 if mean < margin else 1.0
    return float(stats.t.cdf((mean - margin) / error, n - 1))


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
