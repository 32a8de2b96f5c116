"""ImageFolder trees (``ROOT/CLASS/IMAGE``) with optional salience maps in a parallel tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from cam_studio.data.items import IMAGE_SUFFIXES, NO_MASK, square
from cams.errors import UserInputError
from cams.images import load_image

SALIENCE_SUFFIXES = (".png", ".npy")


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
