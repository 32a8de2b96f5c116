"""Every measurement the project reports, defined once (docs/equations.md, "Metrics").

Maps are N×H×W tensors; every function works on the maps' device, batched over N. The app, the
command lines, the training runs' validation, the acceptance check and the evaluation's published
tables all call these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cams.methods import DIFF_BASELINES, minmax

SSIM_WINDOW = 7  # scikit-image's structural_similarity defaults: 7×7 uniform window,
SSIM_K1, SSIM_K2 = 0.01, 0.03  # K1, K2, sample covariance, data range 1 for maps in [0, 1]
FAITHFULNESS_STEPS = 16  # deletion / insertion at fractions 0, 1/16, …, 1 of the pixels
BLUR_SIGMA = 0.1  # the blurred baseline's Gaussian σ, as a fraction of the image side


def mse(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Per-map mean squared error between two N×h×w stacks (DiffGradCAM paper, Tables 3–4, on
    normalised maps; the salience losses, on layer maps): N."""
    return (maps_a - maps_b).square().flatten(1).mean(dim=1)


def susceptibility(maps_a: dict[str, Tensor], maps_b: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per method, the MSE between checkpoint A's and B's maps of the same images (DiffGradCAM
    paper, Table 4: how far passive fooling moved each method; lower = more resistant): N each."""
    return {name: mse(maps_a[name], maps_b[name]) for name in maps_a if name in maps_b}


def cam_entropy_nats(layer_maps: Tensor) -> Tensor:
    """``H = −Σ p_i ln p_i`` with ``p = L / Σ L`` on the layer-resolution map ``L``
    (docs/equations.md, Metrics).

    Natural log: 28 equal pixels give ln 28 = 3.33 nats (the papers' "Shannons"). Maps with
    negative values (the un-ReLU'd TrueClassCAM, FalseClassCAM and t − f) are taken min-max
    normalised, as they are displayed, so that ``p`` is a distribution. An all-zero map has no
    mass and entropy 0.
    """
    has_negatives = (layer_maps.flatten(1).amin(dim=1) < 0)[:, None, None]
    mass = torch.where(has_negatives, minmax(layer_maps), layer_maps).flatten(1)
    total = mass.sum(dim=1, keepdim=True)
    p = mass / total.clamp_min(torch.finfo(mass.dtype).tiny)
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum(dim=1)


def common_mode_share(class_maps_a: dict[str, Tensor], class_maps_b: dict[str, Tensor]) -> Tensor:
    """How much of a manipulation (checkpoint A → B, the same images) is the same for every class:
    N shares in [0, 1] (NaN where nothing changed). docs/equations.md, Metrics.

    With the un-ReLU'd class CAMs ``L_j`` (``Explanation.class_maps``), ``Δ_j = L_j^B − L_j^A``;
    the class-uniform part is ``u = mean_j Δ_j`` (the change of the mean logit's CAM, by
    linearity) and the class-specific rest for the explained class c is ``s_c = Δ_c − u``:
    ``share = ‖u‖² / (‖u‖² + ‖s_c‖²)``. MeanDiffGradCAM's channel weights ``w_c − mean_{j≠c} w_j``
    cancel ``u`` exactly, GradCAM's do not: a share near 1 is a change that moves GradCAM and
    leaves every DiffGradCAM where it was.
    """
    uniform = (class_maps_b["mean"] - class_maps_a["mean"]).flatten(1)
    specific = (class_maps_b["target"] - class_maps_a["target"]).flatten(1) - uniform
    common, own = uniform.square().sum(dim=1), specific.square().sum(dim=1)
    total = common + own
    return torch.where(total > 0, common / total.clamp_min(torch.finfo(total.dtype).tiny),
                       float("nan"))


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


def ssim(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Mean structural similarity per map pair (Wang et al. 2004) for maps in [0, 1]: N.

    Same definition as scikit-image's ``structural_similarity(data_range=1)``: 7×7 uniform
    window, sample covariance, averaged over the windows that fit inside the map.
    """
    a, b = maps_a[:, None].double(), maps_b[:, None].double()
    pool = lambda x: F.avg_pool2d(x, SSIM_WINDOW, stride=1)  # noqa: E731
    n = SSIM_WINDOW * SSIM_WINDOW
    cov_norm = n / (n - 1)
    mean_a, mean_b = pool(a), pool(b)
    var_a = cov_norm * (pool(a * a) - mean_a * mean_a)
    var_b = cov_norm * (pool(b * b) - mean_b * mean_b)
    cov_ab = cov_norm * (pool(a * b) - mean_a * mean_b)
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    index = ((2 * mean_a * mean_b + c1) * (2 * cov_ab + c2)
             / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2)))
    return index.flatten(1).mean(dim=1).to(maps_a.dtype)


def nissim(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Normalised inverted SSIM ``(1 − SSIM) / 2`` ∈ [0, 1] (Generalizing Adversarial
    Explanations with Grad-CAM): 0 for identical maps."""
    return (1 - ssim(maps_a, maps_b)) / 2


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


def baseline_similarity(maps: dict[str, Tensor]) -> dict[str, Tensor]:
    """MSE of each DiffGradCAM(++) map to its GradCAM(++) baseline, where both are present: N each
    (DiffGradCAM paper, §6.2: near 0 on clean models for the Mean variants)."""
    return {name: mse(maps[name], maps[baseline]) for name, baseline in DIFF_BASELINES.items()
            if name in maps and baseline in maps}


def prediction_agreement(reference_logits: Tensor, logits: Tensor, sure: float = 0.5,
                         k: int = 5) -> dict[str, Tensor]:
    """How a model's predictions compare with a reference model's on the same images, per image:
    ``agreement`` (same top-1), ``reference_sure`` (the reference's top-1 probability ≥ ``sure``:
    agreement there is what fooling must keep), ``reference_top1_in_top_k`` (the reference's
    top-1 among this model's ``k`` most probable classes)."""
    reference_probabilities = reference_logits.softmax(dim=1)
    reference_top1 = reference_probabilities.argmax(dim=1)
    top_k = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return {"agreement": logits.argmax(dim=1) == reference_top1,
            "reference_sure": reference_probabilities.amax(dim=1) >= sure,
            "reference_top1_in_top_k": (top_k == reference_top1[:, None]).any(dim=1)}


def pointing_game(maps: Tensor, masks: Tensor) -> Tensor:
    """Pointing game (Zhang et al. 2016): whether each map's maximum (N×H×W, input resolution)
    falls inside the ground-truth mask (N×H×W, > 0.5 = inside). Returns N booleans."""
    flat = maps.flatten(1)
    peaks = flat.argmax(dim=1)
    return masks.flatten(1).gather(1, peaks[:, None])[:, 0] > 0.5


def auroc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive), via the
    Mann–Whitney U statistic (ties count one half); NaN when a class is absent."""
    from scipy import stats
    positives = scores[labels == 1].double().cpu().numpy()
    negatives = scores[labels == 0].double().cpu().numpy()
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    u_statistic = stats.mannwhitneyu(positives, negatives, alternative="two-sided").statistic
    return float(u_statistic / (len(positives) * len(negatives)))


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
                        baseline: str | Tensor = "blur") -> FaithfulnessCurves:
    """Deletion and insertion curves of ``maps`` (N×H×W, the inputs' resolution) for the
    ``targets`` (N) of ``model`` (logits of N×C×H×W ``inputs``). Pixels are taken in the order
    of the map, most relevant first (ties: in raster order); at step k the first
    ``round(k/steps·H·W)`` are replaced / revealed in every channel. One forward pass of 2N
    images per step."""
    n, _, height, width = inputs.shape
    pixels = height * width
    order = torch.argsort(maps.flatten(1), dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(pixels, device=order.device).expand(n, -1))
    ranks = ranks.view(n, 1, height, width)
    base = (faithfulness_baseline(inputs, baseline) if isinstance(baseline, str)
            else baseline.expand_as(inputs))
    fractions = torch.linspace(0, 1, steps + 1)
    deletion, insertion = [], []
    rows = torch.arange(n, device=inputs.device)
    for fraction in fractions.tolist():
        chosen = ranks < round(fraction * pixels)
        batch = torch.cat([torch.where(chosen, base, inputs), torch.where(chosen, inputs, base)])
        probabilities = model(batch).softmax(dim=1)
        deletion.append(probabilities[:n][rows, targets])
        insertion.append(probabilities[n:][rows, targets])
    return FaithfulnessCurves(fractions, torch.stack(deletion, 1), torch.stack(insertion, 1))


# ROAD's linear imputation (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy
# for Attribution Methods"): a removed pixel is the weighted mean of its 8 neighbours, direct
# ones weighing 1/6 and diagonal ones 1/12 (the weights of the neighbours inside the image).
ROAD_NEIGHBOURS = {(0, 1): 1 / 6, (0, -1): 1 / 6, (1, 0): 1 / 6, (-1, 0): 1 / 6,
                   (1, 1): 1 / 12, (1, -1): 1 / 12, (-1, 1): 1 / 12, (-1, -1): 1 / 12}


def road_impute(image: Tensor, removed: Tensor, noise: float = 0.0,
                generator: torch.Generator | None = None) -> Tensor:
    """``image`` (C×H×W) with the ``removed`` pixels (H×W, bool) filled by ROAD's noisy linear
    imputation: one sparse linear system for all removed pixels (every channel a right-hand
    side), each equal to the weighted mean of its neighbours, then Gaussian noise of std
    ``noise`` on the filled values (ROAD's default is 0.01)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve
    channels, height, width = image.shape
    missing = removed.cpu().numpy().ravel().astype(bool)
    values = image.detach().double().cpu().numpy().reshape(channels, -1)
    unknown = np.flatnonzero(missing)
    if unknown.size == 0:
        return image.clone()
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
    solution = np.asarray(spsolve(system, right)).reshape(unknown.size, channels)
    filled = torch.from_numpy(values.copy())
    filled[:, unknown] = torch.from_numpy(solution.T)
    if noise:
        filled[:, unknown] += noise * torch.randn(channels, unknown.size, generator=generator,
                                                  dtype=filled.dtype)
    return filled.reshape(channels, height, width).to(image)


ROAD_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)  # pytorch-grad-cam's default
# The evaluation's and the Compare tab's: each percentile is one sparse solve per image and order
# (about 0.25 s at 224 px on a 2-core CPU), so three instead of nine.
ROAD_QUICK_PERCENTILES = (20, 50, 80)


@torch.no_grad()
def road_scores(model: Callable[[Tensor], Tensor], inputs: Tensor, maps: Tensor,
                targets: Tensor, most_relevant_first: bool = True,
                percentiles: Sequence[int] = ROAD_PERCENTILES, noise: float = 0.01,
                seed: int = 0) -> Tensor:
    """ROAD (remove and debias): per image and percentile ``q``, the change of the target's
    softmax probability when the pixels whose map value is at or above the map's q-th percentile
    (most relevant first; with ``most_relevant_first=False`` those of ``1 − map``, the least
    relevant) are filled by ``road_impute``: N×len(percentiles). MoRF: a faithful map makes it
    drop fast (more negative); LeRF: it stays near 0. Seeded noise, so a run repeats exactly."""
    generator = torch.Generator().manual_seed(seed)
    ranked = maps if most_relevant_first else 1 - maps
    before = model(inputs).softmax(dim=1)
    rows = torch.arange(inputs.shape[0], device=inputs.device)
    changes = []
    for percentile in percentiles:
        filled = []
        for image, relevance in zip(inputs, ranked):
            threshold = torch.quantile(relevance.flatten().double(), percentile / 100)
            filled.append(road_impute(image, relevance.double() >= threshold, noise, generator))
        after = model(torch.stack(filled)).softmax(dim=1)
        changes.append(after[rows, targets] - before[rows, targets])
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
         seed: int = 0) -> RoadScores:
    """``road_scores`` most relevant first and least relevant first, on the same seed."""
    return RoadScores(*(road_scores(model, inputs, maps, targets, first, percentiles, noise, seed)
                        for first in (True, False)))
