"""The reference implementation, the ``grad-cam`` package, wired to our backbones.

Used by the conformance tests (our maps must match these) and by the benchmark (our speed is
measured against these). grad-cam is a development dependency (requirements-dev.txt); it computes
each map with its own hooks and one full forward and backward pass per method.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from cams.backbones import Backbone
from cams.layers import FEATURES
from cams.methods import TARGETED_SEPARATOR


class _Features(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        return self.model.forward_features(inputs)


class SplitModel(nn.Module):
    """The backbone as ``features`` → head, so grad-cam can hook the target layer's output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.features = _Features(model)
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        return self.model.forward_head(self.features(inputs))


class DifferenceTarget:
    """A grad-cam target returning the DiffGradCAM paper's difference logit ``y_c − b(y_¬c)``
    (§4.3), written out directly from its definition (no cotangents)."""

    def __init__(self, category: int, baseline: str):
        self.category, self.baseline = category, baseline

    def __call__(self, output: Tensor) -> Tensor:
        others = torch.cat([output[..., :self.category], output[..., self.category + 1:]], dim=-1)
        if self.baseline == "mean":
            base = others.mean(dim=-1)
        elif self.baseline == "max":
            base = others.max(dim=-1).values
        else:
            base = torch.logsumexp(others, dim=-1) - math.log(others.shape[-1])
        return output[..., self.category] - base


DIFFERENCE_BASELINES = {"MeanDiff": "mean", "MaxDiff": "max", "LSEDiff": "lse"}  # DifferenceTarget's


def reference_classes() -> dict[str, tuple[type, str | None]]:
    """Display name → (grad-cam class, difference baseline or None) for the 11 maps grad-cam has
    (EigenCAM is class-agnostic; ScoreCAM is separate, being a different kind of cost)."""
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, XGradCAM
    return {
        "GradCAM": (GradCAM, None), "GradCAM++": (GradCAMPlusPlus, None),
        "HiResCAM": (HiResCAM, None), "XGradCAM": (XGradCAM, None), "EigenCAM": (EigenCAM, None),
        "MeanDiffGradCAM": (GradCAM, "mean"), "MaxDiffGradCAM": (GradCAM, "max"),
        "LSEDiffGradCAM": (GradCAM, "lse"), "MeanDiffGradCAM++": (GradCAMPlusPlus, "mean"),
        "MaxDiffGradCAM++": (GradCAMPlusPlus, "max"), "LSEDiffGradCAM++": (GradCAMPlusPlus, "lse"),
    }


def anchor_classes() -> dict[str, type]:
    """Display name → grad-cam class for the anchors' other maps this project has (opt-in rows of
    the method table; not in the timed panel)."""
    from pytorch_grad_cam import (
        FEM,
        KPCA_CAM,
        AblationCAM,
        EigenGradCAM,
        GradCAMElementWise,
        LayerCAM,
        RandomCAM,
        ShapleyCAM,
    )
    return {"LayerCAM": LayerCAM, "GradCAMElementWise": GradCAMElementWise,
            "EigenGradCAM": EigenGradCAM, "KPCA-CAM": KPCA_CAM, "FEM": FEM,
            "RandomCAM": RandomCAM, "AblationCAM": AblationCAM, "ShapleyCAM": ShapleyCAM}


def finer_reference(backbone: Backbone, inputs: Tensor, targets: list[int]) -> np.ndarray:
    """grad-cam's own FinerCAM (GradCAM base, α = 1, its default comparison of the 2nd to 4th
    nearest classes) for explicit target classes."""
    from pytorch_grad_cam import FinerCAM
    model = SplitModel(backbone.model)
    maps = []
    with FinerCAM(model, [model.features]) as cam:
        for index, target in enumerate(targets):
            maps.append(cam(input_tensor=inputs[index:index + 1], target_idx=target))
    return np.concatenate(maps)


def reference_map(backbone: Backbone, inputs: Tensor, method: str, targets: list[int],
                  scorecam_batch_size: int = 16,
                  reshape_transform: Callable[[Tensor], Tensor] | None = None) -> np.ndarray:
    """grad-cam's normalised N×H×W map for one of our method names (ScoreCAM included).

    A backbone read at its features seam is split there; one read at a named module (a
    transformer's ``norm1``) gives grad-cam that module and ``reshape_transform`` (grad-cam's
    documented way to turn tokens into a feature map)."""
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    method, _, target = method.partition(TARGETED_SEPARATOR)  # "LayerCAM · MeanDiff"
    cam_class, baseline = ((ScoreCAM, None) if method == "ScoreCAM" else
                           (anchor_classes()[method], None) if method in anchor_classes() else
                           reference_classes()[method])
    baseline = DIFFERENCE_BASELINES[target] if target else baseline
    if backbone.layer.name == FEATURES:
        model = SplitModel(backbone.model)
        layer = model.features
    else:
        model = backbone.model
        layer = dict(model.named_modules())[backbone.layer.name]
    wanted = [ClassifierOutputTarget(c) if baseline is None else DifferenceTarget(c, baseline)
              for c in targets]
    with cam_class(model=model, target_layers=[layer],
                   reshape_transform=reshape_transform) as cam:
        cam.batch_size = scorecam_batch_size
        return cam(input_tensor=inputs, targets=None if method == "EigenCAM" else wanted)


PEER_METHODS = ("GradCAM", "GradCAM++", "XGradCAM")  # the maps grad-cam and torchcam both have


def torchcam_map(backbone: Backbone, inputs: Tensor, method: str, targets: list[int]) -> Tensor:
    """torchcam 0.5.0's map for one of ``PEER_METHODS``, as its users compute it (one forward and
    one backward per method), upsampled bilinearly to the input and min-max normalised like
    ours. (Its GradCAM++ divides α on a copy of the masked gradients, so its α is g²: the
    division is lost, and its map differs from grad-cam's and ours by that, not by precision.)"""
    import torch.nn.functional as F
    from torchcam.methods import GradCAM, GradCAMpp, XGradCAM
    extractor_class = {"GradCAM": GradCAM, "GradCAM++": GradCAMpp, "XGradCAM": XGradCAM}[method]
    if backbone.layer.name != FEATURES:
        raise ValueError("torchcam has no reshape for a transformer's tokens: CNNs only")
    model = SplitModel(backbone.model)
    with extractor_class(model, target_layer=model.features) as extractor:
        maps = extractor(targets, model(inputs))[0]
    maps = F.interpolate(maps[:, None].float(), size=tuple(inputs.shape[-2:]), mode="bilinear",
                         align_corners=False)[:, 0]
    low, high = maps.amin((1, 2), keepdim=True), maps.amax((1, 2), keepdim=True)
    return (maps - low) / (high - low).clamp_min(1e-12)


def torchcam_display(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """torchcam's layer-resolution maps (N×h×w) as our display maps: upsampled (bilinear, corners
    not aligned) to ``size``, then min-max normalised."""
    import torch.nn.functional as F
    maps = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    low = maps.amin(dim=(1, 2), keepdim=True)
    return (maps - low) / (maps.amax(dim=(1, 2), keepdim=True) - low)
