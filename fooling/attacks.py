"""Attacks on explanations: the passive-fooling recipes of the attacks table (the shipped Lite0
SHAM recipe, each with one change) and FGSM, the adversarial example of the MOD/VID table.

Passive fooling changes the model (``fooling.train`` runs these recipes); FGSM changes the image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cams.backbones import Backbone

# Which passive-fooling attacks DiffGradCAM resists (the evaluation's attacks table): the shipped
# Lite0 recipe, each with one change. Recipes chosen on the validation photos; measured on the
# test photos.
ATTACK_BASE = "lite0-sham"
ATTACKS: dict[str, dict[str, Any]] = {
    "true-class": {},
    "random-class": {"attack_class": "random"},
    "all-layers": {"train_stages": 0},
    "no-feature-term": {"feature_weight": 0.0},
    "head-only": {"head_only": True, "feature_weight": 0.0},
    "random-class-head-only": {"attack_class": "random", "head_only": True,
                               "feature_weight": 0.0},
    "adaptive-meandiff": {"cam": "MeanDiffGradCAM"},
}


def fgsm(backbone: Backbone, inputs: Tensor, labels: Tensor, epsilon: float) -> Tensor:
    """Fast Gradient Sign Method (Goodfellow et al. 2015) in pixel space: ``x' = clip(x + ε ·
    sign(∇_x CE(f(x), y)), 0, 1)``, with ``x`` the RGB image in [0, 1] and ``y`` the clean
    prediction; returns the attacked image normalised again for the model."""
    pixels = backbone.pixels(inputs).detach().requires_grad_()
    with torch.enable_grad():
        loss = torch.nn.functional.cross_entropy(backbone.model(backbone.normalise(pixels)),
                                                 labels)
        gradient, = torch.autograd.grad(loss, pixels)
    return backbone.normalise((pixels + epsilon * gradient.sign()).clamp(0, 1).detach())
