"""Models a researcher already has: torchvision architectures, hf-hub repositories, their own
weights files with any number of classes, class names and preprocessing; one-line errors for what
does not fit. No network: the hub repository is a local Hugging Face cache built here, and the
torchvision maps are checked against pytorch-grad-cam hooked on the documented layer."""

from __future__ import annotations

import json

import huggingface_hub
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cam_studio.benchmarks.reference import reference_map
from cam_studio.commands import main as cams_main
from cams import explain, load_backbone
from cams.backbones import spec_for
from cams.errors import UserInputError

TOLERANCE = 1e-3


@pytest.fixture()
def offline_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache and no network."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("CAMS_OFFLINE", "1")
    return tmp_path / "hub"


def torchvision_file(tmp_path, classes: int, suffix: str = ".pth"):
    """A torchvision ResNet-18 with ``classes`` outputs, saved as a plain state dict."""
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=classes)
    path = tmp_path / f"resnet18-{classes}{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), path)
    else:
        save_file(model.state_dict(), str(path))
    return model, path


def test_torchvision_weights_with_five_classes_match_grad_cam_at_layer4(tmp_path, chelsea):
    model, path = torchvision_file(tmp_path, 5)
    names = ["ant", "bee", "cat", "dog", "eel"]
    backbone = load_backbone("torchvision:resnet18", path, "cpu", class_names=names)
    assert backbone.num_classes == 5 and backbone.class_names == names
    assert backbone.layer.name == "layer4"  # pytorch-grad-cam's documented ResNet layer
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  backbone.model.state_dict().values()))
    inputs = backbone.preprocess(chelsea)
    assert inputs.shape == (1, 3, 224, 224)  # torchvision's transforms: 256 px, centre 224
    ours = explain(backbone, inputs, methods=["GradCAM", "MeanDiffGradCAM", "HiResCAM"])
    for method in ours.maps:
        theirs = reference_map(backbone, inputs, method, ours.targets.tolist())
        assert np.abs(ours.maps[method].numpy() - theirs).max() <= TOLERANCE
    assert "CAM" not in ours.maps  # GAP → Linear is only detected at a timm model's seam


def test_a_timm_safetensors_with_three_classes_and_a_names_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "vit3.safetensors"
    import timm
    save_file(timm.create_model("vit_tiny_patch16_224", num_classes=3).state_dict(), str(path))
    names_file = tmp_path / "names.txt"
    names_file.write_text("benign\nmalignant\nunknown\n")
    out = tmp_path / "out"
    code = cams_main(["explain", "--example", "chelsea", "--backbone", "vit_tiny_patch16_224",
                      "--weights", str(path), "--class-names", str(names_file), "--methods",
                      "GradCAM,MeanDiffGradCAM", "--out", str(out), "--device", "cpu"])
    assert code == 0
    saved = np.load(out / "chelsea.npz")
    assert saved["logits"].shape == (3,) and saved["GradCAM"].shape == (224, 224)


def test_preprocessing_from_flags(tmp_path, chelsea):
    _, path = torchvision_file(tmp_path, 2, ".safetensors")
    backbone = load_backbone("torchvision:resnet18", path, "cpu", data_config={
        "input_size": (3, 160, 160), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)})
    inputs = backbone.preprocess(chelsea)
    assert inputs.shape == (1, 3, 160, 160) and backbone.feature_shape == (512, 5, 5)
    plain = load_backbone("torchvision:resnet18", path, "cpu", data_config={
        "input_size": (3, 160, 160), "mean": (0, 0, 0), "std": (1, 1, 1)}).preprocess(chelsea)
    assert torch.allclose(inputs, (plain - 0.5) / 0.25, atol=1e-5)


def hub_repository(cache, repo: str, classes: int):
    """A timm repository in the local Hugging Face cache, laid out as huggingface_hub does:
    refs/main names a snapshot holding config.json and model.safetensors."""
    import timm
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=classes)
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    labels = [f"kind {index}" for index in range(classes)]
    (snapshot / "config.json").write_text(json.dumps({
        "architecture": "resnet18", "num_classes": classes, "label_names": labels,
        "pretrained_cfg": {"input_size": [3, 128, 128], "mean": [0.5, 0.5, 0.5],
                           "std": [0.5, 0.5, 0.5], "crop_pct": 1.0, "interpolation": "bilinear",
                           "classifier": "fc"}}))
    save_file(model.state_dict(), str(snapshot / "model.safetensors"))
    return model, labels


def test_an_hf_hub_repository_from_the_local_cache(offline_cache, chelsea):
    model, labels = hub_repository(offline_cache, "lab/skin-resnet", 4)
    backbone = load_backbone("hf-hub:lab/skin-resnet", device="cpu")
    assert backbone.class_names == labels and backbone.input_size == (128, 128)
    assert backbone.data_config["mean"] == (0.5, 0.5, 0.5)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  backbone.model.state_dict().values()))
    assert spec_for("hf-hub:lab/skin-resnet").layer_size() == (4, 4)
    assert backbone.linear_head  # a timm ResNet: GAP → Linear after its features
    result = explain(backbone, [chelsea], methods=["CAM", "GradCAM"])
    assert result.maps["GradCAM"].shape == (1, 128, 128)


@pytest.mark.parametrize(("name", "weights", "message"), [
    ("hf-hub:lab/not-cached", None, "not in the Hugging Face cache.*HF_HUB_CACHE"),
    ("torchvision:resnet18", None, "no weights for torchvision:resnet18 offline: give the weights"),
    ("torchvision:resnet9000", "random", "torchvision has no classification model 'resnet9000'"),
    ("not_a_model", "random", "unknown backbone 'not_a_model'.*torchvision:NAME"),
])
def test_what_cannot_be_loaded_says_what_to_pass(offline_cache, name, weights, message):
    with pytest.raises(UserInputError, match=message):
        load_backbone(name, weights, "cpu")


def test_weights_that_do_not_fit_say_so(tmp_path):
    _, path = torchvision_file(tmp_path, 5)
    with pytest.raises(UserInputError, match="does not fit backbone torchvision:vgg11"):
        load_backbone("torchvision:vgg11", path, "cpu")
    with pytest.raises(UserInputError, match="3 class names given for a model with 5 classes"):
        load_backbone("torchvision:resnet18", path, "cpu", class_names=["a", "b", "c"])
    with pytest.raises(UserInputError, match=r"std .* all positive"):
        load_backbone("torchvision:resnet18", path, "cpu", data_config={"std": (1, 0, 1)})
    whole_model = tmp_path / "whole.pth"
    import torchvision
    torch.save(torchvision.models.resnet18(num_classes=2), whole_model)  # a pickled module
    with pytest.raises(UserInputError, match="cannot be read safely"):
        load_backbone("torchvision:resnet18", whole_model, "cpu")


def test_hugging_faces_variables_decide_online_or_offline(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE switches downloads off as CAMS_OFFLINE does; HF_ENDPOINT is where the hub
    is looked for (a mirror, or here a closed local port)."""
    from cams.backbones.hub import offline, reachable
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("CAMS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert offline() and not reachable()
    with pytest.raises(UserInputError, match="offline: give the weights"):
        load_backbone("resnet50", device="cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert not offline() and not reachable()
