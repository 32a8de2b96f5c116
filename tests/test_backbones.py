"""Backbones: real predictions of the shipped weights, safe weight files, clear errors."""

from __future__ import annotations

import json
import os
import pickle

import huggingface_hub.constants
import pytest
import timm
import torch
from safetensors.torch import save_file

from cams import load_backbone
from cams.errors import LAYER, WEIGHTS, UserInputError


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_shipped_weights_recognise_real_photos(name, chelsea, coffee):
    backbone = load_backbone(name, device="cpu")
    inputs = torch.cat([backbone.preprocess(chelsea), backbone.preprocess(coffee)])
    with torch.no_grad():
        top1 = backbone.model(inputs).argmax(dim=1).tolist()
    assert top1 == [285, 967]
    assert backbone.class_names[285] == "Egyptian cat" and backbone.class_names[967] == "espresso"
    assert backbone.linear_head


def test_default_backbone_preprocessing_comes_from_timm_config(lite0, chelsea):
    assert lite0.input_size == (224, 224)
    assert lite0.data_config["mean"] == (0.5, 0.5, 0.5)
    x = lite0.preprocess(chelsea)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0  # (v − 0.5) / 0.5 for v in [0, 1]


def two_class_resnet(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return timm.create_model("resnet18", num_classes=2).state_dict()


def test_safetensors_file_sets_classes_and_names(tmp_path):
    state = two_class_resnet()
    path = tmp_path / "binary.safetensors"
    save_file(state, path, metadata={"class_names": json.dumps(["live", "spoof"])})
    backbone = load_backbone("resnet18", weights=path, device="cpu")
    assert backbone.num_classes == 2 and backbone.class_names == ["live", "spoof"]
    assert torch.equal(backbone.model.state_dict()["fc.weight"], state["fc.weight"])


def test_state_dict_file_with_sidecar_names(tmp_path):
    path = tmp_path / "binary.pt"
    torch.save(two_class_resnet(), path)
    path.with_suffix(".json").write_text(json.dumps({"class_names": ["cat", "dog"]}))
    backbone = load_backbone("resnet18", weights=path, device="cpu")
    assert backbone.class_names == ["cat", "dog"]
    assert backbone.linear_head and backbone.feature_shape[0] == 512


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch exploited",))


def test_malicious_pickle_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"fc.weight": Exploit()}, handle)
    with pytest.raises(UserInputError, match="cannot be read safely"):
        load_backbone("resnet18", weights=path, device="cpu")
    assert not (tmp_path / "exploited").exists()


def test_pickle_with_more_than_tensors_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"fc.weight": torch.zeros(2, 512), "epoch": 3}, path)
    with pytest.raises(UserInputError, match="more than tensors"):
        load_backbone("resnet18", weights=path, device="cpu")


@pytest.mark.parametrize(("backbone", "message"), [
    ("densenet121", "does not fit backbone densenet121"),
    ("resnet34", "missing and"),
])
def test_weights_of_another_architecture_are_refused(tmp_path, backbone, message):
    path = tmp_path / "resnet18.safetensors"
    save_file(two_class_resnet(), path)
    with pytest.raises(UserInputError, match=message):
        load_backbone(backbone, weights=path, device="cpu")


def test_weights_of_the_wrong_shape_are_refused(tmp_path):
    state = two_class_resnet()
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "reshaped.safetensors"
    save_file(state, path)
    with pytest.raises(UserInputError, match="shapes differ"):
        load_backbone("resnet18", weights=path, device="cpu")


@pytest.mark.parametrize(("value", "kind"), [(float("nan"), "NaN"), (float("inf"), "infinite")])
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_non_finite_weights_are_refused_at_load(tmp_path, value, kind, suffix):
    """A diverged training's weights: refused with the tensor's name, not NaN maps later."""
    state = two_class_resnet()
    state["layer3.0.conv1.weight"][0, 0, 0, 0] = value
    path = tmp_path / f"diverged{suffix}"
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    with pytest.raises(UserInputError, match=f"has {kind} weights in 'layer3.0.conv1.weight'"):
        load_backbone("resnet18", weights=path, device="cpu")


def test_outputs_that_are_not_finite_are_flagged_not_drawn(chelsea):
    from cams import explain
    backbone = load_backbone("resnet18", weights="random", device="cpu")
    with torch.no_grad():
        backbone.model.fc.weight.fill_(1e38)  # finite weights, infinite logits
    with pytest.raises(UserInputError, match="outputs for this input are not finite"):
        explain(backbone, backbone.preprocess(chelsea), methods=["GradCAM"])


@pytest.mark.parametrize(("content", "suffix", "message"), [
    (b"", ".safetensors", "empty"),
    (b"\x00\x01garbage" * 10, ".safetensors", "not a valid .safetensors"),
    (b"garbage" * 10, ".pt", "cannot be read safely"),
])
def test_broken_weight_files_are_refused(tmp_path, content, suffix, message):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(content)
    with pytest.raises(UserInputError, match=message):
        load_backbone("resnet18", weights=path, device="cpu")


def test_missing_weight_file_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        load_backbone("resnet18", weights=tmp_path / "nope.safetensors")


def test_unknown_backbone_is_refused():
    with pytest.raises(UserInputError, match="unknown backbone 'resnet_9000'"):
        load_backbone("resnet_9000")


def test_no_weights_offline_says_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("CAMS_OFFLINE", "1")
    with pytest.raises(UserInputError, match="no weights for backbone resnet50 offline") as error:
        load_backbone("resnet50")
    # The engine names what to give, never a front end's flag: each front end words it.
    assert [(fix.input, fix.value) for fix in error.value.fixes] == [
        (WEIGHTS, None), (None, None), (WEIGHTS, "random")]
    assert "--" not in str(error.value)


def test_random_weights_only_when_asked(resnet_random):
    assert resnet_random.weights_source == "random initialisation"
    assert resnet_random.class_names[285] == "Egyptian cat"  # 1000-class head: ImageNet names


def test_a_layer_without_a_spatial_output_is_refused_in_one_line():
    with pytest.raises(UserInputError, match=r"layer fc gives shape \(1, 1000\), which is neither "
                                             r"a feature map .*: give the target layer") as error:
        load_backbone("resnet18", weights="random", device="cpu", layer="fc")
    assert error.value.fixes[0].input == LAYER


def test_unavailable_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserInputError, match="no CUDA GPU"):
        load_backbone("resnet18", weights="random", device="cuda")


def test_one_resolver_for_every_weights_name(tmp_path, monkeypatch):
    """Registry names, files, "clean" and "random" all go through load_backbone; a checkpoint's
    own backbone is used when none is named; pickers (files=False) never read a path."""
    from cams.checkpoints import CHECKPOINTS_ENV, save_checkpoint
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    state = two_class_resnet(3)
    save_checkpoint(state, {"backbone": "resnet18", "class_names": ["a", "b"]}, "r18-two",
                    tmp_path)
    by_name = load_backbone(None, "r18-two", device="cpu")
    assert by_name.name == "resnet18" and by_name.class_names == ["a", "b"]
    assert by_name.metadata["backbone"] == "resnet18"
    assert torch.equal(by_name.model.state_dict()["fc.weight"], state["fc.weight"])
    by_file = load_backbone("resnet18", tmp_path / "r18-two.safetensors", device="cpu")
    assert torch.equal(by_file.model.state_dict()["fc.weight"], state["fc.weight"])
    with pytest.raises(UserInputError, match="is for backbone resnet18, not resnet34"):
        load_backbone("resnet34", "r18-two")
    with pytest.raises(UserInputError, match="no checkpoint called"):
        load_backbone("resnet18", str(tmp_path / "r18-two.safetensors"), files=False)
    torch.manual_seed(0)
    assert load_backbone("resnet18", "random").weights_source == "random initialisation"


@pytest.mark.parametrize(("name", "size"), [("efficientnet_lite0", 224), ("efficientnet_lite1", 240),
                                            ("tiny_resnet", 64), ("tiny_resnet", 96),
                                            ("inception_v3", 299), ("resnet18", 200)])
def test_the_spec_knows_its_layer_size_without_weights(name, size):
    """The shape-only pass on the meta device gives the real model's target-layer size."""
    from cams.backbones import spec_for
    spec = spec_for(name)
    with torch.no_grad():
        activations = spec.create().forward_features(torch.zeros(1, 3, size, size))
    assert spec.layer_size(size) == tuple(activations.shape[-2:])
