"""Backbones: a timm CNN, a vision transformer or a torchvision model, with its weights,
preprocessing, class names and target layer.

- ``specs``: which architecture a name means (the registered backbones, the families of names);
- ``sources``: where the weights come from (one row per source);
- ``files``, ``hub``: reading weights files safely, the Hugging Face cache and network;
- ``backbone``: the runtime ``Backbone``; ``load``: ``load_backbone``, the one resolver;
- ``wrap``: any PyTorch classifier (a user's own ``nn.Module``) as a ``Backbone``.

For a timm CNN the target layer is timm's own seam: ``forward_features(x)`` gives the activations
``A`` and ``forward_head(A)`` the logits (STYLE: "the seam our engine lives on"); transformers and
other models are read at a named module (``cams.layers``).
"""

from cams.backbones.backbone import SEAM, Backbone, class_index, resolve_device
from cams.backbones.files import WEIGHT_SUFFIXES, read_class_names, read_state_dict
from cams.backbones.load import DATA_KEYS, load_backbone
from cams.backbones.sources import (
    CLEAN_WEIGHTS,
    RANDOM_WEIGHTS,
    WEIGHT_SOURCES,
    Loaded,
    WeightRequest,
    WeightSource,
    add_weight_source,
    randomisable_blocks,
    weights_available_offline,
)
from cams.backbones.specs import DEFAULT_BACKBONE, FAMILIES, REGISTRY, BackboneSpec, Family, spec_for
from cams.backbones.wrap import wrap
from cams.backbones.zeroshot import zero_shot

__all__ = [
    "CLEAN_WEIGHTS",
    "DATA_KEYS",
    "DEFAULT_BACKBONE",
    "FAMILIES",
    "RANDOM_WEIGHTS",
    "REGISTRY",
    "SEAM",
    "WEIGHT_SOURCES",
    "WEIGHT_SUFFIXES",
    "Backbone",
    "BackboneSpec",
    "Family",
    "Loaded",
    "WeightRequest",
    "WeightSource",
    "add_weight_source",
    "class_index",
    "load_backbone",
    "randomisable_blocks",
    "read_class_names",
    "read_state_dict",
    "resolve_device",
    "spec_for",
    "weights_available_offline",
    "wrap",
    "zero_shot",
]
