"""A model ready to explain: the network, its preprocessing, class names, target layer, device."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image
from timm.data import create_transform
from torch import Tensor, nn

from cams.errors import DEVICE, NAMES, Fix, UserInputError, shorten
from cams.layers import FEATURES, NCHW, TargetLayer, forward_layer
from cams.randomise import CASCADING, redrawn

SEAM = TargetLayer(FEATURES, NCHW)  # a timm CNN's forward_features → forward_head


@dataclass(eq=False)
class Backbone:
    """A model ready to explain: ``model`` (eval mode), preprocessing, class names, target layer,
    device.

    ``layer`` says where the activations ``A`` are read (``cams.layers``): ``forward(x)`` gives
    them (N×K×h×w) with the logits. ``linear_head`` is true when what follows the layer is
    global-average-pool → Linear, the case where the classic CAM is defined.
    """

    name: str
    model: nn.Module
    data_config: dict[str, Any]
    class_names: list[str]
    weights_source: str
    linear_head: bool
    feature_shape: tuple[int, int, int]
    layer: TargetLayer = SEAM
    memory_format: torch.memory_format = torch.contiguous_format
    metadata: dict[str, Any] = field(default_factory=dict)  # a checkpoint's .json, if any
    transform: Callable[[Image.Image], Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.transform = create_transform(**self.data_config)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def input_size(self) -> tuple[int, int]:
        _, height, width = self.data_config["input_size"]
        return height, width

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def preprocess(self, image: Image.Image) -> Tensor:
        """Resize, centre-crop and normalise an RGB PIL image: a 1×3×H×W float tensor (CPU)."""
        return self.transform(image.convert("RGB"))[None]

    def _mean_std(self, device: torch.device) -> tuple[Tensor, Tensor]:
        mean = torch.tensor(self.data_config["mean"], device=device)[:, None, None]
        std = torch.tensor(self.data_config["std"], device=device)[:, None, None]
        return mean, std

    def normalise(self, pixels: Tensor) -> Tensor:
        """N×3×H×W RGB in [0, 1] → the model's input, on its device and memory format."""
        mean, std = self._mean_std(pixels.device)
        return ((pixels - mean) / std).to(self.device, memory_format=self.memory_format)

    def pixels(self, inputs: Tensor) -> Tensor:
        """Undo ``normalise``: RGB of preprocessed N×3×H×W inputs (not clipped)."""
        mean, std = self._mean_std(inputs.device)
        return inputs * std + mean

    def to_display(self, inputs: Tensor) -> Tensor:
        """The RGB of preprocessed inputs, clipped to [0, 1] for display."""
        return self.pixels(inputs).clamp(0, 1)

    def forward(self, inputs: Tensor, *, graph_below: bool = False,
                needs_graph: bool = True) -> tuple[Tensor, Tensor]:
        """The target layer's activations (N×K×h×w) and the logits, in one pass
        (``cams.layers.forward_layer``)."""
        return forward_layer(self.model, self.layer, inputs, graph_below=graph_below,
                             needs_graph=needs_graph)

    def features(self, inputs: Tensor) -> Tensor:
        """The target layer's activations, N×K×h×w, without a graph."""
        return self.forward(inputs, needs_graph=False)[0]

    def classifier_weight(self) -> Tensor:
        """The C×K weight of the final Linear layer (read live: fine-tuning may change it)."""
        return self.model.get_classifier().weight

    def randomised(self, block: str, test: str = CASCADING, seed: int = 0) -> Backbone:
        """This model with blocks re-drawn (``cams.randomise``, Adebayo et al.'s sanity check):
        ``cascading`` from the top block down to ``block``, ``independent`` that block alone."""
        model, source, randomised = redrawn(self.model, block, test, seed)
        return replace(self, model=model, weights_source=f"{self.weights_source}; {source}",
                       metadata={**self.metadata, "randomised": randomised})

    def class_label(self, index: int) -> str:
        return f"{index}: {self.class_names[index]}"

    def class_index(self, text: str | int | None, what: str) -> int | None:
        """A class given as an index (an int or its digits) or a class name (case-insensitive);
        None stays None (the engine's default). ``what`` names the input in errors (``target``
        or ``false_class``, ``cams.errors``)."""
        return class_index(text, self.class_names, what)


def class_index(text: str | int | None, class_names: list[str], what: str) -> int | None:
    """``Backbone.class_index`` for a list of class names."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    name = NAMES.get(what, what).removeprefix("the ")
    if isinstance(text, float) and text.is_integer():
        text = int(text)  # a JSON client may send 285 as 285.0
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise UserInputError(f"{name} {shorten(str(text))} is neither a class index nor a class "
                             "name", Fix(what, f"an index from 0 to {len(class_names) - 1} or a "
                                               "class name"))
    if isinstance(text, int) or re.fullmatch(r"\s*-?[0-9]+\s*", text):
        index = int(text)
        if not 0 <= index < len(class_names):
            raise UserInputError(f"{name} {shorten(str(index))} is out of range",
                                 Fix(what, f"an index from 0 to {len(class_names) - 1}"))
        return index
    matches = [i for i, label in enumerate(class_names) if label.lower() == text.strip().lower()]
    if not matches:
        raise UserInputError(f"{name} {shorten(text)!r} is neither a class index nor a class name of "
                             "this model", Fix(what, f"an index from 0 to {len(class_names) - 1}"
                                                     " or an exact class name"))
    if len(matches) > 1:
        raise UserInputError(f"{name} {shorten(text)!r} names several classes "
                             f"({', '.join(map(str, matches))})", Fix(what, "the index"))
    return matches[0]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    choices = Fix(DEVICE, "cpu, cuda or cuda:N")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise UserInputError(f"unknown device {device!r}", choices) from error
    if resolved.type not in ("cpu", "cuda"):
        raise UserInputError(f"device {device!r} is not supported", choices)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device {device!r} asked for, but no CUDA GPU is available",
                             Fix(DEVICE, value="cpu"))
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise UserInputError(f"device {device!r}: this machine has {torch.cuda.device_count()} "
                             "CUDA device(s)", Fix(DEVICE, "numbered from 0"))
    return resolved
