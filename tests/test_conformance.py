"""Our maps against the reference implementation, the ``grad-cam`` package (pytorch-grad-cam 1.5.x).

Each reference map is computed by grad-cam itself: its own hooks, one full forward and backward
per method, numpy normalization and cv2 resizing. DiffGradCAM(++) there is GradCAM(++) with a
target callable that returns the difference logit (written here by hand, per SPEC).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
from torch import nn

from cams import explain

TOLERANCE = 1e-3


class _Features(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


class SplitModel(nn.Module):
    """The backbone as features → head, so grad-cam can hook the target layer's output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.features = _Features(model)
        self.model = model

    def forward(self, x):
        return self.model.forward_head(self.features(x))


class DifferenceTarget:
    """``y_c − b(y_¬c)``, the DiffGradCAM paper's difference logit (§4.3)."""

    def __init__(self, category: int, baseline: str):
        self.category, self.baseline = category, baseline

    def __call__(self, output):
        others = torch.cat([output[..., :self.category], output[..., self.category + 1:]], dim=-1)
        if self.baseline == "mean":
            base = others.mean(dim=-1)
        elif self.baseline == "max":
            base = others.max(dim=-1).values
        else:
            base = torch.logsumexp(others, dim=-1) - math.log(others.shape[-1])
        return output[..., self.category] - base


REFERENCES = {
    "GradCAM": (GradCAM, None),
    "GradCAM++": (GradCAMPlusPlus, None),
    "HiResCAM": (HiResCAM, None),
    "XGradCAM": (XGradCAM, None),
    "MeanDiffGradCAM": (GradCAM, "mean"),
    "MaxDiffGradCAM": (GradCAM, "max"),
    "LSEDiffGradCAM": (GradCAM, "lse"),
    "MeanDiffGradCAM++": (GradCAMPlusPlus, "mean"),
    "MaxDiffGradCAM++": (GradCAMPlusPlus, "max"),
    "LSEDiffGradCAM++": (GradCAMPlusPlus, "lse"),
}


def reference_map(backbone, inputs, method, targets):
    cam_class, baseline = REFERENCES[method]
    split = SplitModel(backbone.model)
    wanted = [ClassifierOutputTarget(c) if baseline is None else DifferenceTarget(c, baseline)
              for c in targets]
    with cam_class(model=split, target_layers=[split.features]) as cam:
        return cam(input_tensor=inputs, targets=wanted)


def photo_batch(backbone, images, size):
    """Real photos, preprocessed by the backbone, then resized to ``size`` (possibly non-square)."""
    inputs = torch.cat([backbone.preprocess(image) for image in images])
    return F.interpolate(inputs, size=size, mode="bilinear", align_corners=False)


CASES = [  # (backbone fixture, input size, explicit target or None for top-1)
    ("lite0", (224, 224), None),
    ("lite0", (192, 256), 281),
    ("resnet_random", (160, 128), None),
    ("convnext_random", (128, 160), 7),
]


@pytest.mark.parametrize(("fixture", "size", "target"), CASES)
def test_gradient_methods_match_grad_cam(request, chelsea, coffee, fixture, size, target):
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], size)
    ours = explain(backbone, inputs, methods=list(REFERENCES), target=target)
    for method in REFERENCES:
        theirs = reference_map(backbone, inputs, method, ours.targets.tolist())
        assert theirs.shape == tuple(ours.maps[method].shape)
        error = np.abs(ours.maps[method].numpy() - theirs).max()
        assert error <= TOLERANCE, f"{method} on {fixture} {size}: max |ours − grad-cam| = {error}"
        assert theirs.max() > 0.99, f"{method} reference map is degenerate (all zero)"


@pytest.mark.parametrize(("fixture", "size"), [("lite0", (192, 256)), ("resnet_random", (160, 128))])
def test_eigencam_matches_grad_cam_up_to_svd_sign(request, chelsea, coffee, fixture, size):
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], size)
    ours = explain(backbone, inputs, methods=["EigenCAM"]).maps["EigenCAM"].numpy()
    split = SplitModel(backbone.model)
    with EigenCAM(model=split, target_layers=[split.features]) as cam:
        theirs = cam(input_tensor=inputs, targets=None)
    with torch.no_grad():
        projection = get_2d_projection(backbone.features(inputs).numpy())
    # The SVD's sign is arbitrary: the other sign, normalised the way grad-cam does.
    flipped = scale_cam_image(scale_cam_image(np.maximum(-projection, 0), size[::-1]))
    for index in range(len(inputs)):
        error = min(np.abs(ours[index] - theirs[index]).max(),
                    np.abs(ours[index] - flipped[index]).max())
        assert error <= TOLERANCE


def test_scorecam_matches_grad_cam_on_a_small_model(resnet_random, chelsea):
    inputs = photo_batch(resnet_random, [chelsea], (64, 96))
    calls = []
    ours = explain(resnet_random, inputs, methods=["ScoreCAM"], target=3,
                   progress=lambda done, total: calls.append((done, total)))
    split = SplitModel(resnet_random.model)
    with ScoreCAM(model=split, target_layers=[split.features]) as cam:
        cam.batch_size = 64
        theirs = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(3)])
    assert np.abs(ours.maps["ScoreCAM"].numpy() - theirs).max() <= TOLERANCE
    assert calls and calls[-1][0] == calls[-1][1] <= resnet_random.feature_shape[0]
