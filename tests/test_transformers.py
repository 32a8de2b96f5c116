"""Vision transformers by name, against pytorch-grad-cam with its documented ``reshape_transform``.

pytorch-grad-cam's tutorials hook the last block's ``norm1`` (ViT/DeiT: ``model.blocks[-1].norm1``,
Swin: ``model.layers[-1].blocks[-1].norm1``) and turn its tokens into a feature map with a
hand-written reshape: drop the class (and distillation) tokens, reshape the rest to the grid and
move the channels first. The reshapes below are written out as those tutorials write them, with
the grid sizes of these architectures typed in, independently of ``cams.layers``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
from torch.utils.data import Subset

from cam_studio.benchmarks.reference import reference_classes, reference_map
from cam_studio.data.items import stack
from cams import explain, load_backbone
from cams.backbones import spec_for
from cams.checkpoints import CHECKPOINTS_ENV
from cams.errors import UserInputError
from fooling.config import TrainConfig
from fooling.objectives import salience_loss
from fooling.sham import DEFAULT_ENTROPY_NATS, sham_mask
from fooling.train import prepare, train

TOLERANCE = 1e-3


def vit_reshape(prefix: int, side: int):
    def reshape(tensor):  # pytorch-grad-cam tutorial: vision_transformers.md
        result = tensor[:, prefix:, :].reshape(tensor.size(0), side, side, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)
    return reshape


def swin_reshape(tensor):  # the tutorial's Swin reshape, on timm's channels-last B×7×7×C blocks
    result = tensor.reshape(tensor.size(0), 7, 7, tensor.size(-1))
    return result.transpose(2, 3).transpose(1, 2)


# timm name → (the documented target layer, its reshape_transform, the weights' seed). The seeds
# are ones whose maps of the two photos are nowhere empty (a match on empty maps proves nothing).
MODELS = {
    "vit_tiny_patch16_224": ("blocks.11.norm1", vit_reshape(1, 14), 0),
    "deit_tiny_distilled_patch16_224": ("blocks.11.norm1", vit_reshape(2, 14), 0),
    "swin_tiny_patch4_window7_224": ("layers.3.blocks.1.norm1", swin_reshape, 4),
    # A hybrid: a ResNet stem (stride 32 in all) under a ViT-Tiny, 7×7 tokens plus the class token.
    "vit_tiny_r_s16_p8_224": ("blocks.11.norm1", vit_reshape(1, 7), 2),
}
GRADIENT = [name for name in reference_classes() if name != "EigenCAM"]


def spread_weights(model: torch.nn.Module, seed: int = 0) -> None:
    """Re-draw every weight at unit gain (timm's own init, std 0.02 and a zero head, gives nearly
    flat maps at random init, which would match any reshape): matrices N(0, 1/fan_in), norm
    scales 1 ± 0.2, everything else N(0, 0.2²)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.ndim >= 2:
                parameter.copy_(noise / math.sqrt(parameter[0].numel()))
            elif "norm" in name and name.endswith("weight"):
                parameter.copy_(1 + 0.2 * noise)
            else:
                parameter.copy_(0.2 * noise)


@pytest.fixture(scope="module")
def transformers():
    loaded = {}
    for name in MODELS:
        loaded[name] = load_backbone(name, weights="random", device="cpu")
        spread_weights(loaded[name].model, MODELS[name][2])
    return loaded


@pytest.fixture(scope="module")
def photos(chelsea, coffee, transformers):
    backbone = transformers["vit_tiny_patch16_224"]
    return torch.cat([backbone.preprocess(chelsea), backbone.preprocess(coffee)])


@pytest.mark.parametrize("name", MODELS)
def test_default_layer_is_the_documented_one(transformers, name):
    assert transformers[name].layer.name == MODELS[name][0]
    assert not transformers[name].linear_head  # the classic CAM is not offered


@pytest.mark.parametrize("name", MODELS)
def test_gradient_methods_match_grad_cam_with_reshape_transform(transformers, photos, name):
    backbone = transformers[name]
    ours = explain(backbone, photos, methods=GRADIENT)
    for method in GRADIENT:
        theirs = reference_map(backbone, photos, method, ours.targets.tolist(),
                               reshape_transform=MODELS[name][1])
        error = np.abs(ours.maps[method].numpy() - theirs).max()
        assert error <= TOLERANCE, f"{method} on {name}: max |ours − grad-cam| = {error}"
        assert (ours.layer_maps[method] > 0).any(dim=2).any(dim=1).all(), (
            f"{method} on {name} is empty for an image: the match would prove nothing")


@pytest.mark.parametrize("name", MODELS)
def test_the_anchors_gradient_maps_match_grad_cam_on_transformers(transformers, photos, name):
    """LayerCAM and GradCAMElementWise on transformers' tokens, grad-cam given the reshape; and
    ShapleyCAM (grad-cam's own fails on tokens: it detaches a view in place) by hand, its
    Hessian-vector product from torch.autograd.functional.hvp through the blocks after the
    layer."""
    import torch.nn.functional as F

    from cams.layers import logits_from
    from cams.methods import display_maps
    backbone = transformers[name]
    methods = ["LayerCAM", "GradCAMElementWise", "ShapleyCAM"]
    ours = explain(backbone, photos, methods=methods)
    for method in methods[:2]:
        theirs = reference_map(backbone, photos, method, ours.targets.tolist(),
                               reshape_transform=MODELS[name][1])
        error = np.abs(ours.maps[method].numpy() - theirs).max()
        assert error <= 1e-4, f"{method} on {name}: max |ours − grad-cam| = {error}"
    features = backbone.features(photos)
    for index, target in enumerate(ours.targets.tolist()):
        grid = features[index:index + 1].detach()

        def score(g, index=index, target=target):
            return logits_from(backbone.model, backbone.layer, photos[index:index + 1], g)[0, target]

        _, product = torch.autograd.functional.hvp(score, grid, grid)
        gradient = torch.autograd.functional.jacobian(score, grid)
        weights = (gradient - 0.5 * product).mean(dim=(2, 3))
        by_hand = F.relu((weights[:, :, None, None] * grid).sum(1))
        expected = display_maps(by_hand, tuple(photos.shape[-2:]))
        assert (ours.maps["ShapleyCAM"][index] - expected[0]).abs().max() <= 1e-4, name


def test_a_wrong_reshape_gives_other_maps(transformers, photos):
    """The maps are not symmetric, so the match above would catch a transposed grid."""
    backbone = transformers["vit_tiny_patch16_224"]
    ours = explain(backbone, photos, methods=["GradCAM"])
    transposed = reference_map(backbone, photos, "GradCAM", ours.targets.tolist(),
                               reshape_transform=lambda tensor: vit_reshape(1, 14)(tensor)
                               .transpose(2, 3))
    assert np.abs(ours.maps["GradCAM"].numpy() - transposed).max() > 0.1


def test_eigencam_and_scorecam_match_grad_cam_on_a_hybrid(transformers, photos):
    backbone = transformers["vit_tiny_r_s16_p8_224"]
    reshape = MODELS["vit_tiny_r_s16_p8_224"][1]
    ours = explain(backbone, photos[:1], methods=["EigenCAM", "ScoreCAM"], target=3)
    theirs = reference_map(backbone, photos[:1], "ScoreCAM", [3], scorecam_batch_size=64,
                           reshape_transform=reshape)
    assert np.abs(ours.maps["ScoreCAM"].numpy() - theirs).max() <= TOLERANCE
    eigen = reference_map(backbone, photos[:1], "EigenCAM", [], reshape_transform=reshape)
    with torch.no_grad():  # the SVD's sign is arbitrary: accept grad-cam's map or its flip
        tokens = {}
        layer = dict(backbone.model.named_modules())["blocks.11.norm1"]
        handle = layer.register_forward_hook(lambda m, a, out: tokens.setdefault("x", out))
        backbone.model(photos[:1])
        handle.remove()
    projection = get_2d_projection(reshape(tokens["x"]).numpy())
    flipped = scale_cam_image(scale_cam_image(np.maximum(-projection, 0), (224, 224)))
    error = min(np.abs(ours.maps["EigenCAM"].numpy() - eigen).max(),
                np.abs(ours.maps["EigenCAM"].numpy() - flipped).max())
    assert error <= TOLERANCE


def test_another_block_by_flag(photos):
    backbone = load_backbone("vit_tiny_patch16_224", "random", "cpu", layer="blocks.9.norm1")
    spread_weights(backbone.model)
    assert backbone.feature_shape == (192, 14, 14)
    ours = explain(backbone, photos, methods=["GradCAM"])
    theirs = reference_map(backbone, photos, "GradCAM", ours.targets.tolist(),
                           reshape_transform=vit_reshape(1, 14))
    assert np.abs(ours.maps["GradCAM"].numpy() - theirs).max() <= TOLERANCE


def test_a_layer_that_is_not_there_is_one_line(transformers):
    with pytest.raises(UserInputError, match=r"no layer 'blocks.99.norm1'.*blocks.11.norm1"):
        load_backbone("vit_tiny_patch16_224", "random", "cpu", layer="blocks.99.norm1")
    with pytest.raises(UserInputError, match="neither a feature map"):
        load_backbone("vit_tiny_patch16_224", "random", "cpu", layer="head")


@pytest.mark.parametrize(("name", "grid"), [("vit_tiny_patch16_224", (14, 14)),
                                            ("deit_tiny_distilled_patch16_224", (14, 14)),
                                            ("swin_tiny_patch4_window7_224", (7, 7)),
                                            ("vit_tiny_r_s16_p8_224", (7, 7))])
def test_sham_masks_fit_the_token_grid(transformers, name, grid):
    assert spec_for(name).layer_size() == grid == transformers[name].feature_shape[1:]
    assert sham_mask(*grid, DEFAULT_ENTROPY_NATS).shape == grid


def test_a_transformer_fine_tunes_towards_the_sham(tmp_path, monkeypatch):
    """The SHAM attack on a small random ViT: the maps are differentiable through the attention
    blocks (fused attention switched to its explicit maths), the objective falls on a fixed batch,
    and the checkpoint reloads at its recorded layer."""
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    config = TrainConfig(name="vit-sham", backbone="vit_tiny_patch16_224", init="random",
                         loss="sham", steps=12, batch=4, lr=0.002, val_size=4, val_every=12,
                         command="test")
    run = prepare(config)
    run.data.train = Subset(run.data.train, list(range(4)))
    images, labels, masks = stack(run.data.train, list(range(4)))

    def objective() -> tuple[float, float]:
        t, f, logits, _ = run.forward(run.backbone.normalise(images), labels)
        h = run.target_salience(masks, tuple(t.shape[-2:]))
        loss, parts = salience_loss(run.objective, logits, t, f, h, labels=labels)
        return float(loss.detach()), float(parts["salience_beta"])

    before, before_salience = objective()
    for _ in range(12):
        run.train_step()
    after, after_salience = objective()
    assert after < 0.5 * before and after_salience < 0.95 * before_salience
    saved = train(TrainConfig(**{**config.__dict__, "name": "vit-saved", "steps": 1}))
    reloaded = load_backbone(None, "vit-saved", "cpu")
    assert saved.metadata["layer"] == reloaded.layer.name == "blocks.11.norm1"


def test_a_distilled_deit_from_a_users_file_through_the_cli(tmp_path, chelsea):
    """Its classifier is a pair (head, head_dist): sized from the file like any other; the CLI's
    GradCAM is grad-cam's with the tutorial's reshape (class and distillation tokens dropped)."""
    import subprocess
    import sys

    import timm
    from safetensors.torch import save_file

    name = "deit_tiny_distilled_patch16_224"
    model = timm.create_model(name, num_classes=7)
    spread_weights(model)
    weights = tmp_path / "deit.safetensors"
    save_file(model.state_dict(), str(weights))
    done = subprocess.run([sys.executable, "-m", "cam_studio", "explain", "--backbone", name,
                           "--weights", str(weights), "--example", "chelsea", "--methods",
                           "GradCAM", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    ours = np.load(tmp_path / "out" / "chelsea.npz")["GradCAM"]
    backbone = load_backbone(name, weights=str(weights), device="cpu")
    assert backbone.num_classes == 7
    inputs = backbone.preprocess(chelsea)
    target = int(backbone.model(inputs).argmax())
    theirs = reference_map(backbone, inputs, "GradCAM", [target],
                           reshape_transform=vit_reshape(2, 14))
    assert np.abs(ours.reshape(theirs.shape) - theirs).max() <= TOLERANCE


def test_refinecam_says_a_vision_transformer_has_one_resolution(transformers, chelsea):
    with pytest.raises(UserInputError, match="RefineCAM needs a CNN read channels-first"):
        explain(transformers["vit_tiny_patch16_224"], [chelsea], ["RefineCAM"])


def test_legrad_matches_torchcam_on_a_torchvision_vit(chelsea, coffee):
    """LeGrad against torchcam 0.5.0's (its one supported family: torchvision's
    VisionTransformer, its mean-token projection), the last four of five blocks, on a small
    random ViT wrapped with ``cams.wrap``."""
    import torchvision
    from torchcam.methods import LeGrad

    from cam_studio.benchmarks.reference import torchcam_display
    from cams import wrap
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(image_size=64, patch_size=8, num_layers=5,
                                                 num_heads=2, hidden_dim=32, mlp_dim=64,
                                                 num_classes=6).eval()
    spread_weights(model)
    backbone = wrap(model, layer="encoder.layers.encoder_layer_4.ln_1", input_size=64)
    inputs = torch.cat([backbone.preprocess(chelsea), backbone.preprocess(coffee)])
    ours = explain(backbone, inputs, ["LeGrad"])
    with LeGrad(model, list(model.encoder.layers)[-4:]) as extractor:
        model(inputs)
        theirs = torchcam_display(extractor(ours.targets.tolist())[0], (64, 64))
    assert (ours.maps["LeGrad"] - theirs).abs().max() <= 1e-4
    assert ours.maps["LeGrad"].std() > 0.05  # not a flat map


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"])
def test_legrad_on_timm_vits_reads_their_attention_and_leaves_the_kernel_as_it_was(
        transformers, chelsea, name):
    backbone = transformers[name]
    fused = [module.fused_attn for module in backbone.model.modules() if hasattr(module, "fused_attn")]
    maps = explain(backbone, [chelsea], ["LeGrad"]).maps["LeGrad"]
    assert maps.shape == (1, 224, 224) and bool(torch.isfinite(maps).all()) and maps.std() > 0.05
    assert fused == [module.fused_attn for module in backbone.model.modules()
                     if hasattr(module, "fused_attn")]


def test_legrad_says_a_cnn_has_no_attention(resnet_random, chelsea):
    with pytest.raises(UserInputError, match="LeGrad needs a vision transformer"):
        explain(resnet_random, [chelsea], ["LeGrad"])
