"""The example photos: bundled with scikit-image and matplotlib, so no download and no files in
this repository."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from cams.errors import IMAGES, Fix, UserInputError


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data
        return getattr(data, name)()
    return load


# Photos bundled with scikit-image and matplotlib: no download, no files in this repository.
EXAMPLES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "chelsea": (_skimage("chelsea"), "a tabby cat (scikit-image)"),
    "coffee": (_skimage("coffee"), "a cup of espresso (scikit-image)"),
    "astronaut": (_skimage("astronaut"), "astronaut Eileen Collins (scikit-image)"),
    "rocket": (_skimage("rocket"), "a rocket on its launch pad (scikit-image)"),
    "grace_hopper": (_grace_hopper, "Rear Admiral Grace Hopper (matplotlib)"),
}


def example_image(name: str) -> Image.Image:
    """One of the bundled example photos, as an RGB PIL image (a new one on each call)."""
    if name not in EXAMPLES:
        raise UserInputError(f"unknown example {name!r}", Fix(IMAGES, "one of " + ", ".join(EXAMPLES)))
    return example_pixels(name).copy()


@functools.lru_cache(maxsize=len(EXAMPLES))
def example_pixels(name: str) -> Image.Image:
    """An example photo decoded once (a class asking for one example does not decode it 60
    times); ``example_image`` hands out copies."""
    return Image.fromarray(EXAMPLES[name][0]()).convert("RGB")


def example_thumbnails(folder: Path, size: int = 160) -> list[tuple[str, str]]:
    """Write a small JPEG of every example into ``folder``: (path, name) pairs for a gallery."""
    folder.mkdir(parents=True, exist_ok=True)
    thumbnails = []
    for name in EXAMPLES:
        image = example_image(name)
        image.thumbnail((size, size))
        path = folder / f"{name}.jpg"
        image.save(path, quality=85)
        thumbnails.append((str(path), name))
    return thumbnails


