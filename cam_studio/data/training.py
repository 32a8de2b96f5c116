"""The training and validation sets a ``--data`` spec names.

``synthetic:binary`` / ``synthetic:7class`` (labelled, with exact masks), ``photos`` (crops of the
bundled photos, unlabelled; validated on the held-out photos), ``photos:wide`` (the same with
OpenCV's sample photos too), or an ImageFolder directory
(``DIR/CLASS/IMAGE``, or ``DIR/train`` + ``DIR/val``) with an optional salience tree beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from cam_studio.data.folders import FolderDataset
from cam_studio.data.order import seeded_generator
from cam_studio.data.photos import PhotoCrops, photo_set
from cam_studio.data.synthetic import SyntheticDataset

SYNTHETIC_PREFIX = "synthetic:"
PHOTOS = "photos"
WIDE_PHOTOS = "photos:wide"  # the train-wide photo set: the bundled photos and OpenCV's samples


@dataclass
class TrainingData:
    train: Dataset
    val: Dataset
    class_names: list[str]
    labelled: bool
    has_masks: bool
    size: int


def training_data(spec: str, size: int, seed: int = 0, *, val_size: int = 256,
                  holdout: str | None = None, salience: str | None = None,
                  skip_missing_salience: bool = False) -> TrainingData:
    """The sets of ``spec`` at ``size``×``size`` pixels; ``seed`` fixes every random choice."""
    if spec.startswith(SYNTHETIC_PREFIX):
        task = spec.removeprefix(SYNTHETIC_PREFIX)
        train = SyntheticDataset(task, "train", size, seed, holdout)
        val = SyntheticDataset(task, "val", size, seed, holdout, length=val_size)
        return TrainingData(train, val, train.class_names, True, True, size)
    if spec in (PHOTOS, WIDE_PHOTOS):
        train = PhotoCrops(photo_set("train" if spec == PHOTOS else "train-wide"), size, seed)
        # Validation: plain crops of photos never trained on (no mosaics or mixes).
        val = PhotoCrops(photo_set("validation"), size, seed + 1, length=val_size,
                         mosaics=False)
        return TrainingData(train, val, [], False, False, size)
    root = Path(spec)
    maps = Path(salience) if salience else None
    if (root / "train").is_dir() and (root / "val").is_dir():
        def folder(part: str) -> FolderDataset:
            return FolderDataset(root / part, maps / part if maps else None, size,
                                 skip_missing_salience)
        train, val = folder("train"), folder("val")
        names = train.class_names
    else:  # one tree: a seeded 10 % of it validates
        whole = FolderDataset(root, maps, size, skip_missing_salience)
        order = torch.randperm(len(whole), generator=seeded_generator(seed, "split"))
        cut = max(1, len(whole) // 10) if len(whole) > 1 else 0
        train, val = Subset(whole, order[cut:].tolist()), Subset(whole, order[:cut].tolist())
        names = whole.class_names
    if len(val) > val_size:  # e.g. ImageNet's 50,000: a seeded random val_size of them
        keep = torch.randperm(len(val), generator=seeded_generator(seed, "validation"))
        val = Subset(val, keep[:val_size].tolist())
    return TrainingData(train, val, names, True, maps is not None, size)
