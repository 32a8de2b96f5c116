"""Salience-guided training objectives (Divisive Decisions, Eqs. 2–5) and SHAM passive fooling.

``h`` is the target salience map (a human map, or a SHAM for passive fooling) at the CAM's layer
resolution in [0, 1]; ``t`` and ``f`` are the true-class and false-class CAMs, differentiable with
respect to the model's parameters (``cams.engine.true_false_maps``, which calls the engine's one
definition of each CAM); ``norm`` is the min-max normalization to [0, 1] (``cams.methods.minmax``).

- Baseline (CYBORG):   ``α·CE + β·MSE(h, norm(t))``
- Difference Salience: ``α·CE + β·MSE(h, norm(t − f))``
- Per-class Salience:  ``α·CE + β·MSE(h, norm(t)) + γ·MSE(1 − h, norm(f))``
- Contrast Salience:   ``α·CE + β·MSE(h, norm(t)) + γ·MSE(1 − norm(t), norm(f))``
- Passive fooling (``sham``): Baseline with ``h`` = the SHAM (DiffGradCAM paper, §3.2).

Defaults (SPEC): α = β = 0.5 with two terms, α = β = γ = 0.3 with three. For unlabelled data the
CE term becomes ``KL(p_clean ‖ p_model)`` to a frozen copy of the starting model, which keeps
predictions while the CAM is redirected.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from cams.methods import minmax

LOSSES: tuple[str, ...] = ("baseline", "difference", "perclass", "contrast", "sham")
THREE_TERM_LOSSES = ("perclass", "contrast")


@dataclass(frozen=True)
class LossWeights:
    """α (classification), β (salience of t), γ (the third term, Per-class and Contrast only)."""

    alpha: float
    beta: float
    gamma: float = 0.0

    @classmethod
    def default(cls, loss: str) -> LossWeights:
        return cls(0.3, 0.3, 0.3) if loss in THREE_TERM_LOSSES else cls(0.5, 0.5)


def map_mse(target: Tensor, maps: Tensor) -> Tensor:
    """Mean squared error per image between two N×h×w stacks: N."""
    return (target - maps).square().flatten(1).mean(dim=1)


def salience_terms(loss: str, h: Tensor, t: Tensor, f: Tensor) -> dict[str, Tensor]:
    """The salience terms of ``loss``, each per image (N), unweighted: ``beta`` and ``gamma``."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    if loss == "difference":
        return {"beta": map_mse(h, minmax(t - f))}
    norm_t = minmax(t)
    terms = {"beta": map_mse(h, norm_t)}
    if loss == "perclass":
        terms["gamma"] = map_mse(1 - h, minmax(f))
    elif loss == "contrast":
        terms["gamma"] = map_mse(1 - norm_t, minmax(f))
    return terms


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


def salience_loss(loss: str, logits: Tensor, t: Tensor, f: Tensor, h: Tensor,
                  weights: LossWeights | None = None, labels: Tensor | None = None,
                  clean_logits: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """The batch's objective (a scalar) and its parts (batch means) for logging."""
    weights = weights or LossWeights.default(loss)
    classification = classification_term(logits, labels, clean_logits)
    terms = salience_terms(loss, h, t, f)
    total = weights.alpha * classification + weights.beta * terms["beta"]
    if "gamma" in terms:
        total = total + weights.gamma * terms["gamma"]
    parts = {"classification": float(classification.detach().mean()),
             **{f"salience_{key}": float(value.detach().mean()) for key, value in terms.items()}}
    return total.mean(), parts


def resize_salience(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """N×H×W human maps → N×h×w at layer resolution (area-averaged), min-max normalised."""
    resized = F.interpolate(maps[:, None].float(), size=size, mode="area")[:, 0]
    return minmax(resized)



def check_weights(weights: LossWeights) -> LossWeights:
    """Refuse negative or all-zero weights (a user-facing ValueError)."""
    for name in ("alpha", "beta", "gamma"):
        if getattr(weights, name) < 0:
            raise ValueError(f"loss weight {name} is negative: use values ≥ 0")
    if weights.alpha + weights.beta + weights.gamma == 0:
        raise ValueError("all loss weights are zero: give at least one positive weight")
    return weights
