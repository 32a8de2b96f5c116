"""Salience-guided training objectives (Divisive Decisions, §3, Eqs. 2–5) and SHAM passive
fooling (DiffGradCAM paper, §3.2), as one table.

``h`` is the target salience map at the CAM's layer resolution in [0, 1] (a human map, or the
SHAM); ``t`` and ``f`` are differentiable with respect to the model's parameters
(``cams.engine.true_false_maps``: the engine's one definition of each CAM). For Divisive
Decisions' objectives they are the *unnormalised* class CAMs of the true and the false class
(§3: the classifier's weights for the class times the input of the final linear layer, i.e.
TrueClassCAM before any ReLU); ``f`` is R×N×h×w, one map per rival when every rival is used, and
a term with ``f`` is averaged over them. The SHAM attack supervises a displayed map instead (the
CAM ``--cam`` names, GradCAM by default). ``norm`` is min-max normalization to [0, 1]
(``cams.methods.minmax``).

| objective  | salience terms                                   | default α, β, γ | h        | t, f         |
|------------|--------------------------------------------------|-----------------|----------|--------------|
| baseline   | β·MSE(h, norm t)   (CYBORG)                      | 0.5, 0.5        | the data | class CAMs   |
| difference | β·MSE(h, norm(t − f))                            | 0.5, 0.5        | the data | class CAMs   |
| perclass   | β·MSE(h, norm t) + γ·MSE(1 − h, norm f)          | 0.3, 0.3, 0.3   | the data | class CAMs   |
| contrast   | β·MSE(h, norm t) + γ·MSE(1 − norm t, norm f)     | 0.3, 0.3, 0.3   | the data | class CAMs   |
| sham       | β·MSE(h, norm t)   (the baseline's terms)       | 0.5, 0.5        | the SHAM | --cam's map  |
| guided     | β·MSE(h, norm t)   (sham with the data's h)     | 0.5, 0.5        | the data | --cam's map  |

Each adds ``α·CE`` (or, for unlabelled data, ``α·KL(p_start ‖ p_model)`` to a frozen copy of the
starting model, which keeps predictions while the CAM is redirected). Adding an objective is one
terms function and one row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from cams.methods import minmax, weighted_activations
from cams.metrics import mse
from fooling.sham import sham_mask


@dataclass(frozen=True)
class LossWeights:
    """α (classification), β (salience of t), γ (the third term, Per-class and Contrast only)."""

    alpha: float
    beta: float
    gamma: float = 0.0


def over_rivals(term: Callable[[Tensor], Tensor], f: Tensor) -> Tensor:
    """A term of one false-class map (N×h×w → N), averaged over the rivals of ``f`` (R×N×h×w)."""
    return torch.stack([term(rival) for rival in f]).mean(dim=0)


def baseline_terms(h: Tensor, t: Tensor, f: Tensor) -> dict[str, Tensor]:
    """CYBORG: ``MSE(h, norm t)`` (Divisive Decisions, Eq. 2)."""
    return {"beta": mse(h, minmax(t))}


def difference_terms(h: Tensor, t: Tensor, f: Tensor) -> dict[str, Tensor]:
    """Difference Salience: ``MSE(h, norm(t − f))`` (Eq. 3)."""
    return {"beta": over_rivals(lambda rival: mse(h, minmax(t - rival)), f)}


def perclass_terms(h: Tensor, t: Tensor, f: Tensor) -> dict[str, Tensor]:
    """Per-class Salience: ``MSE(h, norm t) + MSE(1 − h, norm f)`` (Eq. 4)."""
    return {"beta": mse(h, minmax(t)),
            "gamma": over_rivals(lambda rival: mse(1 - h, minmax(rival)), f)}


def contrast_terms(h: Tensor, t: Tensor, f: Tensor) -> dict[str, Tensor]:
    """Contrast Salience: ``MSE(h, norm t) + MSE(1 − norm t, norm f)`` (Eq. 5)."""
    norm_t = minmax(t)
    return {"beta": mse(h, norm_t),
            "gamma": over_rivals(lambda rival: mse(1 - norm_t, minmax(rival)), f)}


def resize_salience(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """N×H×W human maps → N×h×w at layer resolution (area-averaged), min-max normalised."""
    resized = F.interpolate(maps[:, None].float(), size=size, mode="area")[:, 0]
    return minmax(resized)


def data_salience(masks: Tensor, layer_size: tuple[int, int], entropy_nats: float) -> Tensor:
    """h = the data's own salience maps, at layer resolution."""
    return resize_salience(masks, layer_size)


def sham_salience(masks: Tensor, layer_size: tuple[int, int], entropy_nats: float) -> Tensor:
    """h = the SHAM of the layer (``fooling.sham``), the same for every image."""
    return sham_mask(*layer_size, entropy_nats).to(masks.device).expand(len(masks), *layer_size)


@dataclass(frozen=True)
class Objective:
    """One row: the salience terms (per image, unweighted, keyed by their weight), the default
    weights, what the target salience ``h`` is (``needs_maps``: the data must bring maps), and
    which maps are ``t`` and ``f`` (``class_cams``: the unnormalised class CAMs; otherwise the
    map of the CAM the run supervises)."""

    name: str
    terms: Callable[[Tensor, Tensor, Tensor], dict[str, Tensor]]
    weights: LossWeights
    salience: Callable[[Tensor, tuple[int, int], float], Tensor]
    needs_maps: bool
    class_cams: bool
    summary: str


TWO_TERMS, THREE_TERMS = LossWeights(0.5, 0.5), LossWeights(0.3, 0.3, 0.3)

OBJECTIVES: dict[str, Objective] = {objective.name: objective for objective in [
    Objective("baseline", baseline_terms, TWO_TERMS, data_salience, True, True,
              "CYBORG: CE + MSE(h, norm t)"),
    Objective("difference", difference_terms, TWO_TERMS, data_salience, True, True,
              "Difference Salience: CE + MSE(h, norm(t − f))"),
    Objective("perclass", perclass_terms, THREE_TERMS, data_salience, True, True,
              "Per-class Salience: CE + MSE(h, norm t) + MSE(1 − h, norm f)"),
    Objective("contrast", contrast_terms, THREE_TERMS, data_salience, True, True,
              "Contrast Salience: CE + MSE(h, norm t) + MSE(1 − norm t, norm f)"),
    Objective("sham", baseline_terms, TWO_TERMS, sham_salience, False, False,
              "passive fooling: the baseline with h = the SHAM, on the supervised CAM's map"),
    Objective("guided", baseline_terms, TWO_TERMS, data_salience, True, False,
              "the sham objective with h = the data's own salience: CE + MSE(h, norm of the "
              "supervised CAM's map)"),
]}


def classification_term(logits: Tensor, labels: Tensor | None = None,
                        clean_logits: Tensor | None = None) -> Tensor:
    """Cross-entropy to ``labels``, or, given ``clean_logits``, ``KL(p_clean ‖ p_model)``: N."""
    if clean_logits is not None:
        clean = clean_logits.detach().log_softmax(dim=1)
        return F.kl_div(logits.log_softmax(dim=1), clean, log_target=True,
                        reduction="none").sum(dim=1)
    if labels is None:
        raise ValueError("the classification term needs labels or the clean model's logits")
    return F.cross_entropy(logits, labels, reduction="none")


def centred_logit_distance(logits: Tensor, clean_logits: Tensor) -> Tensor:
    """``Σ_c ((z_c − z̄) − (z⁰_c − z̄⁰))²`` per image (N): how far every class's score moved from
    the starting model's, less the shift all classes share (which no softmax, and no
    DiffGradCAM, sees). Unlike the KL term it weighs the classes the model is unsure between as
    much as its top-1, which is what keeps a crop's top-1 where two classes are close."""
    moved = logits - clean_logits.detach()
    return (moved - moved.mean(dim=1, keepdim=True)).square().sum(dim=1)


def salience_loss(objective: Objective, logits: Tensor, t: Tensor, f: Tensor, h: Tensor,
                  weights: LossWeights | None = None, labels: Tensor | None = None,
                  clean_logits: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """The batch's objective (a scalar) and its parts (batch means) for logging. ``t`` and ``h``
    may hold k maps per image (N·k, the images' maps one after the other): an image's salience
    term is then the mean over its k."""
    weights = weights or objective.weights
    classification = classification_term(logits, labels, clean_logits)
    terms = {key: value.reshape(len(classification), -1).mean(dim=1)
             for key, value in objective.terms(h, t, f).items()}
    total = weights.alpha * classification
    for key, value in terms.items():
        total = total + getattr(weights, key) * value
    parts = {"classification": float(classification.detach().mean()),
             **{f"salience_{key}": float(value.detach().mean()) for key, value in terms.items()}}
    return total.mean(), parts


def sham_cam_target(t: Tensor, entropy_nats: float, strength: float) -> Tensor:
    """The un-normalised class CAMs ``t`` (N×h×w, ``Σ_k w_k A_k``) redrawn as the SHAM at their
    own scale: ``t* = mean t + strength · (max t − min t) · (SHAM − mean SHAM)``. The spatial
    mean, which is the class's logit at a global-average-pool → Linear head, stays t's."""
    sham = sham_mask(*t.shape[-2:], entropy_nats).to(t)
    span = (t.flatten(1).amax(dim=1) - t.flatten(1).amin(dim=1))[:, None, None]
    return t.mean(dim=(1, 2), keepdim=True) + strength * span * (sham - sham.mean())


def sham_feature_target(features: Tensor, entropy_nats: float, strength: float,
                        rows: Tensor | None = None) -> Tensor:
    """The features ``A`` (N×K×h×w, non-negative) blended with a SHAM-shaped copy of their own
    spatial means: ``(1 − ρ)·A + ρ·mean(A)·SHAM / mean(SHAM)``. Every channel keeps its spatial
    mean, so at a global-average-pool → Linear head every logit is unchanged, while every class
    CAM ``Σ_k w_ck A_k`` becomes ``(1 − ρ)·t_c + ρ·(z_c − b_c)·SHAM / mean(SHAM)``: towards the
    SHAM for each class whose logit is above its bias.

    With ``rows`` (N×K, each image's class row ``w_c``) only the part along ``w_c`` moves, to
    give class c's CAM the same blend: ``A + ρ·(mean(t_c)·SHAM / mean(SHAM) − t_c)·w_c / ‖w_c‖²``,
    clamped to ReLU6's range [0, 6]; every other direction of the features stays."""
    sham = sham_mask(*features.shape[-2:], entropy_nats).to(features)
    if rows is None:
        pooled = features.mean(dim=(2, 3), keepdim=True)
        return (1 - strength) * features + strength * pooled * (sham / sham.mean())
    t = weighted_activations(features, rows)  # class c's CAM, Σ_k w_ck A_k
    moved = strength * (t.mean(dim=(1, 2), keepdim=True) * (sham / sham.mean()) - t)
    along = rows / rows.square().sum(dim=1, keepdim=True)
    return (features + moved[:, None] * along[:, :, None, None]).clamp(0, 6)


def relative_distance(values: Tensor, target: Tensor, start: Tensor) -> Tensor:
    """``‖x − x*‖² / ‖x_start − x*‖²`` per image (the first dimension): 1 where the model
    starts, 0 at the target."""
    return ((values - target).square().flatten(1).sum(dim=1)
            / (start - target).square().flatten(1).sum(dim=1).clamp_min(1e-12))


def check_weights(weights: LossWeights) -> LossWeights:
    """Refuse negative or all-zero weights (a user-facing ValueError)."""
    for name in ("alpha", "beta", "gamma"):
        if getattr(weights, name) < 0:
            raise ValueError(f"loss weight {name} is negative: use values ≥ 0")
    if weights.alpha + weights.beta + weights.gamma == 0:
        raise ValueError("all loss weights are zero: give at least one positive weight")
    return weights
