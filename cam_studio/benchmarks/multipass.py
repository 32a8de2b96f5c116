"""The anchors' maps that cost more than one pass, beside the anchors' own code, in one run.

SmoothGradCAM++ (against torchcam), SESS and RefineCAM (against grad-cam) on the default backbone
with its ImageNet weights, SS-CAM (torchcam) on a 64×64 input of the same network, LeGrad
(torchcam) on a random-init torchvision ViT-B/16; each time is the median of a few calls at
batch 1, beside one inference forward pass of the same model, and each pair's max |d| of the
normalised maps.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from cam_studio.benchmarks.reference import SplitModel, torchcam_display
from cam_studio.data.examples import example_image
from cam_studio.evaluation.timing import timed
from cams import wrap
from cams.backbones import load_backbone
from cams.engine import NOISE_SEED, explain


def pair(ours: Callable[[], np.ndarray], theirs: Callable[[], np.ndarray], forward: Callable,
         device: torch.device, repeats: int) -> dict:
    """Median times of ours, theirs and one forward pass, taken in turn, and their maps' max |d|."""
    ours_map, theirs_map = ours(), theirs()  # warm-up, and the maps compared
    times: dict[str, list[float]] = {"ours": [], "theirs": [], "forward": []}
    for _ in range(repeats):
        times["ours"].append(timed(ours, device))
        times["theirs"].append(timed(theirs, device))
        times["forward"].append(timed(forward, device))
    medians = {key: statistics.median(values) for key, values in times.items()}
    return {"ours_ms": medians["ours"], "theirs_ms": medians["theirs"],
            "forward_ms": medians["forward"], "ours_over_forward": medians["ours"] / medians["forward"],
            "speedup": medians["theirs"] / medians["ours"],
            "max_abs_difference": float(np.abs(ours_map - theirs_map).max())}


def bench_multipass(name: str, device: torch.device, repeats: int = 3) -> dict:
    from pytorch_grad_cam import SESS, RefineCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from torchcam.methods import SSCAM, LeGrad, SmoothGradCAMpp

    backbone = load_backbone(name, device=device)
    inputs = backbone.preprocess(example_image("chelsea")).to(device)
    size = tuple(inputs.shape[-2:])
    target = explain(backbone, inputs, ["GradCAM"]).targets.tolist()
    split = SplitModel(backbone.model)
    modules = dict(backbone.model.named_modules())

    def forward(model=backbone.model, batch=inputs) -> None:
        with torch.inference_mode():
            model(batch)

    def ours(method: str, model=backbone, batch=inputs) -> Callable[[], np.ndarray]:
        return lambda: explain(model, batch, [method]).maps[method].cpu().numpy()

    def smooth_theirs() -> np.ndarray:
        with SmoothGradCAMpp(split, target_layer="features", input_shape=(3, *size)) as cam:
            split(inputs)
            torch.manual_seed(NOISE_SEED)
            return torchcam_display(cam(target)[0].cpu(), size).numpy()

    def sess_theirs() -> np.ndarray:
        with SESS(split, [split.features]) as cam:
            return cam(input_tensor=inputs, targets=[ClassifierOutputTarget(target[0])])

    def refine_theirs() -> np.ndarray:
        cam = RefineCAM(split, [split.features, modules["blocks.4"], modules["blocks.2"]])
        return cam(input_tensor=inputs, targets=[ClassifierOutputTarget(target[0])])

    small = F.interpolate(inputs, size=(64, 64), mode="bilinear", align_corners=False)
    small_target = explain(backbone, small, ["GradCAM"]).targets.tolist()

    def sscam_theirs() -> np.ndarray:
        with SSCAM(split, target_layer="features", input_shape=(3, 64, 64)) as cam:
            scores = split(small)
            torch.manual_seed(NOISE_SEED)
            return torchcam_display(cam(small_target, scores)[0].cpu(), (64, 64)).numpy()

    import torchvision
    torch.manual_seed(0)
    vit = torchvision.models.vit_b_16().eval()
    with torch.no_grad():  # torchvision starts the head at zero: every gradient would be 0
        vit.heads.head.weight.normal_(0, 0.02)
    vit = vit.to(device)
    vit_backbone = wrap(vit, layer="encoder.layers.encoder_layer_11.ln_1", input_size=224,
                        device=str(device))
    vit_target = explain(vit_backbone, inputs, ["GradCAM"]).targets.tolist()

    def legrad_theirs() -> np.ndarray:
        with LeGrad(vit, list(vit.encoder.layers)[-4:]) as cam:
            vit(inputs)
            return torchcam_display(cam(vit_target)[0].cpu(), size).numpy()

    return {
        "backbone": name, "batch": 1, "repeats": repeats,
        "SmoothGradCAM++ vs torchcam": pair(ours("SmoothGradCAM++"), smooth_theirs, forward,
                                            device, repeats),
        "SESS vs grad-cam": pair(ours("SESS"), sess_theirs, forward, device, repeats),
        "RefineCAM vs grad-cam": pair(ours("RefineCAM"), refine_theirs, forward, device,
                                      repeats),
        "SS-CAM vs torchcam (64×64 input)": pair(
            ours("SS-CAM", batch=small), sscam_theirs,
            lambda: forward(batch=small), device, 1),
        "LeGrad vs torchcam (random ViT-B/16)": pair(
            ours("LeGrad", model=vit_backbone), legrad_theirs,
            lambda: forward(model=vit), device, repeats),
    }
