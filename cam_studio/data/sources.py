"""Where evaluated images come from: ``--images DIR|examples|photos|test-photos|test-crops:N|
val-crops:N|synthetic:NAME`` (``crops:N`` = ``val-crops:N``).

Each source yields ``Sample``s with a stable id (so an interrupted run resumes by id), lazily, one
at a time: 50,000 images never sit in memory at once. A sample reads (or generates) its image only
when it is used, so the images a resumed run or another process (``torchrun``) skips cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from cam_studio.data.examples import EXAMPLES, example_image
from cam_studio.data.items import IMAGE_SUFFIXES, as_pil
from cam_studio.data.order import seeded_generator
from cam_studio.data.photos import PhotoCrops, named_photos, photo_set
from cam_studio.data.synthetic import SyntheticDataset
from cams.errors import UserInputError
from cams.images import load_image

# Crops of a photo set (imagedata.photos): the validation photos (crops: is their old name) or the
# test photos, which nothing was trained or tuned on.
CROPS = {"crops": "validation", "val-crops": "validation", "test-crops": "test"}

Loaded = tuple[Image.Image, int | None, Tensor | None]  # image, label, ground-truth mask


@dataclass
class Sample:
    """One image of a source, known by ``id``; ``load`` reads or generates it on first use."""

    id: str
    load: Callable[[], Loaded] = field(repr=False)

    @cached_property
    def loaded(self) -> Loaded:
        return self.load()

    @property
    def image(self) -> Image.Image:
        return self.loaded[0]

    @property
    def label(self) -> int | None:
        return self.loaded[1]

    @property
    def mask(self) -> Tensor | None:  # ground-truth salience in [0, 1] at the image's size
        return self.loaded[2]


def plain(load_image: Callable[[], Image.Image]) -> Callable[[], Loaded]:
    return lambda: (load_image(), None, None)


def samples(spec: str, limit: int | None = None) -> Iterator[Sample]:
    """The images of ``spec``, at most ``limit`` of them."""
    produced = 0
    for sample in _samples(spec):
        if limit is not None and produced >= limit:
            return
        produced += 1
        yield sample
    if produced == 0:
        raise UserInputError(f"--images {spec}: no images found")


def _samples(spec: str) -> Iterator[Sample]:
    if spec == "examples":
        for name in EXAMPLES:
            yield Sample(name, plain(lambda name=name: example_image(name)))
    elif spec == "photos":
        for name, photo in named_photos().items():
            yield Sample(name, plain(lambda photo=photo: photo))
    elif spec == "test-photos":
        for name, photo in photo_set("test").items():
            yield Sample(name, plain(lambda photo=photo: photo))
    elif spec.split(":")[0] in CROPS:
        yield from _crops(spec)
    elif spec.startswith("synthetic:"):
        yield from _synthetic(spec)
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise UserInputError(f"--images {spec}: no such folder (or use examples, photos, "
                                 "test-photos, test-crops:N, crops:N, synthetic:binary, "
                                 "synthetic:7class)")
        paths = [path for path in sorted(folder.rglob("*"))
                 if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
        # A seeded shuffle, so that --limit N takes a random N (not the first classes of a tree
        # sorted by class, as ImageNet's is).
        order = torch.randperm(len(paths), generator=seeded_generator("folder images"))
        for index in order.tolist():
            path = paths[index]
            yield Sample(str(path.relative_to(folder)), plain(lambda path=path: load_image(path)))


def _crops(spec: str) -> Iterator[Sample]:
    """N random crops of a photo set, known as ``PHOTO/crop-I``: the photo is the unit of the
    evaluation's paired tests (crops of one photo are not independent)."""
    kind, _, count = spec.partition(":")
    try:
        number = int(count)
    except ValueError:
        raise UserInputError(f"--images {spec}: write {kind}:N, e.g. {kind}:200") from None
    crops = PhotoCrops(photo_set(CROPS[kind]), 256, seed=4321, length=number, mosaics=False)
    for index in range(number):
        yield Sample(f"{crops.photo_name(index)}/crop-{index}",
                     plain(lambda index=index: as_pil(crops[index][0])))


def _synthetic(spec: str) -> Iterator[Sample]:
    parts = spec.split(":")
    task, split = parts[1], "test"
    number = int(parts[2]) if len(parts) > 2 else None
    dataset = SyntheticDataset(task, split, 64, seed=0, length=number)

    def load(index: int) -> Loaded:
        image, label, mask = dataset[index]
        return as_pil(image), label, mask

    for index in range(len(dataset)):
        yield Sample(f"{task}-{split}-{index}", lambda index=index: load(index))
