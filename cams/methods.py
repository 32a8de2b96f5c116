"""Every CAM method as a pure function of tensors, and the one table that names them.

Shapes: activations ``A`` are N×K×h×w (target layer); gradients ``G`` are N×K×h×w or, for several
explained scalars at once, T×N×K×h×w (the functions broadcast over leading dimensions); maps are
N×h×w (or T×N×h×w). The equations are docs/equations.md's ("Maps"); the numerical
conventions (epsilons, where ReLU applies) follow the reference implementation, the ``grad-cam``
package 1.5.x, so that our maps agree with it. The engine computes ``A`` and every ``G`` once and
then calls the table.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

GRADCAM_PP_EPS = 1e-6  # grad-cam 1.5.x, GradCAMPlusPlus.get_cam_weights
XGRADCAM_EPS = 1e-7  # grad-cam 1.5.x, XGradCAM.get_cam_weights
FEM_SIGMAS = 2  # grad-cam 1.5.x FEM's k: the k-sigma rule of its binary masks
RANDOMCAM_SEED = 0
SMOOTHGRAD_EPS = 1e-8  # torchcam 0.5, SmoothGradCAMpp._get_weights
SPATIAL = (-2, -1)


def weighted_activations(activations: Tensor, channel_weights: Tensor) -> Tensor:
    """``Σ_k w_k A_k``, no ReLU: the class activation map for channel weights ``w`` (…×N×K)."""
    flat = activations.flatten(-2)  # N×K×Z
    summed = torch.matmul(channel_weights.unsqueeze(-2), flat).squeeze(-2)
    return summed.unflatten(-1, activations.shape[-2:])


def gradcam_weights(gradients: Tensor) -> Tensor:
    """GradCAM channel weights ``α_k = (1/Z) Σ_ij G_kij`` (Selvaraju et al. 2017, Eq. 1)."""
    return gradients.mean(dim=SPATIAL)


def gradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """GradCAM: ``ReLU(Σ_k α_k A_k)`` with ``α_k`` the spatial mean of the gradient.

    With the gradient of a difference target this is DiffGradCAM (DiffGradCAM paper, §4.3, Eq. 5–8).
    """
    return F.relu(weighted_activations(activations, gradcam_weights(gradients)))


def gradcam_plus_plus(activations: Tensor, gradients: Tensor) -> Tensor:
    """GradCAM++ (Chattopadhay et al. 2018) with the exponential-output closed form.

    ``a_kij = G² / (2G² + (Σ_ab A_kab)·G³ + ε)`` (0 where G = 0), ``w_k = Σ_ij a_kij·ReLU(G_kij)``,
    map ``ReLU(Σ_k w_k A_k)``. With a difference target's gradient this is DiffGradCAM++
    (DiffGradCAM paper, §4.7, Eq. 11–12). Where G = 0 the numerator G² is 0 and the denominator
    is ε, so ``a = 0`` there without a special case.
    """
    activation_sums = activations.sum(dim=SPATIAL).unsqueeze(-1)
    flat = gradients.flatten(-2)
    g2 = flat * flat
    # In grad-cam's order (2G² + ΣA·G³): factoring G² out loses digits where ΣA·G ≈ −2.
    weighted = g2 * F.relu(flat) / (2 * g2 + activation_sums * (g2 * flat) + GRADCAM_PP_EPS)
    return F.relu(weighted_activations(activations, weighted.sum(dim=-1)))


def smoothgradcam_plus_plus(activations: Tensor, noisy_gradients: Tensor,
                            last_activations: Tensor) -> Tensor:
    """SmoothGradCAM++ (Omeiza et al. 2019) as torchcam 0.5 computes it, from the target
    logit's gradients ``G_s`` at S noisy copies of the input (S×N×K×h×w, the engine's
    ``cams.engine.noisy_gradients``): ``a_kij = mean_s G² / (2·mean_s G² + Σ_ab A_kab·mean_s
    G³_kab + ε)`` with the clean activations A, ``w_k = Σ_ij a_kij·ReLU(G_last)``, map
    ``ReLU(Σ_k w_k A_last)`` — torchcam weights and sums the last noisy copy's gradient and
    activations, and puts G² in a's numerator where the paper has G (its "personal correction").
    """
    g2 = noisy_gradients.pow(2).mean(dim=0)
    g3 = noisy_gradients.pow(3).mean(dim=0)
    alpha = g2 / (2 * g2 + (g3 * activations).sum(dim=SPATIAL, keepdim=True) + SMOOTHGRAD_EPS)
    weights = (alpha * F.relu(noisy_gradients[-1])).sum(dim=SPATIAL)
    return F.relu(weighted_activations(last_activations, weights))


def hirescam(activations: Tensor, gradients: Tensor) -> Tensor:
    """HiResCAM (Draelos & Carin 2020): ``ReLU(Σ_k G_k ⊙ A_k)``, no spatial averaging."""
    return F.relu((gradients * activations).sum(dim=-3))


def xgradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """XGradCAM (Fu et al. 2020): ``w_k = Σ_ij A_kij G_kij / (Σ_ab A_kab + ε)``, map
    ``ReLU(Σ_k w_k A_k)``."""
    activation_sums = activations.sum(dim=SPATIAL)
    channel_weights = (activations * gradients).sum(dim=SPATIAL) / (activation_sums + XGRADCAM_EPS)
    return F.relu(weighted_activations(activations, channel_weights))


def class_activation(activations: Tensor, gradients: Tensor) -> Tensor:
    """Un-ReLU'd class activation ``Σ_k α_k A_k`` with GradCAM weights of the explained scalar.

    For a global-average-pool → Linear head ``α_k = W_ck / Z``, so this is the classic CAM up to
    the factor ``1/Z``; for other heads it stands in for it (docs/equations.md, Maps). With the
    gradient of ``y_c`` it is the true-class CAM ``t``, with that of the false class ``f``, and
    with that of ``y_c − y_f`` it is ``t − f`` (linearity), the Difference Salience of Divisive
    Decisions, Eq. 1.
    """
    return weighted_activations(activations, gradcam_weights(gradients))


def centred_positions(activations: Tensor) -> tuple[Tensor, Tensor]:
    """The N×Z×K matrix of activations with positions as rows, and the same centred per channel
    (the principal-component maps' input)."""
    n, k, h, w = activations.shape
    positions = activations.reshape(n, k, h * w).transpose(1, 2)
    return positions, positions - positions.mean(dim=1, keepdim=True)


def eigencam(activations: Tensor) -> Tensor:
    """EigenCAM (Muhammad & Yeasin 2020): the first principal component of the activations.

    The Z×K matrix ``X`` of activations (rows = positions) is centred per channel and projected on
    its first right-singular vector, ``X v₁ = σ₁ u₁``; ``u₁`` and ``σ₁²`` come from the small Z×Z
    Gram matrix ``X Xᵀ`` (Z ≪ K at the last stage). The sign is chosen so the projection correlates
    positively with ``Σ_k A_k`` (the SVD's sign is otherwise arbitrary); then ReLU.
    """
    n, _, h, w = activations.shape
    positions, centred = centred_positions(activations)
    eigenvalues, eigenvectors = torch.linalg.eigh(centred @ centred.transpose(1, 2))
    projection = eigenvectors[:, :, -1] * eigenvalues[:, -1:].clamp_min(0).sqrt()
    channel_sum = positions.sum(dim=2)
    covariance = ((projection - projection.mean(1, keepdim=True))
                  * (channel_sum - channel_sum.mean(1, keepdim=True))).sum(dim=1, keepdim=True)
    sign = torch.where(covariance < 0, -1.0, 1.0)
    return F.relu(projection * sign).reshape(n, h, w)


def layercam(activations: Tensor, gradients: Tensor) -> Tensor:
    """LayerCAM (Jiang et al. 2021): ``ReLU(Σ_k ReLU(G_k) ⊙ A_k)``, the positive gradient as a
    weight at every position."""
    return F.relu((F.relu(gradients) * activations).sum(dim=-3))


def gradcam_elementwise(activations: Tensor, gradients: Tensor) -> Tensor:
    """GradCAMElementWise (grad-cam 1.5.x): ``Σ_k ReLU(G_k ⊙ A_k)``, HiResCAM with the ReLU
    taken per channel before the sum."""
    return F.relu(gradients * activations).sum(dim=-3)


def eigengradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """EigenGradCAM (grad-cam 1.5.x): the first principal component of ``G ⊙ A`` (EigenCAM's
    projection, its sign fixed the same way), then ReLU."""
    product = gradients * activations
    return eigencam(product.flatten(0, -4)).reshape(*product.shape[:-3], *product.shape[-2:])


def kpcacam(activations: Tensor) -> Tensor:
    """KPCA-CAM (Karmani et al. 2024): EigenCAM with kernel PCA — the first kernel principal
    component of the positions' centred activations under the sigmoid kernel
    ``tanh(⟨x, y⟩ / K + 1)``, as scikit-learn's ``KernelPCA`` (centred Gram matrix, its top
    eigenvector times the square root of its eigenvalue, the sign making its largest entry
    positive), then ReLU."""
    n, k, h, w = activations.shape
    _, centred = centred_positions(activations.double())
    gram = torch.tanh(centred @ centred.transpose(1, 2) / k + 1)
    gram = (gram - gram.mean(dim=1, keepdim=True) - gram.mean(dim=2, keepdim=True)
            + gram.mean(dim=(1, 2), keepdim=True))
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    top = eigenvectors[:, :, -1]
    sign = torch.sign(top.gather(1, top.abs().argmax(dim=1, keepdim=True)))
    projection = top * sign * eigenvalues[:, -1:].clamp_min(0).sqrt()
    return F.relu(projection).reshape(n, h, w).to(activations.dtype)


def fem(activations: Tensor) -> Tensor:
    """FEM, the Feature Explanation Method (Fuad et al. 2020): each channel weighted by the share
    of its positions above its mean + 2 standard deviations (population std),
    ``ReLU(Σ_k w_k A_k)``; class-agnostic."""
    flat = activations.flatten(-2)
    threshold = flat.mean(dim=-1, keepdim=True) + FEM_SIGMAS * flat.std(dim=-1, unbiased=False,
                                                                       keepdim=True)
    weights = (flat > threshold).to(flat.dtype).mean(dim=-1)
    return F.relu(weighted_activations(activations, weights))


def random_channel_weights(activations: Tensor) -> Tensor:
    """RandomCAM's weights: one draw per channel, uniform in [−1, 1], from a CPU generator seeded
    with ``RANDOMCAM_SEED`` — the same weights for every image and call (grad-cam draws anew per
    image: here a map does not depend on its batch or its run), …×N×K."""
    generator = torch.Generator().manual_seed(RANDOMCAM_SEED)
    weights = torch.rand(activations.shape[-3], generator=generator, dtype=torch.float64) * 2 - 1
    return weights.to(activations.device, activations.dtype).expand(activations.shape[:-2])


def randomcam(activations: Tensor) -> Tensor:
    """RandomCAM (grad-cam 1.5.x), a baseline: ``ReLU(Σ_k w_k A_k)`` with random channel
    weights ``w_k`` ~ U[−1, 1] (``random_channel_weights``). A map that explains no better than
    it explains nothing."""
    return F.relu(weighted_activations(activations, random_channel_weights(activations)))


def shapleycam(activations: Tensor, gradients: Tensor, hessian_activations: Tensor) -> Tensor:
    """ShapleyCAM (Cai 2025): GradCAM's weights from the second-order expansion of the target's
    Shapley values, ``w_k = mean_ij (G − ½ H·A)_kij``, map ``ReLU(Σ_k w_k A_k)``; ``H·A`` is
    the Hessian of the target logit at the layer applied to the activations (0 for a head
    linear in them, where ShapleyCAM is GradCAM)."""
    weights = (gradients - 0.5 * hessian_activations).mean(dim=SPATIAL)
    return F.relu(weighted_activations(activations, weights))


def input_resolution(activations: Tensor, full_map: Tensor) -> Tensor:
    """A map the engine made without the target layer's activations: FullGrad's (Srinivas &
    Fleuret 2019, ``cams.engine.full_gradient_maps``), SESS's (``cams.engine.sess_maps``),
    RefineCAM's (``cams.engine.refine_maps``), all at the input's resolution, and LeGrad's on the
    token grid (``cams.engine.legrad_maps``)."""
    return full_map


def ablationcam(activations: Tensor, ablated_scores: Tensor, scores: Tensor) -> Tensor:
    """AblationCAM (Desai & Ramaswamy 2020): ``w_k = (y_c − y_c^{A_k ablated}) / y_c``, the
    relative drop of the target score when channel k is ablated at the layer, map
    ``ReLU(Σ_k w_k A_k)`` (the engine computes the ablated scores: ``cams.engine``)."""
    weights = (scores[:, None] - ablated_scores) / scores[:, None]
    return F.relu(weighted_activations(activations, weights))


def scorecam_combine(activations: Tensor, masked_scores: Tensor) -> Tensor:
    """ScoreCAM (Wang et al. 2020): ``ReLU(Σ_k softmax_k(s)_k A_k)``.

    ``masked_scores`` (N×K) holds ``s_k = y_c(x ⊙ M_k)``; the engine computes them with batched
    masked forward passes (see ``cams.engine.scorecam_scores``).
    """
    return F.relu(weighted_activations(activations, torch.softmax(masked_scores, dim=1)))


def minmax(maps: Tensor) -> Tensor:
    """Min-max normalise each map of N×h×w to [0, 1]; a constant map becomes all zeros."""
    flat = maps.flatten(1)
    low, high = torch.aminmax(flat, dim=1, keepdim=True)
    span = high - low
    # The clamp keeps gradients finite for constant maps in differentiable mode.
    inverse = torch.where(span > 0, 1 / span.clamp_min(torch.finfo(flat.dtype).tiny), 0.0)
    return ((flat - low) * inverse).reshape(maps.shape)


@functools.lru_cache(maxsize=64)
def interpolation_matrix(size_in: int, size_out: int, device: torch.device,
                         dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """1-D bilinear resampling (``align_corners=False``) as a size_out×size_in matrix, taken from
    ``F.interpolate`` itself applied to the unit vectors; and the output indices that can hold an
    extreme: the first and last output of each run sharing the same pair of inputs (between them
    the resampled value is linear, so its extremes lie at the ends)."""
    unit_vectors = torch.eye(size_in, device=device, dtype=dtype)[:, None, :, None]
    resampled = F.interpolate(unit_vectors, size=(size_out, 1), mode="bilinear", align_corners=False)
    matrix = resampled[:, 0, :, 0].T.contiguous()
    first_input = (matrix > 0).to(torch.int8).argmax(dim=1)
    run_edges = torch.ones(size_out, dtype=torch.bool, device=device)
    run_edges[1:-1] = (first_input[1:-1] != first_input[:-2]) | (first_input[1:-1] != first_input[2:])
    return matrix, run_edges.nonzero()[:, 0]


def display_maps(layer_maps: Tensor, size: tuple[int, int]) -> Tensor:
    """The display normalization (docs/equations.md): bilinear upsample (``align_corners=False``),
    then min-max.

    Bilinear resampling is separable and affine-equivariant, so this is computed as: the upsampled
    map's exact min and max, read at the few output pixels that can hold them; min-max at layer
    resolution with those; then one upsampling by two small matrix products. Same numbers as
    ``F.interpolate`` followed by min-max, with one pass over the large output instead of three.
    """
    rows, row_edges = interpolation_matrix(layer_maps.shape[-2], size[0], layer_maps.device,
                                           layer_maps.dtype)
    columns, column_edges = interpolation_matrix(layer_maps.shape[-1], size[1],
                                                 layer_maps.device, layer_maps.dtype)
    candidates = (rows[row_edges] @ layer_maps @ columns[column_edges].T).flatten(1)
    low, high = torch.aminmax(candidates, dim=1)
    span = (high - low)[:, None, None]
    inverse = torch.where(span > 0, 1 / span.clamp_min(torch.finfo(span.dtype).tiny), 0.0)
    normalised = (layer_maps - low[:, None, None]) * inverse
    # Rows of the resampling matrices sum to 1 only up to rounding: clamp the last ulp (out of
    # place: on a CPU torch's in-place clamp is several times slower).
    return torch.clamp(rows @ normalised @ columns.T, 0.0, 1.0)


def signed_display_maps(layer_maps: Tensor, size: tuple[int, int]) -> Tensor:
    """A signed map for a diverging colormap: bilinear upsample, then ``(v / max|v| + 1) / 2``,
    so that 0.5 is zero, 1 the map's largest magnitude if positive and 0 if negative (a map that
    is zero everywhere is 0.5 everywhere)."""
    rows, _ = interpolation_matrix(layer_maps.shape[-2], size[0], layer_maps.device,
                                   layer_maps.dtype)
    columns, _ = interpolation_matrix(layer_maps.shape[-1], size[1], layer_maps.device,
                                      layer_maps.dtype)
    upsampled = rows @ layer_maps @ columns.T
    scale = upsampled.abs().flatten(1).amax(dim=1)[:, None, None]
    inverse = torch.where(scale > 0, 1 / scale.clamp_min(torch.finfo(scale.dtype).tiny), 0.0)
    return torch.clamp((upsampled * inverse + 1) / 2, 0.0, 1.0)


# The explained scalars whose gradients the engine computes, one cotangent each (cams.targets).
LOGIT, MEAN_DIFF, MAX_DIFF, LSE_DIFF, FALSE_LOGIT, TRUE_MINUS_FALSE, MEAN_RIVAL, MEAN_LOGIT = (
    "logit", "mean_difference", "max_difference", "lse_difference", "false_logit",
    "true_minus_false", "mean_rival", "mean_logit")
FINER_DIFF = "finer_difference"  # Finer-CAM's weighted difference to the nearest classes
CLASS_LOGIT = "logit of class "  # + an index: that class's logit, whatever the target


def class_logit(index: int) -> str:
    """The explained scalar ``y_index`` (e.g. each rival of the pairwise training losses)."""
    return f"{CLASS_LOGIT}{index}"


class Kind(enum.Enum):
    """What a method's ``layer_map`` takes besides the activations ``A``; the engine supplies it."""

    GRADIENT = "the gradient G of the method's explained scalar: layer_map(A, G)"
    ACTIVATIONS = "nothing else: layer_map(A)"
    CLASSIFIER = "the target class's row of the final Linear layer: layer_map(A, W_c)"
    MASKED_SCORES = "the target score of the image masked by each channel: layer_map(A, s)"
    ABLATED_SCORES = ("the target score with each channel ablated at the layer, and without: "
                      "layer_map(A, s, y)")
    INTEGRATED_SCORES = ("the target score of the image masked by each channel at N growing "
                         "scales, averaged: layer_map(A, s)")
    FULL_GRADIENT = ("FullGrad's map, from the gradients of every bias and of the input: "
                     "layer_map(A, map)")
    NOISY_GRADIENTS = ("the target logit's gradients at noisy copies of the input, and the last "
                       "copy's activations: layer_map(A, G_noisy, A_last)")
    SMOOTHED_SCORES = ("the target score of the image masked by each channel's mask plus noise, "
                       "averaged over noise samples: layer_map(A, s)")
    SCALED_PATCHES = ("the input's own map, fused from a base map of patches of the image at "
                      "many scales: layer_map(A, map)")
    LAYERS = ("the input's own map, the product of GradCAM++ maps at the target layer and at "
              "finer blocks: layer_map(A, map)")
    ATTENTION = ("a map on the token grid from the gradients of each block's class score with "
                 "respect to its attention: layer_map(A, map)")
    SECOND_ORDER = ("the target logit's gradient G and its Hessian-vector product H·A: "
                    "layer_map(A, G, HA)")


@dataclass(frozen=True)
class Method:
    """One row of the method table: a display name bound to the maths of its map.

    ``layer_map`` makes the map at layer resolution from the activations and what ``kind`` says;
    ``gradient`` names the explained scalar whose gradient it takes (``Kind.GRADIENT`` only). A
    gradient method's ``layer_map(A, G)`` gets ``A`` as N×K×h×w and ``G`` as …×N×K×h×w (the
    engine stacks the gradients of the rows that share the function) and keeps ``G``'s leading
    dimensions: …×N×h×w.
    ``default``: in the panel unless the user asks otherwise. ``baseline``: for a DiffGradCAM
    variant, the map it should match on a clean model (DiffGradCAM paper, RQ2). ``compared``: one
    of the maps the DiffGradCAM paper compares (Tables 3–4). ``class_map``: the part of Divisive
    Decisions' true/false-class panel the map shows (``t``, ``f`` or ``t − f``, Eq. 1).
    """

    name: str
    kind: Kind
    layer_map: Callable[..., Tensor]
    summary: str
    gradient: str | None = None
    default: bool = True
    baseline: str | None = None
    compared: bool = False
    class_map: str | None = None

    def explaining(self, gradient: str) -> Method:
        """The same maths applied to the gradient of another explained scalar (the training
        losses' false-class map ``f`` is the supervised CAM of the mean rival)."""
        return replace(self, name=f"{self.name} of {gradient}", gradient=gradient)


def _gradient(name: str, layer_map: Callable[..., Tensor], gradient: str, summary: str,
              **options: object) -> Method:
    return Method(name, Kind.GRADIENT, layer_map, summary, gradient=gradient, **options)


def _difference(name: str, family: Method, gradient: str, summary: str,
                **options: object) -> Method:
    """A contrastive variant (the DiffGradCAMs, FinerCAM): ``family``'s maths with a difference
    target's gradient."""
    return _gradient(name, family.layer_map, gradient, summary, baseline=family.name,
                     compared=True, **options)


_GRADCAM = _gradient("GradCAM", gradcam, LOGIT, "gradient-averaged channel weights of the target "
                     "logit", compared=True)
_GRADCAM_PP = _gradient("GradCAM++", gradcam_plus_plus, LOGIT, "pixel-weighted positive "
                        "gradients (2nd/3rd order)", compared=True)

# The table, in display order. Adding a method is one pure function above and one row here.
METHODS: dict[str, Method] = {method.name: method for method in [
    Method("CAM", Kind.CLASSIFIER, weighted_activations, "classic CAM Σ_k W_ck A_k "
           "(global-average-pool → Linear heads only)"),
    _GRADCAM,
    _GRADCAM_PP,
    _gradient("HiResCAM", hirescam, LOGIT, "element-wise gradient × activation, summed over "
              "channels", compared=True),
    _gradient("XGradCAM", xgradcam, LOGIT, "activation-normalised gradient × activation weights",
              compared=True),
    Method("EigenCAM", Kind.ACTIVATIONS, eigencam, "first principal component of the "
           "activations (class-agnostic)", compared=True),
    Method("ScoreCAM", Kind.MASKED_SCORES, scorecam_combine, "softmax of the target score of the "
           "image masked by each channel (one forward pass per distinct channel)",
           default=False, compared=True),
    _difference("MeanDiffGradCAM", _GRADCAM, MEAN_DIFF, "GradCAM of y_c − mean of the other "
                "logits"),
    _difference("MaxDiffGradCAM", _GRADCAM, MAX_DIFF, "GradCAM of y_c − the strongest rival logit"),
    _difference("LSEDiffGradCAM", _GRADCAM, LSE_DIFF, "GradCAM of y_c − log-mean-exp of the other "
                "logits"),
    _difference("MeanDiffGradCAM++", _GRADCAM_PP, MEAN_DIFF, "GradCAM++ of the Mean difference"),
    _difference("MaxDiffGradCAM++", _GRADCAM_PP, MAX_DIFF, "GradCAM++ of the Max difference"),
    _difference("LSEDiffGradCAM++", _GRADCAM_PP, LSE_DIFF, "GradCAM++ of the LSE difference"),
    _difference("FinerCAM", _GRADCAM, FINER_DIFF, "GradCAM of y_c − the softmax-weighted mean of "
                "the 3 logits nearest y_c (Finer-CAM; opt-in)", default=False),
    # The anchors' other maps (grad-cam 1.5.7), opt-in in the panel.
    _gradient("LayerCAM", layercam, LOGIT, "positive gradient × activation at every position, "
              "summed over channels (Jiang et al. 2021)", default=False, compared=True),
    _gradient("GradCAMElementWise", gradcam_elementwise, LOGIT, "ReLU of gradient × activation "
              "per channel, then summed", default=False, compared=True),
    _gradient("EigenGradCAM", eigengradcam, LOGIT, "first principal component of gradient × "
              "activation", default=False, compared=True),
    Method("KPCA-CAM", Kind.ACTIVATIONS, kpcacam, "first kernel principal component of the "
           "activations (sigmoid kernel; class-agnostic; opt-in)", default=False, compared=True),
    Method("FEM", Kind.ACTIVATIONS, fem, "channels weighted by their share of positions above "
           "mean + 2σ (class-agnostic; Fuad et al. 2020)", default=False, compared=True),
    Method("IS-CAM", Kind.INTEGRATED_SCORES, scorecam_combine, "ScoreCAM with each mask's "
           "score integrated over 10 scales (torchcam; one forward pass per distinct channel "
           "and scale; opt-in)", default=False, compared=True),
    Method("SS-CAM", Kind.SMOOTHED_SCORES, scorecam_combine, "ScoreCAM with each mask's score "
           "averaged over 35 draws of Gaussian noise (σ 2) added to the mask (torchcam; one "
           "forward pass per channel and draw; opt-in, slow)", default=False, compared=True),
    Method("SmoothGradCAM++", Kind.NOISY_GRADIENTS, smoothgradcam_plus_plus, "GradCAM++'s "
           "pixel weights from gradients averaged over 4 noisy copies of the input (σ 0.3; "
           "torchcam; the copies in one batched pass; opt-in)", default=False, compared=True),
    Method("SESS", Kind.SCALED_PATCHES, input_resolution, "GradCAM of patches of the image at "
           "12 scales, weighted by their score, pasted back, averaged and blurred (Tyagi et al. "
           "2022; ~140 passes per image; opt-in)", default=False, compared=True),
    Method("RefineCAM", Kind.LAYERS, input_resolution, "GradCAM++ at the target layer and at "
           "the last blocks of the two next finer resolutions, multiplied (grad-cam; CNNs; "
           "opt-in)", default=False, compared=True),
    Method("LeGrad", Kind.ATTENTION, input_resolution, "positive gradients of each of the last "
           "4 blocks' class score with respect to its attention, averaged over heads, queries "
           "and blocks (Bousselham et al. 2024; vision transformers; opt-in)", default=False,
           compared=True),
    Method("FullGrad", Kind.FULL_GRADIENT, input_resolution, "|input × input gradient| plus |bias × "
           "gradient| of every convolution and batch norm, each normalised per channel (the "
           "whole network, no target layer; opt-in)", default=False, compared=True),
    Method("ShapleyCAM", Kind.SECOND_ORDER, shapleycam, "GradCAM weights of gradient − ½ "
           "Hessian-vector product (a second backward pass; opt-in)", default=False,
           compared=True),
    Method("AblationCAM", Kind.ABLATED_SCORES, ablationcam, "each channel weighted by the "
           "relative drop of the target score when it is ablated (one head pass per channel "
           "at a CNN's features; opt-in)", default=False, compared=True),
    Method("RandomCAM", Kind.ACTIVATIONS, randomcam, "random channel weights in [−1, 1] (a "
           "baseline: seeded, the same on every call)", default=False),
    _gradient("TrueClassCAM", class_activation, LOGIT, "un-ReLU'd CAM t of the true (target) "
              "class", class_map="t"),
    _gradient("FalseClassCAM", class_activation, FALSE_LOGIT, "un-ReLU'd CAM f of the false "
              "class", class_map="f"),
    _gradient("DifferenceSalience", class_activation, TRUE_MINUS_FALSE, "minmax(t − f): where the "
              "image favours the true over the false class", class_map="t − f"),
]}

# Views of the table (never edited by hand).
# Kinds whose maps cost a forward pass of the whole network per channel (and per scale or noise
# draw) or per patch: the evaluation's and the sanity table's defaults leave them out.
MANY_PASS_KINDS = frozenset({Kind.MASKED_SCORES, Kind.INTEGRATED_SCORES, Kind.SMOOTHED_SCORES,
                             Kind.SCALED_PATCHES})
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)
DEFAULT_METHODS: tuple[str, ...] = tuple(name for name, m in METHODS.items() if m.default)
GRADIENT_METHODS: tuple[str, ...] = tuple(name for name, m in METHODS.items()
                                          if m.kind is Kind.GRADIENT)
# Each DiffGradCAM variant beside the map it should match on a clean model (DiffGradCAM paper, RQ2).
DIFF_BASELINES: dict[str, str] = {name: m.baseline for name, m in METHODS.items() if m.baseline}

# The target as a choice: every gradient method of the logit with another explained scalar, named
# "METHOD · TARGET" (e.g. "LayerCAM · MeanDiff"); where the papers name that map ("GradCAM ·
# MeanDiff" is MeanDiffGradCAM, "GradCAM · Finer" is FinerCAM) the name is theirs.
TARGETS: dict[str, str] = {"MeanDiff": MEAN_DIFF, "MaxDiff": MAX_DIFF, "LSEDiff": LSE_DIFF,
                           "Finer": FINER_DIFF}
TARGETED_SEPARATOR = " · "
RETARGETABLE: tuple[str, ...] = tuple(name for name, m in METHODS.items()
                                      if m.kind is Kind.GRADIENT and m.gradient == LOGIT
                                      and m.class_map is None)


def targeted_name(method: str, target: str) -> str:
    """The name of ``method`` explaining ``target`` (a key of ``TARGETS``): the papers' own name
    where the table has that map, else "METHOD · TARGET"."""
    for name, row in METHODS.items():
        if row.baseline == method and row.gradient == TARGETS[target]:
            return name
    return f"{method}{TARGETED_SEPARATOR}{target}"


@functools.cache
def _targeted(name: str) -> Method | None:
    method, separator, target = name.partition(TARGETED_SEPARATOR)
    if not separator or method not in RETARGETABLE or target not in TARGETS:
        return None
    base = METHODS[method]
    return replace(base, name=name, gradient=TARGETS[target],
                   summary=f"{method} of the {target} target", baseline=method, default=False)


def method_row(name: str) -> Method | None:
    """The row a method name means — a row of the table, or a targeted "METHOD · TARGET" — or
    None for no such method."""
    return METHODS.get(name) or _targeted(name)

