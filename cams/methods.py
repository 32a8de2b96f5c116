"""Every CAM method as a pure function of tensors, and the one table that names them.

Shapes: activations ``A`` and gradients ``G`` are N×K×h×w (target layer), maps are N×h×w.
The equations are those of ``shared/SPEC.md`` ("Maps"); the numerical conventions (epsilons,
where ReLU applies) follow the reference implementation, the ``grad-cam`` package 1.5.x, so that
our maps agree with it. The engine computes ``A`` and every ``G`` once and then calls the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

GRADCAM_PP_EPS = 1e-6  # grad-cam 1.5.x, GradCAMPlusPlus.get_cam_weights
XGRADCAM_EPS = 1e-7  # grad-cam 1.5.x, XGradCAM.get_cam_weights


def weighted_activations(activations: Tensor, channel_weights: Tensor) -> Tensor:
    """``Σ_k w_k A_k``, no ReLU: the class activation map for channel weights ``w`` (N×K)."""
    return torch.einsum("nk,nkhw->nhw", channel_weights, activations)


def gradcam_weights(gradients: Tensor) -> Tensor:
    """GradCAM channel weights ``α_k = (1/Z) Σ_ij G_kij`` (Selvaraju et al. 2017, Eq. 1)."""
    return gradients.mean(dim=(2, 3))


def gradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """GradCAM: ``ReLU(Σ_k α_k A_k)`` with ``α_k`` the spatial mean of the gradient.

    With the gradient of a difference target this is DiffGradCAM (DiffGradCAM paper, §4.3, Eq. 5–8).
    """
    return F.relu(weighted_activations(activations, gradcam_weights(gradients)))


def gradcam_plus_plus(activations: Tensor, gradients: Tensor) -> Tensor:
    """GradCAM++ (Chattopadhay et al. 2018) with the exponential-output closed form.

    ``a_kij = G² / (2G² + (Σ_ab A_kab)·G³ + ε)`` (0 where G = 0), ``w_k = Σ_ij a_kij·ReLU(G_kij)``,
    map ``ReLU(Σ_k w_k A_k)``. With a difference target's gradient this is DiffGradCAM++
    (DiffGradCAM paper, §4.7, Eq. 11–12).
    """
    g2 = gradients.pow(2)
    g3 = g2 * gradients
    activation_sums = activations.sum(dim=(2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + activation_sums * g3 + GRADCAM_PP_EPS)
    alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
    channel_weights = (alpha * F.relu(gradients)).sum(dim=(2, 3))
    return F.relu(weighted_activations(activations, channel_weights))


def hirescam(activations: Tensor, gradients: Tensor) -> Tensor:
    """HiResCAM (Draelos & Carin 2020): ``ReLU(Σ_k G_k ⊙ A_k)``, no spatial averaging."""
    return F.relu((gradients * activations).sum(dim=1))


def xgradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """XGradCAM (Fu et al. 2020): ``w_k = Σ_ij A_kij G_kij / (Σ_ab A_kab + ε)``, ``ReLU(Σ_k w_k A_k)``."""
    activation_sums = activations.sum(dim=(2, 3))
    channel_weights = (activations * gradients).sum(dim=(2, 3)) / (activation_sums + XGRADCAM_EPS)
    return F.relu(weighted_activations(activations, channel_weights))


def class_activation(activations: Tensor, gradients: Tensor) -> Tensor:
    """Un-ReLU'd class activation ``Σ_k α_k A_k`` with GradCAM weights of the explained scalar.

    For a global-average-pool → Linear head ``α_k = W_ck / Z``, so this is the classic CAM up to the
    factor ``1/Z``; for other heads it is SPEC's stand-in. With the gradient of ``y_c`` it is the
    true-class CAM ``t``, with that of the false class ``f``, and with that of ``y_c − y_f`` it is
    ``t − f`` (linearity), the Difference Salience of Divisive Decisions, Eq. 1.
    """
    return weighted_activations(activations, gradcam_weights(gradients))


def eigencam(activations: Tensor) -> Tensor:
    """EigenCAM (Muhammad & Yeasin 2020): the first principal component of the activations.

    The Z×K matrix of activations (rows = positions) is centred per channel and projected on its
    first right-singular vector; the sign is chosen so the projection correlates positively with
    ``Σ_k A_k`` (the SVD sign is otherwise arbitrary); then ReLU.
    """
    n, k, h, w = activations.shape
    positions = activations.reshape(n, k, h * w).transpose(1, 2)
    centred = positions - positions.mean(dim=1, keepdim=True)
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    projection = u[:, :, 0] * s[:, :1]
    channel_sum = positions.sum(dim=2)
    covariance = ((projection - projection.mean(1, keepdim=True))
                  * (channel_sum - channel_sum.mean(1, keepdim=True))).sum(dim=1, keepdim=True)
    sign = torch.where(covariance < 0, -1.0, 1.0).to(projection.dtype)
    return F.relu(projection * sign).reshape(n, h, w)


def scorecam_combine(activations: Tensor, masked_scores: Tensor) -> Tensor:
    """ScoreCAM (Wang et al. 2020): ``ReLU(Σ_k softmax_k(s)_k A_k)``.

    ``masked_scores`` (N×K) holds ``s_k = y_c(x ⊙ M_k)``; the engine computes them with batched
    masked forward passes (see ``cams.engine.scorecam_scores``).
    """
    return F.relu(weighted_activations(activations, torch.softmax(masked_scores, dim=1)))


def minmax(maps: Tensor) -> Tensor:
    """Min-max normalise each map of N×h×w to [0, 1]; a constant map becomes all zeros."""
    flat = maps.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(torch.finfo(flat.dtype).tiny), 0.0)
    return scaled.reshape(maps.shape)


def display_maps(layer_maps: Tensor, size: tuple[int, int]) -> Tensor:
    """SPEC's display normalization: bilinear upsample (``align_corners=False``), then min-max."""
    upsampled = F.interpolate(layer_maps[:, None], size=size, mode="bilinear", align_corners=False)
    return minmax(upsampled[:, 0])


# The explained scalars whose gradients the engine computes, one cotangent each (cams.targets).
LOGIT, MEAN_DIFF, MAX_DIFF, LSE_DIFF, FALSE_LOGIT, TRUE_MINUS_FALSE = (
    "logit", "mean_difference", "max_difference", "lse_difference", "false_logit",
    "true_minus_false")


@dataclass(frozen=True)
class Method:
    """A display name bound to the maths that makes its map at layer resolution.

    ``gradient`` names the explained scalar whose gradient ``layer_map`` takes (None: the method
    needs no gradient); ``summary`` is one line for ``python -m cams methods`` and the app.
    """

    name: str
    layer_map: Callable[..., Tensor]
    gradient: str | None
    summary: str


GRADIENT_METHODS: dict[str, Method] = {m.name: m for m in [
    Method("GradCAM", gradcam, LOGIT, "gradient-averaged channel weights of the target logit"),
    Method("GradCAM++", gradcam_plus_plus, LOGIT, "pixel-weighted positive gradients (2nd/3rd order)"),
    Method("HiResCAM", hirescam, LOGIT, "element-wise gradient × activation, summed over channels"),
    Method("XGradCAM", xgradcam, LOGIT, "activation-normalised gradient × activation weights"),
    Method("MeanDiffGradCAM", gradcam, MEAN_DIFF, "GradCAM of y_c − mean of the other logits"),
    Method("MaxDiffGradCAM", gradcam, MAX_DIFF, "GradCAM of y_c − the strongest rival logit"),
    Method("LSEDiffGradCAM", gradcam, LSE_DIFF, "GradCAM of y_c − log-mean-exp of the other logits"),
    Method("MeanDiffGradCAM++", gradcam_plus_plus, MEAN_DIFF, "GradCAM++ of the Mean difference"),
    Method("MaxDiffGradCAM++", gradcam_plus_plus, MAX_DIFF, "GradCAM++ of the Max difference"),
    Method("LSEDiffGradCAM++", gradcam_plus_plus, LSE_DIFF, "GradCAM++ of the LSE difference"),
    Method("TrueClassCAM", class_activation, LOGIT, "un-ReLU'd CAM t of the true (target) class"),
    Method("FalseClassCAM", class_activation, FALSE_LOGIT, "un-ReLU'd CAM f of the false class"),
    Method("DifferenceSalience", class_activation, TRUE_MINUS_FALSE, "minmax(t − f): where the "
           "image favours the true over the false class"),
]}

ACTIVATION_METHODS: dict[str, Method] = {m.name: m for m in [
    Method("CAM", weighted_activations, None, "classic CAM Σ_k W_ck A_k (global-average-pool → "
           "Linear heads only)"),
    Method("EigenCAM", eigencam, None, "first principal component of the activations "
           "(class-agnostic)"),
    Method("ScoreCAM", scorecam_combine, None, "softmax of the target score of the image masked "
           "by each channel (one forward pass per distinct channel)"),
]}

METHODS: dict[str, Method] = {**ACTIVATION_METHODS, **GRADIENT_METHODS}
# Display order: the activation-only methods, then the gradient panel.
METHOD_NAMES: tuple[str, ...] = (
    "CAM", "GradCAM", "GradCAM++", "HiResCAM", "XGradCAM", "EigenCAM", "ScoreCAM",
    "MeanDiffGradCAM", "MaxDiffGradCAM", "LSEDiffGradCAM", "MeanDiffGradCAM++", "MaxDiffGradCAM++",
    "LSEDiffGradCAM++", "TrueClassCAM", "FalseClassCAM", "DifferenceSalience")
# Each DiffGradCAM variant beside the map it should match on a clean model (DiffGradCAM paper, RQ2).
DIFF_BASELINES: dict[str, str] = {
    "MeanDiffGradCAM": "GradCAM", "MaxDiffGradCAM": "GradCAM", "LSEDiffGradCAM": "GradCAM",
    "MeanDiffGradCAM++": "GradCAM++", "MaxDiffGradCAM++": "GradCAM++", "LSEDiffGradCAM++": "GradCAM++"}
