"""Every timm CNN by name: heads with a pre-logits stage (VGG's conv MLP, MobileNetV3/V4's and
GhostNet's and LCNet's conv_head, EfficientViT's MLP), RegNet, ConvNeXt's norm-after-pool head and
Swin read as a CNN (channels-last features) all match pytorch-grad-cam hooked at timm's
``forward_features`` (its head, whatever it holds, is differentiated through as a whole)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam_studio.benchmarks.reference import reference_map
from cam_studio.commands import main as cams_main
from cams import explain, load_backbone

TOLERANCE = 1e-3
METHODS = ["GradCAM", "GradCAM++", "HiResCAM", "MeanDiffGradCAM", "LSEDiffGradCAM++"]
CNNS = {  # timm name → input side (small where the model allows it)
    "vgg11": 64, "mobilenetv3_small_050": 128, "mobilenetv4_conv_small": 128,
    "ghostnet_050": 128, "lcnet_050": 128, "efficientvit_b0": 128, "regnetx_002": 128,
    "convnext_atto": 128, "swin_tiny_patch4_window7_224": 224,
}


def channels_first(tensor):  # grad-cam's reshape_transform for Swin's N×H×W×C features
    return tensor.permute(0, 3, 1, 2)


@pytest.mark.parametrize("name", CNNS)
def test_a_timm_cnn_matches_grad_cam(name, chelsea):
    torch.manual_seed(0)
    side = CNNS[name]
    backbone = load_backbone(name, "random", "cpu", layer="forward_features",
                             data_config={"input_size": (3, side, side)})
    inputs = backbone.preprocess(chelsea)
    ours = explain(backbone, inputs, methods=METHODS)
    reshape = channels_first if backbone.layer.layout == "NHWC" else None
    for method in METHODS:
        theirs = reference_map(backbone, inputs, method, ours.targets.tolist(),
                               reshape_transform=reshape)
        error = np.abs(ours.maps[method].numpy() - theirs).max()
        assert error <= TOLERANCE, f"{method} on {name}: max |ours − grad-cam| = {error}"
    assert (ours.layer_maps["GradCAM"] > 0).any(), f"GradCAM on {name} is empty: proves nothing"
    head = backbone.model.get_classifier()
    # The classic CAM only where a GAP → Linear head follows the features directly.
    assert backbone.linear_head == (name in ("regnetx_002", "swin_tiny_patch4_window7_224")), head


def test_what_still_does_not_fit_is_one_line_and_exit_2(capsys, tmp_path):
    code = cams_main(["explain", "--example", "chelsea", "--backbone", "resnet18", "--weights",
                      "random", "--layer", "fc", "--out", str(tmp_path), "--device", "cpu"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "pass --layer MODULE (another layer)" in error
