"""Our maps against the reference implementation, the ``grad-cam`` package (pytorch-grad-cam 1.5.x).

Each reference map is computed by grad-cam itself: its own hooks, one full forward and backward
per method, numpy normalization and cv2 resizing. DiffGradCAM(++) there is GradCAM(++) with a
target callable that returns the difference logit, written out from its definition
(``benchmarks.reference.DifferenceTarget``), not from our cotangents.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

from cam_studio.benchmarks.reference import reference_classes, reference_map, torchcam_display
from cams import explain

TOLERANCE = 1e-3


REFERENCES = [name for name in reference_classes() if name != "EigenCAM"]


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
    theirs = reference_map(backbone, inputs, "EigenCAM", [])
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
    theirs = reference_map(resnet_random, inputs, "ScoreCAM", [3], scorecam_batch_size=64)
    assert np.abs(ours.maps["ScoreCAM"].numpy() - theirs).max() <= TOLERANCE
    assert calls and calls[-1][0] == calls[-1][1] <= resnet_random.feature_shape[0]


@pytest.mark.parametrize("target", [None, [281, 967]])
def test_finercam_matches_grad_cams_own(lite0, chelsea, coffee, target):
    """FinerCAM against grad-cam's FinerCAM class (GradCAM base, α = 1, the 2nd to 4th nearest
    classes, its softmax weights differentiated too), for the top-1 and for explicit classes;
    it is not GradCAM."""
    from cam_studio.benchmarks.reference import finer_reference
    inputs = photo_batch(lite0, [chelsea, coffee], (224, 224))
    ours = explain(lite0, inputs, methods=["GradCAM", "FinerCAM"], target=target)
    theirs = finer_reference(lite0, inputs, ours.targets.tolist())
    assert np.abs(ours.maps["FinerCAM"].numpy() - theirs).max() <= TOLERANCE
    assert (ours.maps["FinerCAM"] - ours.maps["GradCAM"]).abs().max() > 0.5


@pytest.mark.parametrize("fixture", ["lite0", "resnet_random"])
def test_torchcam_agrees_where_its_maths_is_ours(request, chelsea, coffee, fixture):
    """torchcam 0.5.0 (the other anchor) on the maps it shares with grad-cam: GradCAM and
    XGradCAM equal ours; its GradCAM++ is the closed form with α = g² (its division of α happens
    on a copy of the masked gradients), written out here by hand, not ours."""
    from cam_studio.benchmarks.reference import SplitModel, torchcam_map
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], (224, 224))
    ours = explain(backbone, inputs, methods=["GradCAM", "GradCAM++", "XGradCAM"])
    targets = ours.targets.tolist()
    for method in ("GradCAM", "XGradCAM"):
        theirs = torchcam_map(backbone, inputs, method, targets)
        assert (theirs - ours.maps[method]).abs().max() <= TOLERANCE, method
    model = SplitModel(backbone.model)
    features = model.features(inputs).detach().requires_grad_()
    scores = model.model.forward_head(features)
    gradient, = torch.autograd.grad(scores[range(len(targets)), targets].sum(), features)
    weights = (gradient.pow(2) * gradient.relu()).sum((2, 3), keepdim=True)
    by_hand = F.interpolate((weights * features).sum(1, keepdim=True).relu(), size=(224, 224),
                            mode="bilinear", align_corners=False)[:, 0].detach()
    low, high = by_hand.amin((1, 2), keepdim=True), by_hand.amax((1, 2), keepdim=True)
    by_hand = (by_hand - low) / (high - low)
    theirs = torchcam_map(backbone, inputs, "GradCAM++", targets)
    assert (theirs - by_hand).abs().max() <= TOLERANCE


@pytest.mark.parametrize("method", ["GradCAM", "GradCAM++", "HiResCAM", "MeanDiffGradCAM"])
def test_a_wrapped_module_matches_grad_cam_at_a_non_timm_layer(chelsea, coffee, method):
    """A researcher's own nn.Module (torchvision's ResNet-18, random, 5 classes) read at
    ``layer4`` through ``cams.wrap``, against grad-cam hooking ``model.layer4`` itself; and the
    same model behind a transformers-style output (``.logits``) gives the same maps."""
    from dataclasses import dataclass

    import torchvision

    from cams import wrap
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5)
    backbone = wrap(model, layer="layer4", input_size=160)
    inputs = torch.cat([backbone.preprocess(chelsea), backbone.preprocess(coffee)])
    ours = explain(backbone, inputs, methods=[method])
    theirs = reference_map(backbone, inputs, method, ours.targets.tolist())
    assert np.abs(ours.maps[method].numpy() - theirs).max() <= TOLERANCE

    @dataclass
    class Output:  # what a transformers classifier returns
        logits: torch.Tensor

    class HubStyle(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values):
            return Output(self.inner(pixel_values))

    wrapped = wrap(HubStyle(model), layer="inner.layer4", input_size=160)
    again = explain(wrapped, inputs, methods=[method])
    assert torch.allclose(again.maps[method], ours.maps[method], atol=1e-6)


class TinyClip(torch.nn.Module):
    """A small random-init CLIP-style model: a CNN image encoder and a bag-of-characters text
    encoder into one 16-d space, with CLIP's API (encode_image, encode_text, logit_scale)."""

    def __init__(self):
        super().__init__()
        self.visual = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 16))
        self.text = torch.nn.EmbeddingBag(128, 16)
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.0))

    def encode_image(self, pixels):
        return self.visual(pixels)

    def encode_text(self, tokens):
        return self.text(tokens)


def characters(prompts):
    """The test's tokenizer: each prompt's characters, padded with spaces to one length."""
    width = max(map(len, prompts))
    return torch.tensor([[ord(c) % 128 for c in prompt.ljust(width)] for prompt in prompts])


@pytest.mark.parametrize("method", ["GradCAM", "HiResCAM", "MeanDiffGradCAM"])
def test_a_zero_shot_clip_classifier_matches_grad_cam(chelsea, coffee, method):
    """CLIP-style zero-shot: the logits are the scaled cosine of image and prompt embeddings
    (by hand here), and the maps match grad-cam hooking the image encoder's layer itself."""
    from cams import zero_shot
    torch.manual_seed(0)
    clip = TinyClip()
    classes = ["cat", "cup of coffee", "astronaut"]
    backbone = zero_shot(clip, classes, characters, layer="visual.2", input_size=64)
    assert backbone.class_names == classes
    inputs = torch.cat([backbone.preprocess(chelsea), backbone.preprocess(coffee)])
    ours = explain(backbone, inputs, methods=[method])
    with torch.no_grad():
        text = F.normalize(clip.encode_text(characters([f"a photo of a {c}." for c in classes])), dim=-1)
        image = F.normalize(clip.encode_image(inputs), dim=-1)
        expected = clip.logit_scale.exp() * image @ text.T
    assert torch.allclose(ours.logits, expected, atol=1e-5)
    theirs = reference_map(backbone, inputs, method, ours.targets.tolist())
    assert np.abs(ours.maps[method].numpy() - theirs).max() <= TOLERANCE


ANCHOR_TOLERANCE = 1e-4  # the issue's bar for the anchors' maps, on normalised maps


def grad_cam_meta_map(cam_class, backbone, inputs, targets, finer=()):
    """grad-cam's map of ``cam_class`` hooked at the features seam (and at the modules named in
    ``finer``), its hooks removed afterwards (the fixtures' models are shared)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from cam_studio.benchmarks.reference import SplitModel
    model = SplitModel(backbone.model)
    modules = dict(backbone.model.named_modules())
    cam = cam_class(model, [model.features, *(modules[name] for name in finer)])
    try:
        return cam(input_tensor=inputs, targets=[ClassifierOutputTarget(c) for c in targets])
    finally:
        for base in getattr(cam, "base_cam_per_layer", [getattr(cam, "base_cam", cam)]):
            base.activations_and_grads.release()


@pytest.mark.parametrize(("fixture", "size", "target"), CASES)
def test_the_anchors_other_maps_match_grad_cam(request, chelsea, coffee, fixture, size, target):
    """LayerCAM, GradCAMElementWise, FEM, KPCA-CAM (scikit-learn's KernelPCA inside, its sign
    rule too) and ShapleyCAM (its Hessian-vector product) against grad-cam 1.5.7's own classes; EigenGradCAM
    up to the SVD's sign (as EigenCAM); RandomCAM against grad-cam's pipeline given our seeded
    channel weights (grad-cam draws unseeded ones), and those weights by hand."""
    from pytorch_grad_cam import EigenGradCAM, RandomCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from cam_studio.benchmarks.reference import SplitModel
    from cams.methods import RANDOMCAM_SEED
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], size)
    methods = ["LayerCAM", "GradCAMElementWise", "FEM", "KPCA-CAM", "ShapleyCAM", "EigenGradCAM",
               "RandomCAM"]
    ours = explain(backbone, inputs, methods=methods, target=target)
    targets = ours.targets.tolist()
    for method in ("LayerCAM", "GradCAMElementWise", "FEM", "KPCA-CAM", "ShapleyCAM"):
        theirs = reference_map(backbone, inputs, method, targets)
        error = np.abs(ours.maps[method].numpy() - theirs).max()
        assert error <= ANCHOR_TOLERANCE, f"{method} on {fixture}: max |ours − grad-cam| = {error}"
        assert theirs.max() > 0.99, f"{method} reference map is degenerate"
    # EigenGradCAM: grad-cam's map, or grad-cam's with the projection's other sign.
    model = SplitModel(backbone.model)
    wanted = [ClassifierOutputTarget(c) for c in targets]

    class Negated(EigenGradCAM):
        def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads,
                          eigen_smooth):
            return -super().get_cam_image(input_tensor, target_layer, target_category,
                                          activations, grads, eigen_smooth)

    both = []
    for cam_class in (EigenGradCAM, Negated):
        with cam_class(model, [model.features]) as cam:
            both.append(cam(input_tensor=inputs, targets=wanted))
    for index in range(len(inputs)):
        error = min(np.abs(ours.maps["EigenGradCAM"][index].numpy() - theirs[index]).max()
                    for theirs in both)
        assert error <= ANCHOR_TOLERANCE, f"EigenGradCAM on {fixture}: {error}"
    # RandomCAM: grad-cam's pipeline given our seeded channel weights, drawn here by hand.
    generator = torch.Generator().manual_seed(RANDOMCAM_SEED)
    channels = backbone.feature_shape[0]
    weights = (torch.rand(channels, generator=generator, dtype=torch.float64) * 2 - 1).numpy()

    class Seeded(RandomCAM):
        def get_cam_weights(self, input_tensor, target_layer, target_category, activations,
                            grads):
            return np.tile(weights, (activations.shape[0], 1))

    with Seeded(model, [model.features]) as cam:
        theirs = cam(input_tensor=inputs, targets=wanted)
    assert np.abs(ours.maps["RandomCAM"].numpy() - theirs).max() <= ANCHOR_TOLERANCE


TARGETED = ["LayerCAM · MeanDiff", "HiResCAM · MaxDiff", "GradCAMElementWise · LSEDiff",
            "XGradCAM · MeanDiff", "GradCAM++ · Finer"]


@pytest.mark.parametrize("fixture", ["lite0", "resnet_random"])
def test_the_target_as_a_choice_matches_grad_cam_with_a_difference_target(request, chelsea,
                                                                        coffee, fixture):
    """Every gradient method with the Mean / Max / LSE difference: grad-cam's class of the method
    given the difference logit written out (DifferenceTarget); the papers' named variants keep
    their names, and the Finer target is FinerCAM's explained scalar under another method."""
    from cams.methods import METHODS, method_row, targeted_name
    assert targeted_name("GradCAM", "MeanDiff") == "MeanDiffGradCAM"
    assert targeted_name("GradCAM++", "LSEDiff") == "LSEDiffGradCAM++"
    assert targeted_name("GradCAM", "Finer") == "FinerCAM"
    assert targeted_name("LayerCAM", "MaxDiff") == "LayerCAM · MaxDiff"
    assert method_row("GradCAM++ · Finer").gradient == METHODS["FinerCAM"].gradient
    assert method_row("EigenCAM · MeanDiff") is None  # no gradient: no target to choose
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], (192, 160))
    ours = explain(backbone, inputs, methods=[*TARGETED, "LayerCAM"])
    assert list(ours.maps)[-len(TARGETED):] == TARGETED  # after the table's, as asked
    for method in TARGETED[:-1]:
        theirs = reference_map(backbone, inputs, method, ours.targets.tolist())
        error = np.abs(ours.maps[method].numpy() - theirs).max()
        assert error <= ANCHOR_TOLERANCE, f"{method} on {fixture}: {error}"


def test_an_unknown_target_says_which_there_are(lite0, chelsea):
    from cams.errors import UserInputError
    with pytest.raises(UserInputError, match=r"METHOD · TARGET \(TARGET one of MeanDiff, MaxDiff"):
        explain(lite0, [chelsea], ["LayerCAM · Median"])


@pytest.mark.parametrize(("fixture", "size"), [("lite0", (224, 224)), ("resnet_random", (160, 128)),
                                               ("convnext_random", (128, 160))])
def test_ablationcam_matches_grad_cam(request, chelsea, coffee, fixture, size):
    """AblationCAM against grad-cam 1.5.7's (its ablation value included: 0 after a ReLU, the
    smallest activation − 1e7 for ConvNeXt's signed features), at the features seam."""
    from pytorch_grad_cam import AblationCAM
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], size)
    ours = explain(backbone, inputs, methods=["AblationCAM"])
    theirs = grad_cam_meta_map(AblationCAM, backbone, inputs, ours.targets.tolist())
    assert np.abs(ours.maps["AblationCAM"].numpy() - theirs).max() <= ANCHOR_TOLERANCE


def test_ablationcam_at_a_named_module_matches_grad_cam(chelsea):
    """A wrapped torchvision ResNet read at ``layer4``: the ablated activations replace the
    module's output by a hook, as grad-cam's ablation layer replaces the module."""
    import torchvision
    from pytorch_grad_cam import AblationCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from cams import wrap
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5)
    backbone = wrap(model, layer="layer4", input_size=96)
    inputs = backbone.preprocess(chelsea)
    ours = explain(backbone, inputs, methods=["AblationCAM"])
    with AblationCAM(model, [model.layer4], batch_size=64) as cam:
        theirs = cam(input_tensor=inputs,
                     targets=[ClassifierOutputTarget(c) for c in ours.targets.tolist()])
    assert np.abs(ours.maps["AblationCAM"].numpy() - theirs).max() <= ANCHOR_TOLERANCE


def small_cnn():
    """A small random CNN (two convolutions, GAP → Linear, 4 classes), wrapped at its last ReLU."""
    from cams import wrap
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 12, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(12, 4))
    return model, wrap(model, layer="3", input_size=64)


def test_iscam_matches_torchcam_on_a_small_model(chelsea):
    """IS-CAM against torchcam 0.5.0's ISCAM (its 10 integration steps, its masks: normalised at
    the layer, then upsampled) on a small CNN read at its last convolution."""
    from torchcam.methods import ISCAM
    model, backbone = small_cnn()
    inputs = backbone.preprocess(chelsea)
    ours = explain(backbone, inputs, methods=["IS-CAM"])
    target = int(ours.targets[0])
    with ISCAM(model, target_layer="3", input_shape=(3, 64, 64)) as extractor:
        scores = model(inputs)
        theirs = torchcam_display(extractor(target, scores)[0], (64, 64))
    assert (ours.maps["IS-CAM"] - theirs).abs().max() <= ANCHOR_TOLERANCE


@pytest.mark.parametrize(("fixture", "size"), [("lite0", (224, 224)), ("resnet_random", (160, 128))])
def test_smoothgradcam_pp_matches_torchcam(request, chelsea, coffee, fixture, size):
    """SmoothGradCAM++ against torchcam 0.5.0's SmoothGradCAMpp (4 noisy copies, σ 0.3), for
    each image its noise drawn from torch's global generator seeded as ours (ours draws each
    image's noise alone, so that its map does not depend on the batch): a real Lite0 on two
    photos, and a random ResNet at a non-square size, hooked at the features seam."""
    from torchcam.methods import SmoothGradCAMpp

    from cam_studio.benchmarks.reference import SplitModel
    from cams.engine import NOISE_SEED
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], size)
    ours = explain(backbone, inputs, methods=["SmoothGradCAM++"])
    model = SplitModel(backbone.model)
    theirs = []
    with SmoothGradCAMpp(model, target_layer="features", input_shape=(3, *size)) as extractor:
        for index, target in enumerate(ours.targets.tolist()):
            model(inputs[index:index + 1])
            torch.manual_seed(NOISE_SEED)
            theirs.append(extractor(target)[0])
    theirs = torchcam_display(torch.cat(theirs), size)
    error = (ours.maps["SmoothGradCAM++"] - theirs).abs().max()
    assert error <= ANCHOR_TOLERANCE, f"SmoothGradCAM++ on {fixture}: {error}"


def test_sess_matches_grad_cam(resnet_random, chelsea, coffee):
    """SESS against grad-cam 1.5.7's (GradCAM of every patch of 12 scales, score-weighted,
    pasted back, averaged, blurred) on a non-square input, hooked at the features seam."""
    from pytorch_grad_cam import SESS
    inputs = photo_batch(resnet_random, [chelsea, coffee], (64, 96))
    ours = explain(resnet_random, inputs, methods=["SESS"])
    theirs = grad_cam_meta_map(SESS, resnet_random, inputs, ours.targets.tolist())
    assert np.abs(ours.maps["SESS"].numpy() - theirs).max() <= ANCHOR_TOLERANCE


@pytest.mark.parametrize(("fixture", "finer"), [("lite0", ["blocks.4", "blocks.2"]),
                                                ("resnet_random", ["layer3.1", "layer2.1"]),
                                                ("convnext_random", ["stages.2", "stages.1"])])
def test_refinecam_matches_grad_cam(request, chelsea, coffee, fixture, finer):
    """RefineCAM against grad-cam 1.5.7's, given the layers ours reads: the features seam and the
    last block at each of the two next finer resolutions (written out here per network)."""
    from pytorch_grad_cam import RefineCAM
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], (160, 192))
    ours = explain(backbone, inputs, methods=["RefineCAM"])
    theirs = grad_cam_meta_map(RefineCAM, backbone, inputs, ours.targets.tolist(), finer)
    error = np.abs(ours.maps["RefineCAM"].numpy() - theirs).max()
    assert error <= ANCHOR_TOLERANCE, f"RefineCAM on {fixture}: {error}"


def test_sscam_matches_torchcam_on_a_small_model(chelsea, coffee):
    """SS-CAM against torchcam 0.5.0's SSCAM (35 noise draws of σ 2 on IS-CAM's masks, each
    image's drawn from the generator seeded as ours) on a small CNN read at its last
    convolution."""
    from torchcam.methods import SSCAM

    from cams.engine import NOISE_SEED
    model, backbone = small_cnn()
    inputs = torch.cat([backbone.preprocess(chelsea), backbone.preprocess(coffee)])
    ours = explain(backbone, inputs, methods=["SS-CAM"])
    theirs = []
    with SSCAM(model, target_layer="3", input_shape=(3, 64, 64)) as extractor:
        for index, target in enumerate(ours.targets.tolist()):
            scores = model(inputs[index:index + 1])
            torch.manual_seed(NOISE_SEED)
            theirs.append(extractor(target, scores)[0])
    theirs = torchcam_display(torch.cat(theirs), (64, 64))
    assert (ours.maps["SS-CAM"] - theirs).abs().max() <= ANCHOR_TOLERANCE
    # Each image's draws are its own: alone, it has the same map as beside another.
    alone = explain(backbone, inputs[1:], methods=["SS-CAM"]).maps["SS-CAM"]
    torch.testing.assert_close(alone[0], ours.maps["SS-CAM"][1], atol=1e-6, rtol=0)


def test_smoothgradcam_pp_of_an_image_does_not_depend_on_its_batch(resnet_random, chelsea, coffee):
    inputs = photo_batch(resnet_random, [chelsea, coffee], (96, 96))
    both = explain(resnet_random, inputs, methods=["SmoothGradCAM++"]).maps["SmoothGradCAM++"]
    alone = explain(resnet_random, inputs[1:], methods=["SmoothGradCAM++"]).maps["SmoothGradCAM++"]
    torch.testing.assert_close(alone[0], both[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("fixture", "size"), [("lite0", (224, 224)), ("resnet_random", (160, 128)),
                                               ("convnext_random", (128, 160))])
def test_fullgrad_matches_grad_cam(request, chelsea, coffee, fixture, size):
    """FullGrad against grad-cam 1.5.7's (its choice of bias layers too: exactly Conv2d and
    BatchNorm2d with a bias — none in Lite0, whose norms are timm's BatchNormAct2d, 20 in the
    ResNet-18, 40 in the ConvNeXt)."""
    from pytorch_grad_cam import FullGrad
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from cams.engine import bias_layers
    backbone = request.getfixturevalue(fixture)
    inputs = photo_batch(backbone, [chelsea, coffee], size).contiguous()
    ours = explain(backbone, inputs, methods=["FullGrad"])
    with FullGrad(backbone.model, []) as cam:
        theirs = cam(input_tensor=inputs,
                     targets=[ClassifierOutputTarget(c) for c in ours.targets.tolist()])
    assert np.abs(ours.maps["FullGrad"].numpy() - theirs).max() <= ANCHOR_TOLERANCE
    assert len(bias_layers(backbone.model)) == {"lite0": 0, "resnet_random": 20,
                                                 "convnext_random": 40}[fixture]


def test_maps_of_two_resolutions_in_one_explanation(lite0, chelsea):
    """FullGrad's map is at the input's size, the others at the layer's: one explain gives each
    the same map as alone, in the table's order."""
    both = explain(lite0, [chelsea], ["GradCAM", "FullGrad", "EigenCAM"])
    assert list(both.maps) == ["GradCAM", "EigenCAM", "FullGrad"]
    for name in both.maps:
        alone = explain(lite0, [chelsea], [name]).maps[name]
        assert torch.allclose(both.maps[name], alone, atol=1e-6), name
