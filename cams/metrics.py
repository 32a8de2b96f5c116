"""Every measurement of maps and predictions, defined once (docs/equations.md, "Metrics").

Maps are N×H×W tensors; every function works on the maps' device, batched over N. The app, the
command lines, the training runs' validation, the acceptance check and the evaluation's published
tables all call these. Faithfulness (deletion, insertion, ROAD) is ``cams.faithfulness``; the
statistics over units are the evaluation's (``cam_studio.evaluation.statistics``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from cams.methods import method_row, minmax

SSIM_WINDOW = 7  # scikit-image's structural_similarity defaults: 7×7 uniform window,
SSIM_K1, SSIM_K2 = 0.01, 0.03  # K1, K2, sample covariance, data range 1 for maps in [0, 1]


def mse(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Per-map mean squared error between two N×h×w stacks (DiffGradCAM paper, Tables 3–4, on
    normalised maps; the salience losses, on layer maps): N."""
    return (maps_a - maps_b).square().flatten(1).mean(dim=1)


def susceptibility(maps_a: dict[str, Tensor], maps_b: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per method, the MSE between checkpoint A's and B's maps of the same images (DiffGradCAM
    paper, Table 4: how far passive fooling moved each method; lower = more resistant): N each."""
    return mses({name: (maps_a[name], maps_b[name]) for name in maps_a if name in maps_b})


def mses(pairs: dict[str, tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
    """``mse`` of each named pair of N×h×w stacks: N each. Pairs of one shape are computed as
    one stack (a comparison's 15 methods are one operation, not 15: cheaper, and far cheaper
    when many requests' threads share the cores)."""
    return per_map(mse, pairs)


def per_map(metric: Callable[..., Tensor], named: dict[str, tuple[Tensor, ...]]) -> dict[str, Tensor]:
    """``metric`` (per map of N×h×w stacks: N values) of each name's stacks, computed once for
    all names where their shapes agree (the stacks concatenated, the values split again)."""
    if not named:
        return {}
    if len({tuple((t.shape, t.dtype, t.device) for t in stacks)
            for stacks in named.values()}) > 1:
        return {name: metric(*stacks) for name, stacks in named.items()}
    count = next(iter(named.values()))[0].shape[0]
    values = metric(*(torch.cat(column) for column in zip(*named.values(), strict=True)))
    return dict(zip(named, values.view(len(named), count), strict=True))


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


def entropies_nats(layer_maps: dict[str, Tensor]) -> dict[str, Tensor]:
    """``cam_entropy_nats`` of each named N×h×w stack (one computation where their shapes agree,
    as ``mses``): N each."""
    return per_map(cam_entropy_nats, {name: (maps,) for name, maps in layer_maps.items()})


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


def average_ranks(values: Tensor) -> Tensor:
    """Ranks 1…P of each row of an N×P tensor, ties given their average rank (as
    ``scipy.stats.rankdata``): N×P, float64."""
    order = values.argsort(dim=1, stable=True)
    ranked = values.gather(1, order)
    positions = torch.arange(1, values.shape[1] + 1, dtype=torch.float64,
                             device=values.device).expand_as(ranked)
    # A tie's rank: the mean position of its run of equal values (found by the runs' starts).
    starts = torch.ones_like(ranked, dtype=torch.bool)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    run = starts.cumsum(dim=1) - 1
    totals = torch.zeros_like(positions).scatter_add_(1, run, positions)
    counts = torch.zeros_like(positions).scatter_add_(1, run, torch.ones_like(positions))
    mean_rank = (totals / counts.clamp_min(1)).gather(1, run)
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def spearman(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Spearman's rank correlation per map pair (the sanity checks' similarity, Adebayo et al.
    2018): the Pearson correlation of the maps' pixel ranks, ties averaged, N; NaN where a map
    is constant (no ranking to compare)."""
    a = average_ranks(maps_a.flatten(1))
    b = average_ranks(maps_b.flatten(1))
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    denominator = (a.square().sum(dim=1) * b.square().sum(dim=1)).sqrt()
    correlation = (a * b).sum(dim=1) / denominator
    return torch.where(denominator > 0, correlation, float("nan")).to(maps_a.dtype)


def nissim(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Normalised inverted SSIM ``(1 − SSIM) / 2`` ∈ [0, 1] (Generalizing Adversarial
    Explanations with Grad-CAM): 0 for identical maps."""
    return (1 - ssim(maps_a, maps_b)) / 2


def baseline_similarity(maps: dict[str, Tensor]) -> dict[str, Tensor]:
    """MSE of each DiffGradCAM(++) map (and each targeted "METHOD · TARGET" map) to its baseline,
    where both are present: N each
    (DiffGradCAM paper, §6.2: near 0 on clean models for the Mean variants)."""
    return mses({name: (maps[name], maps[row.baseline]) for name in maps
                 if (row := method_row(name)) is not None and row.baseline in maps})


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
