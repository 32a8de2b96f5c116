"""Every photo the installed packages ship, and augmented crops of them (unlabelled: the SHAM
demonstration's training data, and the held-out photos' crops that test it)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from cams.errors import UserInputError
from cams.images import EXAMPLES, example_image
from imagedata.items import NO_MASK
from imagedata.order import seeded_generator

HELD_OUT_PHOTOS = ("chelsea", "coffee", "astronaut")  # never trained on: the acceptance photos
# Every photo the installed packages ship without a download (skimage's cat() is chelsea again).
SKIMAGE_PHOTOS = ("astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "colorwheel",
                  "retina", "logo", "brick", "camera", "clock", "coins", "grass", "gravel", "horse",
                  "moon", "page", "text", "cell")
MATPLOTLIB_PHOTOS = ("Minduka_Present_Blue_Pack.png",)


class PhotoCrops(Dataset):
    """Augmented crops of photos, unlabelled: random resized crops (scale 0.25–1), flips, colour
    jitter, 2×2 mosaics of crops (every fourth sample) and 50/50 mixes of two crops (every fourth,
    offset by two), deterministic by (seed, index)."""

    def __init__(self, photos: list[Image.Image], size: int = 224, seed: int = 0,
                 length: int = 10_000, mosaics: bool = True):
        if not photos:
            raise UserInputError("no photos to crop")
        self.photos = [torch.from_numpy(np.asarray(photo.convert("RGB")).copy()).permute(2, 0, 1)
                       for photo in photos]
        self.size, self.seed, self.length, self.mosaics = size, seed, length, mosaics
        self.class_names: list[str] = []

    def __len__(self) -> int:
        return self.length

    def crop(self, generator: torch.Generator, size: int) -> Tensor:
        photo = self.photos[int(torch.randint(len(self.photos), (1,), generator=generator))]
        height, width = photo.shape[1:]
        scale = 0.25 + 0.75 * float(torch.rand(1, generator=generator))
        side = max(16, int(math.sqrt(scale) * min(height, width)))
        top = int(torch.randint(height - side + 1, (1,), generator=generator))
        left = int(torch.randint(width - side + 1, (1,), generator=generator))
        crop = photo[:, top:top + side, left:left + side].float()[None] / 255
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                             align_corners=False)[0]
        if bool(torch.rand(1, generator=generator) < 0.5):
            crop = crop.flip(-1)
        gain = 0.8 + 0.4 * torch.rand(3, 1, 1, generator=generator)
        return (crop * gain).clamp(0, 1)

    def __getitem__(self, index: int) -> tuple[Tensor, int, Tensor]:
        generator = seeded_generator(self.seed, "photos", index)
        if self.mosaics and index % 4 == 3:
            half = self.size // 2
            tiles = [self.crop(generator, half) for _ in range(4)]
            image = torch.cat([torch.cat(tiles[:2], dim=2), torch.cat(tiles[2:], dim=2)], dim=1)
            image = F.interpolate(image[None], size=(self.size, self.size), mode="bilinear",
                                  align_corners=False)[0]
        elif self.mosaics and index % 4 == 1:
            image = 0.5 * (self.crop(generator, self.size) + self.crop(generator, self.size))
        else:
            image = self.crop(generator, self.size)
        return image, -1, torch.full((self.size, self.size), NO_MASK)


def named_photos() -> dict[str, Image.Image]:
    """Every photo the installed packages ship without a download, by name, as RGB (grey-level
    photos converted)."""
    import matplotlib.cbook
    from skimage import data as skimage_data

    photos = {name: example_image(name) for name in EXAMPLES}
    for name in SKIMAGE_PHOTOS:
        photos.setdefault(name, Image.fromarray(getattr(skimage_data, name)()))
    for name in MATPLOTLIB_PHOTOS:
        with matplotlib.cbook.get_sample_data(name) as handle:
            photos[Path(name).stem] = Image.open(handle).convert("RGB")
    motorcycle_left, motorcycle_right, _ = skimage_data.stereo_motorcycle()
    photos["motorcycle_left"] = Image.fromarray(motorcycle_left)
    photos["motorcycle_right"] = Image.fromarray(motorcycle_right)
    return {name: photo.convert("RGB") for name, photo in photos.items()}


def bundled_photos(held_out: bool = False) -> list[Image.Image]:
    """The bundled photos minus (or, with ``held_out``, only) the held-out ones."""
    return [photo for name, photo in named_photos().items()
            if (name in HELD_OUT_PHOTOS) == held_out]
