"""``wrap``: any PyTorch classifier as a ``Backbone`` — a researcher's own ``nn.Module``, or a
Hugging Face ``transformers`` model whose forward returns an output with ``.logits``.

    from cams import wrap, explain
    backbone = wrap(my_model, layer="layer4", input_size=224, class_names=names)
    result = explain(backbone, [pil_image])

Every method, the fooling objectives and the evaluation take the result like a named backbone.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor, nn

from cams.backbones.backbone import Backbone, resolve_device
from cams.backbones.load import _checked_data_config
from cams.errors import CLASS_NAMES, LAYER, Fix, UserInputError
from cams.layers import resolve_layer


class Logits(nn.Module):
    """A model whose forward returns an output object (``transformers``: ``.logits``) or a tuple
    (logits first), as one that returns the logits tensor. Its layers keep their names under
    ``model.``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        return logits_of(self.model(inputs))


def logits_of(output: object) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    raise UserInputError(f"the model's forward returns {type(output).__name__}, not logits",
                         "wrap a model whose forward returns the logits (or an output with "
                         ".logits)")


def wrap(model: nn.Module, layer: str, *, input_size: int | Sequence[int] = 224,
         mean: Sequence[float] = IMAGENET_DEFAULT_MEAN, std: Sequence[float] = IMAGENET_DEFAULT_STD,
         class_names: Sequence[str] | None = None, name: str = "wrapped",
         device: str | torch.device | None = None) -> Backbone:
    """``model`` (put in eval mode and on ``device``, default CUDA when present) as a Backbone
    read at ``layer`` (its module path, e.g. ``layer4`` or ``blocks.11.norm1``; tokens are laid
    out on their grid as for timm's transformers). ``input_size``: a side or (H, W) or (3, H, W);
    ``mean`` / ``std``: the normalisation the model was trained with; ``class_names``: one per
    output (default ``class i``)."""
    sides = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)[-2:]
    config = _checked_data_config({"input_size": (3, *sides), "mean": tuple(mean),
                                   "std": tuple(std), "crop_pct": 1.0,
                                   "interpolation": "bilinear"}, "wrap")
    model = model.eval().to(resolve_device(device))
    with torch.no_grad():
        output = model(torch.zeros(1, *config["input_size"], device=next(model.parameters()).device))
    if not isinstance(output, Tensor):
        model = Logits(model)
        layer = f"model.{layer}"
    classes = int(logits_of(output).shape[-1])
    if class_names is not None and len(class_names) != classes:
        raise UserInputError(f"{len(class_names)} class names given for a model with {classes} "
                             "outputs", Fix(CLASS_NAMES, "one name per output, in order"))
    if not layer:
        raise UserInputError("wrap needs the target layer", Fix(LAYER, "a module path, e.g. layer4"))
    target_layer, feature_shape = resolve_layer(model, config["input_size"], layer)
    return Backbone(name=name, model=model, data_config=config,
                    class_names=list(class_names or [f"class {index}" for index in range(classes)]),
                    weights_source=f"a wrapped {type(model).__name__}", linear_head=False,
                    feature_shape=feature_shape, layer=target_layer)


def built_model_name(target: str) -> str:
    """The name a ``MODULE:FUNCTION`` model goes by (in tables, file names, reports):
    ``module.function``, a ``.py`` file by its stem (``models.py:build`` → ``models.build``)."""
    where, _, function = target.rpartition(":")
    return f"{Path(where).stem if where.endswith('.py') else where}.{function}"


def built_model(target: str) -> nn.Module:
    """The ``nn.Module`` that ``MODULE:FUNCTION`` returns when called without arguments:
    ``MODULE`` an importable module (``mypackage.models``) or a ``.py`` file. This imports and
    runs that code — for the command line on your own machine; the app never calls it."""
    where, sep, function = target.rpartition(":")
    example = Fix(None, "MODULE:FUNCTION, e.g. mymodels:build or models.py:build")
    if not sep or not where or not function.isidentifier():
        raise UserInputError(f"{target!r} is not MODULE:FUNCTION", example)
    try:
        if where.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(where).stem, where)
            if spec is None or not Path(where).is_file():
                raise UserInputError(f"no Python file {where}", example)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as error:
        raise UserInputError(f"cannot import {where} ({error})", example) from error
    build = getattr(module, function, None)
    if not callable(build):
        raise UserInputError(f"{where} has no function {function}", example)
    model = build()
    if not isinstance(model, nn.Module):
        raise UserInputError(f"{target} returned a {type(model).__name__}, not an nn.Module",
                             "return the model (torch.nn.Module) from the function")
    return model
