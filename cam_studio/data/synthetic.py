"""The synthetic ground-truth domain: one small pattern on textured clutter, its exact footprint
the salience map (the "human" map of Divisive Decisions' iris PAD tasks, made exact).

Images are generated on the fly, deterministic by (seed, split, index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from cam_studio.data.items import as_pil
from cam_studio.data.order import seeded_generator
from cams.errors import UserInputError

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
    return as_pil(image)
