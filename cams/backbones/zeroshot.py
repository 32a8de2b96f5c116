"""A zero-shot classifier from a CLIP-style image/text model: its classes are text prompts, its
logits the scaled cosine similarity of the image's embedding with each prompt's
(Radford et al. 2021). It is a ``Backbone`` (``wrap``), so every method explains it.

    model, _, preprocess = open_clip.create_model_and_transforms("RN50", pretrained=...)
    backbone = zero_shot(model, ["cat", "dog"], open_clip.get_tokenizer("RN50"),
                         layer="visual.layer4")

The model gives ``encode_image`` / ``encode_text`` (OpenAI's CLIP, open_clip) or
``get_image_features`` / ``get_text_features`` (Hugging Face ``transformers``' CLIPModel, whose
tokenizer returns a dict of tensors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cams.backbones.backbone import Backbone, resolve_device
from cams.backbones.wrap import wrap
from cams.errors import Fix, UserInputError

# OpenAI CLIP's normalisation and its default prompt.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TEMPLATE = "a photo of a {}."
DEFAULT_LOGIT_SCALE = 100.0  # CLIP's learned scale saturates there
IMAGE_ENCODERS = ("encode_image", "get_image_features")  # CLIP and open_clip; transformers
TEXT_ENCODERS = ("encode_text", "get_text_features")


def _encoder(model: nn.Module, kinds: tuple[str, str]) -> Callable:
    for name in kinds:
        if callable(getattr(model, name, None)):
            return getattr(model, name)
    raise UserInputError(f"{type(model).__name__} has no {' or '.join(kinds)}",
                         Fix(None, "a CLIP-style model (OpenAI CLIP, open_clip, or "
                                   "transformers' CLIPModel)"))


def logit_scale(model: nn.Module) -> float:
    """The model's learned temperature (``exp(logit_scale)``, as CLIP stores it), else 100."""
    scale = getattr(model, "logit_scale", None)
    if isinstance(scale, Tensor):
        return float(scale.detach().exp().clamp(max=DEFAULT_LOGIT_SCALE))
    return DEFAULT_LOGIT_SCALE


class ZeroShot(nn.Module):
    """``logits = scale · normalise(image embedding) · normalise(prompt embeddings)ᵀ``; the
    prompts are embedded once (``text_features``, C×D). The image model's layers keep their names
    under ``model.``."""

    def __init__(self, model: nn.Module, text_features: Tensor, scale: float):
        super().__init__()
        self.model = model
        _encoder(model, IMAGE_ENCODERS)  # checked here, read at each call (copies stay whole)
        self.register_buffer("text_features", F.normalize(text_features.detach().float(), dim=-1))
        self.scale = scale

    def forward(self, inputs: Tensor) -> Tensor:
        image = _encoder(self.model, IMAGE_ENCODERS)(inputs)
        if not isinstance(image, Tensor):  # a transformers output object
            image = image.image_embeds if hasattr(image, "image_embeds") else image[0]
        return self.scale * F.normalize(image.float(), dim=-1) @ self.text_features.T


@torch.no_grad()
def text_features(model: nn.Module, prompts: Sequence[str], tokenize: Callable,
                  device: torch.device) -> Tensor:
    """The prompts' embeddings (C×D), from the model's own text encoder."""
    tokens = tokenize(list(prompts))
    encode = _encoder(model, TEXT_ENCODERS)
    if isinstance(tokens, dict) or hasattr(tokens, "keys"):  # transformers: input_ids, mask
        return encode(**{key: value.to(device) for key, value in tokens.items()})
    return encode(tokens.to(device))


def zero_shot(model: nn.Module, classes: Sequence[str], tokenize: Callable, layer: str, *,
              template: str = TEMPLATE, input_size: int | Sequence[int] = 224,
              mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
              name: str = "zero-shot", device: str | torch.device | None = None) -> Backbone:
    """A Backbone whose classes are ``classes``, each prompted as ``template`` (e.g. "a photo of
    a {}."), read at the image model's module ``layer`` (e.g. ``visual.layer4``, or
    ``visual.transformer.resblocks.11`` for a ViT). ``tokenize`` turns prompts into the text
    encoder's input."""
    if len(classes) < 2:
        raise UserInputError("a zero-shot classifier needs at least two classes",
                             Fix(None, "two or more class names"))
    target = resolve_device(device)
    model = model.eval().to(target)
    prompts = [template.format(name) for name in classes]
    classifier = ZeroShot(model, text_features(model, prompts, tokenize, target),
                          logit_scale(model))
    backbone = wrap(classifier, f"model.{layer}", input_size=input_size, mean=mean, std=std,
                    class_names=list(classes), name=name, device=target)
    backbone.weights_source = f"zero-shot {type(model).__name__}, prompts {template!r}"
    return backbone
