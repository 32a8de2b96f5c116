"""A passive fool built by hand, not trained: the clean backbone plus constant feature channels.

``ConstantChannels`` appends fixed maps ``S`` (K'×h×w, the same for every input) to the target
layer's activations, and gives them a classifier column ``r`` that is the same for every class:

    A' = [A; S],   y_j = W_j·pool(A) + b_j + r·pool(S)   for every class j.

Every logit moves by the same ``r·pool(S)`` (zero when ``S`` has zero mean), so the probabilities
are the clean model's; every class's CAM moves by the same ``r·S/Z``: a class-uniform manipulation
by construction (docs/equations.md, common-mode share). GradCAM sees it; the DiffGradCAM weights
``w_c − b(w_¬c)`` give the extra channels exactly 0, so every DiffGradCAM map is the clean one.
It is the teaching contrast to a trained fool (a common-mode share of 1).

The checkpoint (``cams.checkpoints``) stores only ``S`` and ``r``; its metadata names the
construction and its base weights, and the weight source below (added to the engine's table
when ``fooling`` is imported) builds it again.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cam_studio.data.photos import PhotoCrops, photo_set
from cams.backbones import (
    CLEAN_WEIGHTS,
    DEFAULT_BACKBONE,
    Loaded,
    WeightRequest,
    WeightSource,
    add_weight_source,
    load_backbone,
    read_state_dict,
)
from cams.checkpoints import Checkpoint, save_checkpoint
from cams.engine import explain
from cams.errors import UserInputError
from fooling.sham import DEFAULT_ENTROPY_NATS, sham_mask

CONSTANT_CHANNELS = "constant-channels"  # the construction's name in a checkpoint's metadata
TENSORS = ("channels", "class_uniform_weight")  # what its .safetensors holds
CALIBRATION_CROPS = 32  # validation crops (the held-out photos) that set the channel's scale


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


def _constructed(request: WeightRequest) -> Loaded:
    """The constructed fool a checkpoint describes: its base weights plus its tensors."""
    path, construction = request.file, request.metadata["construction"]
    kind = construction.get("kind") if isinstance(construction, dict) else None
    if kind != CONSTANT_CHANNELS or construction.get("base") != CLEAN_WEIGHTS:
        raise UserInputError(f"checkpoint {path} is constructed as {construction!r}, which this "
                             f"version cannot build (it knows {CONSTANT_CHANNELS!r} on the clean "
                             "weights)", "upgrade, or build it again with this version")
    tensors, _ = read_state_dict(path)
    if set(tensors) != set(TENSORS):
        raise UserInputError(f"checkpoint {path} should hold the tensors {', '.join(TENSORS)}",
                             "build it again (the construct command)")
    clean = load_backbone(request.spec.name, CLEAN_WEIGHTS, "cpu").model
    model = ConstantChannels(clean, tensors["channels"], tensors["class_uniform_weight"])
    return Loaded(model, str(path), request.metadata)


add_weight_source(WeightSource(
    "constructed fool", "a fool built by hand on the clean weights (fooling.constructed)",
    lambda r: (r.names_checkpoint or r.names_file) and "construction" in r.metadata,
    _constructed), before="registry checkpoint")


def construct_sham(name: str, backbone: str = DEFAULT_BACKBONE, strength: float = 3.0,
                   entropy_nats: float = DEFAULT_ENTROPY_NATS, directory: str | None = None,
                   command: str = "") -> Checkpoint:
    """Build and register the constructed SHAM fool of ``backbone``: one constant channel
    ``S = λ·(SHAM − mean SHAM)`` that every class weighs alike.

    λ = ``strength`` × Z × the 99th percentile of |t| over validation crops, with ``t`` the
    explained class's un-ReLU'd CAM ``Σ_k (W_ck / Z) A_k``: the extra channel adds ``λ/Z·(SHAM −
    mean)`` to every class's CAM, ``strength`` times the clean CAM's typical extreme.
    """
    clean = load_backbone(backbone, device="cpu")
    crops = PhotoCrops(photo_set("validation"), clean.input_size[0], seed=99,
                       length=CALIBRATION_CROPS, mosaics=False)
    images = torch.stack([crops[index][0] for index in range(CALIBRATION_CROPS)])
    t = explain(clean, clean.normalise(images), ["TrueClassCAM"]).layer_maps["TrueClassCAM"]
    height, width = t.shape[-2:]
    scale = strength * height * width * float(t.abs().flatten().quantile(0.99))
    sham = sham_mask(height, width, entropy_nats)
    tensors = {"channels": (scale * (sham - sham.mean()))[None],
               "class_uniform_weight": torch.ones(1)}
    metadata: dict[str, Any] = {
        "backbone": clean.name, "num_classes": clean.num_classes,
        "construction": {"kind": CONSTANT_CHANNELS, "base": CLEAN_WEIGHTS, "strength": strength,
                         "entropy_nats": entropy_nats, "scale": scale,
                         "calibration": f"{CALIBRATION_CROPS} crops of the held-out photos, "
                                        "seed 99"},
        "command": command}
    return save_checkpoint(tensors, metadata, name, directory)
