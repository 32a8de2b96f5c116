"""Models built by hand, not trained: a backbone plus constant feature channels.

``ConstantChannels`` appends fixed maps ``S`` (K'×h×w, the same for every input) to the target
layer's activations, and gives them a classifier column ``r`` that is the same for every class:

    A' = [A; S],   y_j = W_j·pool(A) + b_j + r·pool(S)   for every class j.

Every logit moves by the same ``r·pool(S)`` (zero when ``S`` has zero mean), so the probabilities
are the clean model's; every class's CAM moves by the same ``r·S/Z``: a class-uniform manipulation
by construction (docs/equations.md, common-mode share). GradCAM sees it; the DiffGradCAM weights
``w_c − b(w_¬c)`` give the extra channels exactly 0, so every DiffGradCAM map is the clean one.
The checkpoint (``cams.checkpoints``) stores only ``S`` and ``r``; its metadata names the
construction and its base weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CONSTANT_CHANNELS = "constant-channels"  # the construction's name in a checkpoint's metadata
TENSORS = ("channels", "class_uniform_weight")  # what its .safetensors holds


class ConstantChannels(nn.Module):
    """``model`` (a timm model with a global-average-pool → Linear head) with constant extra
    channels ``channels`` (K'×h×w) weighted ``class_uniform_weight`` (K') for every class."""

    def __init__(self, model: nn.Module, channels: Tensor, class_uniform_weight: Tensor):
        super().__init__()
        self.model = model
        classifier = model.get_classifier()
        self.register_buffer("channels", channels.float())
        self.num_classes = model.num_classes
        self.pretrained_cfg = model.pretrained_cfg
        # One Linear over [A; S]: W for A, the same r in every class's row for S.
        self.classifier = nn.Linear(classifier.in_features + len(channels), self.num_classes)
        with torch.no_grad():
            uniform = class_uniform_weight.float().expand(self.num_classes, -1)
            self.classifier.weight.copy_(torch.cat([classifier.weight, uniform], dim=1))
            self.classifier.bias.copy_(classifier.bias)

    def forward_features(self, inputs: Tensor) -> Tensor:
        activations = self.model.forward_features(inputs)
        channels = self.channels
        if channels.shape[-2:] != activations.shape[-2:]:  # another input size: resample S
            channels = F.interpolate(channels[None], size=activations.shape[-2:],
                                     mode="nearest")[0]
        extra = channels.to(activations).expand(len(activations), -1, -1, -1)
        return torch.cat([activations, extra], dim=1)

    def forward_head(self, activations: Tensor) -> Tensor:
        return self.classifier(activations.mean(dim=(2, 3)))

    def forward(self, inputs: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(inputs))

    def get_classifier(self) -> nn.Linear:
        return self.classifier


def constant_channels(model: nn.Module, tensors: dict[str, Tensor]) -> ConstantChannels:
    """The construction from its checkpoint's tensors (``TENSORS``)."""
    return ConstantChannels(model, tensors["channels"], tensors["class_uniform_weight"])
