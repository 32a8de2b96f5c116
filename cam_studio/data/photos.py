"""Every photo the installed packages ship, in sets, and augmented crops of them.

- ``train``: every photo scikit-image and matplotlib ship but the validation ones (the SHAM
  demonstration's unlabelled training data);
- ``validation``: chelsea, coffee, astronaut (scikit-image): held out from training, and used to
  choose recipes (learning rates, stages, strengths);
- ``test``: fifteen real photos neither trained nor tuned on (``TEST_PHOTOS``: their sources and
  licences): five Gradio ships and ten of OpenCV's sample photos, which Debian's ``opencv-doc``
  package installs (or ``$OPENCV_SAMPLES_DATA_PATH``, OpenCV's own variable, names); the clean
  Lite0 recognises 12 classes among them with p ≥ 0.5;
- ``train-wide``: ``train`` plus OpenCV's other sample photos (one of each scene, none of a test
  photo's scene: ``OPENCV_TRAIN_SAMPLES``) and frames of its sample videos — the fools' wider
  training data (``--data photos:wide``);
- ``test-v1``: the six Gradio photos that were the test set before 2026-12-01 (three cheetahs;
  what the reports published before then used).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
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
from cams.errors import Fix, UserInputError

VALIDATION_PHOTOS = ("chelsea", "coffee", "astronaut")  # never trained on; recipes tuned on them
GRADIO = "gradio"  # a photo Gradio's wheel ships, at a path inside it
OPENCV = "opencv"  # one of OpenCV's sample photos (samples/data)


@dataclass(frozen=True)
class TestPhoto:
    """A photo of a test set: where it is, where it comes from, its licence, and what the clean
    Lite0 calls it (top-1 and its probability, measured when the photo was chosen)."""

    source: str
    path: str
    origin: str
    licence: str
    lite0: str


GRADIO_LICENCE = "Apache-2.0 (the gradio package)"
# The OpenCV samples: Debian's copyright file for opencv-doc puts the tree under "Files: *",
# Apache-2.0 AND BSD-3-Clause; several are classic test images (USC-SIPI's mandrill, fruits).
OPENCV_LICENCE = "Apache-2.0 AND BSD-3-Clause (OpenCV; Debian opencv-doc's copyright file)"
OPENCV_ORIGIN = "OpenCV samples/data (Debian package opencv-doc 4.6.0)"
GRADIO_ORIGIN = "gradio 6 wheel"
# Never trained on, never tuned on.
TEST_PHOTOS: dict[str, TestPhoto] = {
    "cheetah": TestPhoto(GRADIO, "media_assets/images/cheetah.jpg", GRADIO_ORIGIN, GRADIO_LICENCE,
                         "cheetah 0.94"),
    "cheetah_face": TestPhoto(GRADIO, "media_assets/images/cheetah1.jpg", GRADIO_ORIGIN,
                              GRADIO_LICENCE, "cheetah 0.74"),
    "lion": TestPhoto(GRADIO, "media_assets/images/lion.jpg", GRADIO_ORIGIN, GRADIO_LICENCE,
                      "lion 0.90"),
    "eiffel_tower": TestPhoto(GRADIO, "media_assets/images/tower.jpg", GRADIO_ORIGIN,
                              GRADIO_LICENCE, "bell cote 0.14 (no confident class)"),
    "groot": TestPhoto(GRADIO, "media_assets/images/groot.jpeg", GRADIO_ORIGIN, GRADIO_LICENCE,
                       "totem pole 0.10 (no confident class)"),
    "mandrill": TestPhoto(OPENCV, "baboon.jpg", OPENCV_ORIGIN, OPENCV_LICENCE, "baboon 0.74"),
    "pekinese": TestPhoto(OPENCV, "chicky_512.png", OPENCV_ORIGIN, OPENCV_LICENCE,
                          "Pekinese 0.77"),
    "squirrel": TestPhoto(OPENCV, "squirrel_cls.jpg", OPENCV_ORIGIN, OPENCV_LICENCE,
                          "fox squirrel 0.64"),
    "orange": TestPhoto(OPENCV, "orange.jpg", OPENCV_ORIGIN, OPENCV_LICENCE, "orange 0.81"),
    "fruits": TestPhoto(OPENCV, "fruits.jpg", OPENCV_ORIGIN, OPENCV_LICENCE, "lemon 0.74"),
    "apple": TestPhoto(OPENCV, "apple.jpg", OPENCV_ORIGIN, OPENCV_LICENCE,
                       "Granny Smith 0.73 (a red apple: ImageNet has no other apple)"),
    "footballer": TestPhoto(OPENCV, "messi5.jpg", OPENCV_ORIGIN, OPENCV_LICENCE,
                            "soccer ball 0.77"),
    "palace": TestPhoto(OPENCV, "home.jpg", OPENCV_ORIGIN, OPENCV_LICENCE, "palace 0.64"),
    "circuit_board": TestPhoto(OPENCV, "board.jpg", OPENCV_ORIGIN, OPENCV_LICENCE,
                               "modem 0.78 (a circuit board: ImageNet has no such class)"),
    "aerial_valley": TestPhoto(OPENCV, "aero3.jpg", OPENCV_ORIGIN, OPENCV_LICENCE,
                               "valley 0.53"),
}
# The test set before 2026-12-01: Gradio's six photos (the published v1 reports used them).
TEST_V1_PHOTOS: dict[str, TestPhoto] = {
    **{name: TEST_PHOTOS[name] for name in ("cheetah", "cheetah_face")},
    "cheetah_cub": TestPhoto(GRADIO, "test_data/cheetah2.jpg", GRADIO_ORIGIN, GRADIO_LICENCE,
                             "cheetah 0.81"),
    **{name: TEST_PHOTOS[name] for name in ("lion", "eiffel_tower", "groot")}}
OPENCV_SAMPLES_ENV = "OPENCV_SAMPLES_DATA_PATH"  # OpenCV's own variable for samples/data
OPENCV_SAMPLES_DIRS = ("/usr/share/doc/opencv-doc/examples/data",)  # Debian's opencv-doc
PHOTO_SETS = ("train", "train-wide", "validation", "test", "test-v1")
# OpenCV's sample photos that may be trained on: one of each scene (one of each stereo or
# calibration series), none of a test photo's scene (aero1 is aero3's valley: left out), and
# frames of its sample videos (evenly spaced over each).
OPENCV_TRAIN_SAMPLES = (
    "Blender_Suzanne1.jpg", "HappyFish.jpg", "LinuxLogo.jpg", "WindowsLogo.jpg", "aloeL.jpg",
    "basketball1.png", "blox.jpg", "box.png", "box_in_scene.png", "building.jpg", "butterfly.jpg",
    "cards.png", "chessboard.png", "ela_original.jpg", "graf1.png", "left.jpg", "left01.jpg",
    "left06.jpg", "leuvenA.jpg", "licenseplate_motion.jpg", "ml.png", "opencv-logo.png",
    "pic2.png", "pic5.png", "rubberwhale1.png", "smarties.png", "starry_night.jpg", "stuff.jpg",
    "sudoku.png", "text_defocus.jpg", "imageTextN.png")
OPENCV_TRAIN_VIDEOS = {"vtest.avi": 3, "Megamind.avi": 4}
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
    if name in ("test", "test-v1"):
        return test_photos(TEST_PHOTOS if name == "test" else TEST_V1_PHOTOS)
    if name == "train-wide":
        return {**photo_set("train"), **opencv_training_photos()}
    if name not in PHOTO_SETS:
        raise UserInputError(f"unknown photo set {name!r}", Fix(None, "one of "
                                                                  + ", ".join(PHOTO_SETS)))
    return {photo: image for photo, image in named_photos().items()
            if (photo in VALIDATION_PHOTOS) == (name == "validation")}


def opencv_samples() -> Path | None:
    """OpenCV's samples/data folder: ``$OPENCV_SAMPLES_DATA_PATH``, else Debian's opencv-doc."""
    for folder in (os.environ.get(OPENCV_SAMPLES_ENV), *OPENCV_SAMPLES_DIRS):
        if folder and (Path(folder) / "baboon.jpg").is_file():
            return Path(folder)
    return None


def opencv_training_photos() -> dict[str, Image.Image]:
    """``OPENCV_TRAIN_SAMPLES`` and frames of ``OPENCV_TRAIN_VIDEOS``, by name, as RGB."""
    import cv2

    folder = opencv_samples()
    if folder is None:
        raise UserInputError("the wide training photos are OpenCV's sample photos, which are not "
                             "here", "install Debian's opencv-doc (apt-get install opencv-doc)",
                             f"set {OPENCV_SAMPLES_ENV} to OpenCV's samples/data folder")
    photos = {Path(name).stem: Image.open(folder / name).convert("RGB")
              for name in OPENCV_TRAIN_SAMPLES}
    for video, count in OPENCV_TRAIN_VIDEOS.items():
        capture = cv2.VideoCapture(str(folder / video))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        for index in range(count):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(frames * (index + 0.5) / count))
            ok, frame = capture.read()
            if ok:
                photos[f"{Path(video).stem}_{index}"] = Image.fromarray(
                    cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        capture.release()
    return photos


def test_photos(photos: dict[str, TestPhoto]) -> dict[str, Image.Image]:
    import gradio
    folders = {GRADIO: Path(gradio.__file__).parent, OPENCV: opencv_samples()}
    if any(photo.source == OPENCV for photo in photos.values()) and folders[OPENCV] is None:
        raise UserInputError("the test photos include OpenCV's sample photos, which are not here",
                             "install Debian's opencv-doc (apt-get install opencv-doc)",
                             f"set {OPENCV_SAMPLES_ENV} to OpenCV's samples/data folder")
    loaded = {}
    for name, photo in photos.items():
        path = folders[photo.source] / photo.path
        if not path.is_file():
            raise UserInputError(f"test photo {name} ({photo.origin}: {photo.path}) is missing",
                                 "install the versions requirements.txt and .ci/run name")
        loaded[name] = Image.open(path).convert("RGB")
    return loaded
