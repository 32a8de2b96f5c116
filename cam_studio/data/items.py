"""What every dataset of the data layer yields, and the helpers that handle it.

An item is ``(image, label, mask)``: a 3×S×S float image in [0, 1] (the backbone normalises it,
``Backbone.normalise``), an int label (−1 when unlabelled), and an S×S salience map in [0, 1]
(all ``NO_MASK`` when there is none).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

NO_MASK = -1.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def square(image: Image.Image, size: int) -> Tensor:
    """An RGB PIL image resized to size×size (aspect not kept, so salience maps stay aligned)."""
    resized = image.convert("RGB").resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).float() / 255


def as_pil(image: Tensor) -> Image.Image:
    """A 3×H×W tensor in [0, 1] as an 8-bit RGB image."""
    return Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def stack(dataset: Dataset, indices: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """Items ``indices`` of ``dataset`` as a batch: images N×3×S×S, labels N, masks N×S×S."""
    images, labels, masks = zip(*(dataset[i] for i in indices))
    return torch.stack(images), torch.tensor(labels), torch.stack(masks)


def has_masks(masks: Tensor) -> bool:
    """Whether every item of a batch comes with a salience map."""
    return bool((masks != NO_MASK).all())
