"""The explained scalars, as cotangent vectors on the logits.

Every scalar a CAM explains is a function ``s(y)`` of the logits, and its gradient at the target
layer is ``∂s/∂A = Σ_j v_j ∂y_j/∂A`` with ``v = ∂s/∂y`` (docs/equations.md, Explained scalars).
So all of them come from one vector-Jacobian product with a small batch of cotangents ``v``.

Difference targets (DiffGradCAM paper, §4.3, Eq. 5–8): ``s = y_c − b(y_¬c)`` with
  Mean ``b = mean_{j≠c} y_j``, Max ``b = max_{j≠c} y_j``, LSE ``b = log Σ_{j≠c} exp(y_j) − log(C−1)``.
Finer-CAM's (as pytorch-grad-cam ≥ 1.5.5, α = 1): ``s = Σ_k p_k (y_c − y_k) / Σ_k p_k`` over the
``FINER_COMPARED`` classes whose logits are nearest ``y_c``, ``p = softmax(y)`` (differentiated too).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cams.methods import (
    CLASS_LOGIT,
    FALSE_LOGIT,
    FINER_DIFF,
    LOGIT,
    LSE_DIFF,
    MAX_DIFF,
    MEAN_DIFF,
    MEAN_LOGIT,
    MEAN_RIVAL,
    TRUE_MINUS_FALSE,
)

FINER_COMPARED = 3  # Finer-CAM compares with the classes 2nd to 4th nearest the target's logit


def finer_difference(logits: Tensor, target: Tensor) -> Tensor:
    """Finer-CAM's explained scalar per image (N), differentiable in ``logits``."""
    nearest = (logits.detach() - logits.detach().gather(1, target[:, None])).abs().argsort(
        dim=1, stable=True)[:, 1:1 + FINER_COMPARED]  # position 0 is the target itself
    weights = logits.softmax(dim=1).gather(1, nearest)
    differences = logits.gather(1, target[:, None]) - logits.gather(1, nearest)
    return (weights * differences).sum(dim=1) / (weights.sum(dim=1) + 1e-9)


def strongest_rival(logits: Tensor, target: Tensor) -> Tensor:
    """Index of the largest logit other than ``target`` (N), the default false class."""
    others = logits.detach().scatter(1, target[:, None], float("-inf"))
    return others.argmax(dim=1)


def target_cotangents(logits: Tensor, target: Tensor, false_class: Tensor,
                      names: list[str]) -> Tensor:
    """Stack ``v = ∂s/∂y`` for each named explained scalar: T×N×C.

    The LSE cotangent depends on the logits (a softmax over the rivals); it keeps their graph, so in
    differentiable mode the second-order terms of ``∂s/∂A`` are exact.
    """
    num_classes = logits.shape[1]
    one_hot = torch.zeros_like(logits).scatter(1, target[:, None], 1.0)
    false_hot = torch.zeros_like(logits).scatter(1, false_class[:, None], 1.0)
    rivals = 1.0 - one_hot
    # With one class there is no rival: every difference target is y_c alone.
    num_rivals = max(num_classes - 1, 1)

    def lse() -> Tensor:
        if num_classes == 1:
            return one_hot
        rival_logits = logits.masked_fill(one_hot.bool(), float("-inf"))
        return one_hot - torch.softmax(rival_logits, dim=1) * rivals

    def finer() -> Tensor:
        if num_classes == 1:
            return one_hot
        with torch.enable_grad():  # ∂s/∂y, the softmax weights included
            scores = logits if logits.requires_grad else logits.detach().requires_grad_()
            cotangent, = torch.autograd.grad(finer_difference(scores, target).sum(), scores,
                                             create_graph=logits.requires_grad)
        return cotangent

    def max_difference() -> Tensor:
        return one_hot - torch.zeros_like(logits).scatter(
            1, strongest_rival(logits, target)[:, None], 1.0) * rivals

    builders = {
        LOGIT: lambda: one_hot,
        MEAN_DIFF: lambda: one_hot - rivals / num_rivals,
        MAX_DIFF: max_difference,
        LSE_DIFF: lse,
        FINER_DIFF: finer,
        FALSE_LOGIT: lambda: false_hot,
        TRUE_MINUS_FALSE: lambda: one_hot - false_hot,
        # The mean of the rival logits: the training losses' false class (the other class when
        # there are two).
        MEAN_RIVAL: lambda: rivals / num_rivals,
        # The mean of all logits: its CAM is the part every class's CAM shares.
        MEAN_LOGIT: lambda: torch.full_like(logits, 1.0 / num_classes),
    }

    def cotangent(name: str) -> Tensor:
        if name in builders:
            return builders[name]()
        index = int(name.removeprefix(CLASS_LOGIT))  # class_logit(j): the logit of class j
        return torch.zeros_like(logits).index_fill_(1, torch.tensor([index],
                                                                    device=logits.device), 1.0)

    return torch.stack([cotangent(name) for name in names])
