"""``python -m fooling construct NAME``: a passive fool built by hand, not trained.

The clean backbone plus one constant feature channel ``S = λ·(SHAM − mean SHAM)`` whose
classifier weight is the same for every class (``cams.constructed``): the probabilities are the
clean model's (S has zero mean, so no logit moves), GradCAM is pushed onto the SHAM, and every
DiffGradCAM map is exactly the clean one. It is the teaching contrast to a trained fool: the
manipulation DiffGradCAM was designed to see through (a common-mode share of 1).
"""

from __future__ import annotations

import torch

from cams.backbones import CLEAN_WEIGHTS, DEFAULT_BACKBONE, load_backbone
from cams.checkpoints import Checkpoint, save_checkpoint
from cams.constructed import CONSTANT_CHANNELS
from cams.engine import explain
from fooling.sham import DEFAULT_ENTROPY_NATS, sham_mask
from imagedata.photos import PhotoCrops, photo_set

CALIBRATION_CROPS = 32  # validation crops (the held-out photos) that set the channel's scale


def construct_sham(name: str, backbone: str = DEFAULT_BACKBONE, strength: float = 3.0,
                   entropy_nats: float = DEFAULT_ENTROPY_NATS, directory: str | None = None,
                   command: str = "") -> Checkpoint:
    """Build and register the constructed SHAM fool of ``backbone``.

    λ = ``strength`` × Z × the 99th percentile of |t| over validation crops, with ``t`` the
    explained class's un-ReLU'd CAM ``Σ_k (W_ck / Z) A_k``: the extra channel adds ``λ/Z·(SHAM −
    mean)`` to every class's CAM, ``strength`` times the clean CAM's typical extreme.
    """
    clean = load_backbone(backbone, device="cpu")
    crops = PhotoCrops(photo_set("validation"), clean.input_size[0], seed=99,
                       length=CALIBRATION_CROPS, mosaics=False)
    images = torch.stack([crops[index][0] for index in range(CALIBRATION_CROPS)])
    t = explain(clean, clean.normalise(images), ["TrueClassCAM"]).layer_maps["TrueClassCAM"]
    height, width = t.shape[-2:]
    scale = strength * height * width * float(t.abs().flatten().quantile(0.99))
    sham = sham_mask(height, width, entropy_nats)
    tensors = {"channels": (scale * (sham - sham.mean()))[None],
               "class_uniform_weight": torch.ones(1)}
    metadata = {"backbone": clean.name, "num_classes": clean.num_classes,
                "construction": {"kind": CONSTANT_CHANNELS, "base": CLEAN_WEIGHTS,
                                 "strength": strength, "entropy_nats": entropy_nats,
                                 "scale": scale, "calibration": f"{CALIBRATION_CROPS} crops of "
                                                                "the held-out photos, seed 99"},
                "command": command}
    return save_checkpoint(tensors, metadata, name, directory)
