"""Every photo the installed packages ship, in three sets, and augmented crops of them.

- ``train``: every photo scikit-image and matplotlib ship but the validation ones (the SHAM
  demonstration's unlabelled training data);
- ``validation``: chelsea, coffee, astronaut (scikit-image): held out from training, and used to
  choose recipes (learning rates, stages, strengths);
- ``test``: six real photos Gradio ships (``gradio/media_assets/images``, ``gradio/test_data``),
  neither trained nor tuned on: what the published acceptance and susceptibility numbers use.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from cam_studio.data.examples import EXAMPLES, example_image
from cam_studio.data.items import NO_MASK
from cam_studio.data.order import seeded_generator
from cams.errors import UserInputError

VALIDATION_PHOTOS = ("chelsea", "coffee", "astronaut")  # never trained on; recipes tuned on them
# Never trained on, never tuned on: Gradio's own example photos (its bus and logos are drawings).
TEST_PHOTOS = {"cheetah": "media_assets/images/cheetah.jpg",
               "cheetah_face": "media_assets/images/cheetah1.jpg",
               "cheetah_cub": "test_data/cheetah2.jpg", "lion": "media_assets/images/lion.jpg",
               "eiffel_tower": "media_assets/images/tower.jpg",
               "groot": "media_assets/images/groot.jpeg"}
PHOTO_SETS = ("train", "validation", "test")
# Every photo the installed packages ship without a download (skimage's cat() is chelsea again).
SKIMAGE_PHOTOS = ("astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "colorwheel",
                  "retina", "logo", "brick", "camera", "clock", "coins", "grass", "gravel", "horse",
                  "moon", "page", "text", "cell")
MATPLOTLIB_PHOTOS = ("Minduka_Present_Blue_Pack.png",)


class PhotoCrops(Dataset):
    """Augmented crops of photos, unlabelled: random resized crops (scale 0.25–1), flips, colour
    jitter, 2×2 mosaics of crops (every fourth sample) and 50/50 mixes of two crops (every fourth,
    offset by two), deterministic by (seed, index)."""

    def __init__(self, photos: dict[str, Image.Image], size: int = 224, seed: int = 0,
                 length: int = 10_000, mosaics: bool = True):
        if not photos:
            raise UserInputError("no photos to crop")
        self.names = list(photos)
        self.photos = [torch.from_numpy(np.asarray(photo.convert("RGB")).copy()).permute(2, 0, 1)
                       for photo in photos.values()]
        self.size, self.seed, self.length, self.mosaics = size, seed, length, mosaics
        self.class_names: list[str] = []

    def __len__(self) -> int:
        return self.length

    def photo_name(self, index: int) -> str:
        """The photo item ``index`` is a crop of (its first draw; a mosaic or a mix has more)."""
        generator = seeded_generator(self.seed, "photos", index)
        return self.names[int(torch.randint(len(self.photos), (1,), generator=generator))]

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


def photo_set(name: str) -> dict[str, Image.Image]:
    """The photos of set ``name`` (``PHOTO_SETS``), by name, as RGB."""
    if name == "test":
        return _test_photos()
    if name not in PHOTO_SETS:
        raise UserInputError(f"unknown photo set {name!r}: choose one of {', '.join(PHOTO_SETS)}")
    return {photo: image for photo, image in named_photos().items()
            if (photo in VALIDATION_PHOTOS) == (name == "validation")}


def _test_photos() -> dict[str, Image.Image]:
    import gradio
    folder = Path(gradio.__file__).parent
    missing = [path for path in TEST_PHOTOS.values() if not (folder / path).is_file()]
    if missing:
        raise UserInputError(f"this Gradio ({gradio.__version__}) does not ship the test photo "
                             f"{missing[0]}: install the version requirements.txt names")
    return {name: Image.open(folder / path).convert("RGB") for name, path in TEST_PHOTOS.items()}
