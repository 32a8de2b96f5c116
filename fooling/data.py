"""Training data: ImageFolder trees with optional salience maps, a synthetic ground-truth domain,
and augmented crops of the bundled photos.

Every dataset yields ``(image, label, mask)``: a 3×S×S float image in [0, 1] (the training loop
normalises it for the backbone), an int label (−1 when unlabelled), and an S×S salience map in
[0, 1] (all −1 when there is none).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from cams.errors import UserInputError
from cams.images import EXAMPLES, example_image, load_image

NO_MASK = -1.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SALIENCE_SUFFIXES = (".png", ".npy")


def seeded_generator(*key: object) -> torch.Generator:
    """A generator seeded from a stable hash of ``key`` (not Python's salted ``hash``)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def square(image: Image.Image, size: int) -> Tensor:
    """An RGB PIL image resized to size×size (aspect not kept, so salience maps stay aligned)."""
    resized = image.convert("RGB").resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).float() / 255


# --- The synthetic ground-truth domain -----------------------------------------------------------

PATTERNS: tuple[str, ...] = ("disc", "ring", "cross", "checker", "stripes", "diagonal", "triangle")


def pattern_mask(pattern: str, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A pattern drawn in a size×size square: (ink, support), each size×size in {0, 1}. ``ink``
    takes the pattern's colour; ``support`` is the pattern's footprint, the exact salience map."""
    coordinates = (torch.arange(size) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(coordinates, coordinates, indexing="ij")
    radius = torch.sqrt(x * x + y * y)
    period = 2 / int(torch.randint(3, 5, (1,), generator=generator))
    square_support = torch.ones(size, size)
    if pattern == "disc":
        support = (radius < 1).float()
        return support, support
    if pattern == "ring":
        support = (radius < 1).float()
        return ((radius > 0.55) & (radius < 1)).float(), support
    if pattern == "cross":
        ink = ((x.abs() < 0.25) | (y.abs() < 0.25)).float()
        return ink, ink
    if pattern == "checker":
        ink = ((torch.floor((x + 1) / period) + torch.floor((y + 1) / period)) % 2).float()
        return ink, square_support
    if pattern == "stripes":
        return (torch.floor((y + 1) / period) % 2).float(), square_support
    if pattern == "diagonal":
        return (torch.floor((x + y + 2) / period) % 2).float(), square_support
    if pattern == "triangle":
        ink = ((y < 0.9) & (y > 2 * x.abs() - 1.1)).float()
        return ink, ink
    raise ValueError(f"unknown pattern {pattern!r}")


def clutter(size: int, generator: torch.Generator, texture: str = "blobs") -> Tensor:
    """A 3×size×size textured background: smooth colour noise and distractor marks
    (``blobs``: rectangles and lines; ``waves``: sinusoidal bands, the out-of-set texture)."""
    coarse = torch.rand(1, 3, 6, 6, generator=generator)
    image = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
    image = 0.25 + 0.5 * image.clamp(0, 1)
    if texture == "waves":
        coordinates = torch.arange(size).float()
        y, x = torch.meshgrid(coordinates, coordinates, indexing="ij")
        angle = float(torch.rand(1, generator=generator)) * math.pi
        frequency = 0.15 + 0.2 * float(torch.rand(1, generator=generator))
        bands = torch.sin(frequency * (x * math.cos(angle) + y * math.sin(angle)))
        image = image * (0.75 + 0.25 * bands)
    else:
        for _ in range(int(torch.randint(4, 9, (1,), generator=generator))):
            top, left = torch.randint(0, size - 4, (2,), generator=generator).tolist()
            height, width = torch.randint(2, max(3, size // 5), (2,), generator=generator).tolist()
            if bool(torch.rand(1, generator=generator) < 0.5):  # a thin line instead
                height, width = (1, width * 2) if height > width else (height * 2, 1)
            image[:, top:top + height, left:left + width] = torch.rand(3, 1, 1, generator=generator)
    noise = 0.04 * torch.randn(3, size, size, generator=generator)
    return (image + noise).clamp(0, 1)


@dataclass(frozen=True)
class SyntheticTask:
    """A synthetic task: classes, and which patterns each class draws.

    ``binary``: "bona fide" (a disc) vs "attack" (any of the six other patterns), like iris
    presentation-attack detection. ``7class``: one class per pattern, like the 7-class iris PAD task.
    """

    name: str
    class_names: tuple[str, ...]
    class_patterns: tuple[tuple[str, ...], ...]

    @property
    def attack_types(self) -> tuple[str, ...]:
        return PATTERNS[1:]


TASKS: dict[str, SyntheticTask] = {
    "binary": SyntheticTask("binary", ("bona fide", "attack"), (("disc",), PATTERNS[1:])),
    "7class": SyntheticTask("7class", PATTERNS, tuple((pattern,) for pattern in PATTERNS)),
}
SPLIT_SIZES = {"train": 20_000, "val": 1_000, "test": 1_000, "outset": 1_000}


class SyntheticDataset(Dataset):
    """Images of ``task`` generated on the fly, the same for the same (seed, split, index).

    Each image is textured clutter with ONE class pattern (scaled, coloured, at a random position);
    its exact footprint is the mask. Splits: ``train``, ``val``, ``test`` (in-set) and ``outset``:
    for ``binary``, attacks of the held-out type only (leave-one-type-out, Divisive Decisions §4;
    ``holdout`` names the type, which ``train``/``val``/``test`` then never draw); for ``7class``,
    the same patterns on an unseen background texture.
    """

    def __init__(self, task: str, split: str = "train", size: int = 64, seed: int = 0,
                 holdout: str | None = None, length: int | None = None):
        if task not in TASKS:
            raise UserInputError(f"unknown synthetic task {task!r}: use synthetic:binary or "
                                 "synthetic:7class")
        if split not in SPLIT_SIZES:
            raise UserInputError(f"unknown split {split!r}: use {', '.join(SPLIT_SIZES)}")
        self.task, self.split, self.size, self.seed = TASKS[task], split, size, seed
        if holdout is None and task == "binary":
            holdout = self.task.attack_types[-1]
        if holdout is not None and holdout not in self.task.attack_types:
            raise UserInputError(f"holdout {holdout!r} is not an attack type: choose one of "
                                 f"{', '.join(self.task.attack_types)}")
        self.holdout = holdout if task == "binary" else None
        self.length = length or SPLIT_SIZES[split]

    @property
    def class_names(self) -> list[str]:
        return list(self.task.class_names)

    def __len__(self) -> int:
        return self.length

    def patterns(self, label: int) -> tuple[str, ...]:
        choices = self.task.class_patterns[label]
        if self.holdout is None or label == 0:
            return choices
        if self.split == "outset":
            return (self.holdout,)
        return tuple(pattern for pattern in choices if pattern != self.holdout)

    def __getitem__(self, index: int) -> tuple[Tensor, int, Tensor]:
        generator = seeded_generator(self.seed, self.split, index)
        label = index % len(self.task.class_names)  # balanced classes
        patterns = self.patterns(label)
        pattern = patterns[int(torch.randint(len(patterns), (1,), generator=generator))]
        texture = "waves" if self.split == "outset" and self.holdout is None else "blobs"
        image = clutter(self.size, generator, texture)
        side = int(self.size * (0.22 + 0.12 * float(torch.rand(1, generator=generator))))
        ink, support = pattern_mask(pattern, side, generator)
        top, left = torch.randint(0, self.size - side + 1, (2,), generator=generator).tolist()
        colour, second = torch.rand(2, 3, 1, 1, generator=generator)
        # The pattern's two colours differ clearly, whatever they are (its shape is the evidence).
        second = (colour + 0.5) % 1.0 if float((colour - second).abs().max()) < 0.4 else second
        patch = ink * colour + (1 - ink) * second
        region = image[:, top:top + side, left:left + side]
        image[:, top:top + side, left:left + side] = support * patch + (1 - support) * region
        mask = torch.zeros(self.size, self.size)
        mask[top:top + side, left:left + side] = support
        return image, label, mask


SYNTHETIC_EXAMPLE_PREFIX = "synthetic: "


def synthetic_examples() -> list[str]:
    """Example names for the app, one per pattern: "synthetic: disc (bona fide)", …"""
    return [f"{SYNTHETIC_EXAMPLE_PREFIX}{pattern}" + (" (bona fide)" if pattern == "disc" else "")
            for pattern in PATTERNS]


def synthetic_example(name: str, size: int = 64) -> Image.Image:
    """The test-split image of one pattern (seed 0), as a PIL image, for a named example."""
    pattern = name.removeprefix(SYNTHETIC_EXAMPLE_PREFIX).removesuffix(" (bona fide)")
    if pattern not in PATTERNS:
        raise UserInputError(f"unknown synthetic example {name!r}: choose one of "
                             f"{', '.join(synthetic_examples())}")
    image, _, _ = SyntheticDataset("7class", "test", size, seed=0)[PATTERNS.index(pattern)]
    return Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


# --- Folders -------------------------------------------------------------------------------------

def read_salience(path: Path, size: int) -> Tensor:
    """A salience map (.png, any size, or .npy 2-D) as size×size in [0, 1] (min-max)."""
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as opened:
                values = np.asarray(opened.convert("F"))
    except (OSError, ValueError) as error:
        raise UserInputError(f"salience map {path} cannot be read ({error}): replace it with a "
                             "PNG or a 2-D .npy array") from error
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        raise UserInputError(f"salience map {path} is not a finite 2-D map (shape "
                             f"{values.shape}): save one grey-level map per image")
    tensor = torch.from_numpy(values.astype(np.float32))[None, None]
    resized = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    low, high = resized.min(), resized.max()
    return (resized - low) / (high - low) if high > low else torch.zeros_like(resized)


class FolderDataset(Dataset):
    """An ImageFolder tree (``ROOT/CLASS/IMAGE``) with optional salience maps in a parallel tree
    (``SALIENCE/CLASS/IMAGE-STEM.png|.npy``). A missing map is an error naming the file, unless
    ``skip_missing`` (then those images are left out, and counted in ``skipped``)."""

    def __init__(self, root: str | Path, salience_root: str | Path | None = None, size: int = 224,
                 skip_missing: bool = False):
        self.root, self.size = Path(root), size
        if not self.root.is_dir():
            raise UserInputError(f"data folder {self.root} not found: give a folder with one "
                                 "sub-folder of images per class")
        classes = sorted(entry.name for entry in self.root.iterdir() if entry.is_dir())
        if not classes:
            raise UserInputError(f"data folder {self.root} has no class sub-folders: use the "
                                 "ImageFolder layout ROOT/CLASS/IMAGE")
        self.class_names = classes
        self.salience_root = Path(salience_root) if salience_root else None
        if self.salience_root is not None and not self.salience_root.is_dir():
            raise UserInputError(f"salience folder {self.salience_root} not found")
        self.samples: list[tuple[Path, int, Path | None]] = []
        self.skipped: list[Path] = []
        for label, name in enumerate(classes):
            for path in sorted((self.root / name).rglob("*")):
                if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                    continue
                salience = self._salience_path(path)
                if self.salience_root is not None and salience is None:
                    if not skip_missing:
                        relative = path.relative_to(self.root).with_suffix(".png")
                        raise UserInputError(
                            f"no salience map for {path}: expected {self.salience_root / relative}"
                            " (or .npy); add it, or pass --skip-missing-salience")
                    self.skipped.append(path)
                    continue
                self.samples.append((path, label, salience))
        if not self.samples:
            raise UserInputError(f"data folder {self.root} holds no images ({', '.join(IMAGE_SUFFIXES)})")

    def _salience_path(self, image_path: Path) -> Path | None:
        if self.salience_root is None:
            return None
        stem = self.salience_root / image_path.relative_to(self.root).with_suffix("")
        for suffix in SALIENCE_SUFFIXES:
            candidate = stem.with_name(stem.name + suffix)
            if candidate.is_file():
                return candidate
        return None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int, Tensor]:
        path, label, salience = self.samples[index]
        image = square(load_image(path), self.size)
        mask = (read_salience(salience, self.size) if salience is not None
                else torch.full((self.size, self.size), NO_MASK))
        return image, label, mask


# --- Crops of the bundled photos (unlabelled; the SHAM demonstration's training data) -------------

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
