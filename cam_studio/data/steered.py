"""Images steered towards every class, for a fine-tune's prediction-keeping term.

The bundled photos show a few dozen of ImageNet's 1000 classes, so a term that keeps a fine-tuned
model's predictions on their crops never sees most classes' boundaries: a fool trained on them
changes predictions between fine-grained classes no photo shows (docs/results/coverage-pilots,
"The way back to the clean model"). ``steered_images`` makes ``count`` images that sit near those
boundaries: training crops, each moved by a few Adam steps on its pixels towards one class (the
classes in a seeded order, each in turn), by the model the fine-tune starts from — so the
images lie near that class's region, with its neighbours in the top-5. They are made once per
(model, count, seed, steps, size) and kept as 8-bit images in a cache folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import Dataset

from cam_studio.data.items import NO_MASK
from cam_studio.data.order import seeded_generator

STEER_LR = 0.025  # Adam's step on pixels in [0, 1]
BATCH = 32


def cache_dir() -> Path:
    """``$CAMS_CACHE`` or ``$XDG_CACHE_HOME/cam-studio`` (``~/.cache/cam-studio``)."""
    if "CAMS_CACHE" in os.environ:
        return Path(os.environ["CAMS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cam-studio"


def steer(model: nn.Module, normalise: Callable[[Tensor], Tensor], images: Tensor,
          targets: Tensor, steps: int, lr: float = STEER_LR) -> Tensor:
    """``images`` (in [0, 1]) after ``steps`` Adam steps on their pixels that lower the
    cross-entropy of ``model`` to ``targets``, kept in [0, 1]."""
    moved = images.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([moved], lr=lr)
    for _ in range(steps):  # (the gradient to the pixels only: the model's are left alone)
        loss = nn.functional.cross_entropy(model(normalise(moved)), targets)
        (moved.grad,) = torch.autograd.grad(loss, moved)
        optimiser.step()
        with torch.no_grad():
            moved.clamp_(0, 1)
    return moved.detach()


def steered_images(model: nn.Module, normalise: Callable[[Tensor], Tensor], crops: Dataset,
                   classes: int, count: int, seed: int, steps: int, key: str) -> Tensor:
    """``count`` crops of ``crops`` (uint8, N×3×H×W), the i-th steered towards class
    ``order[i % classes]`` of a seeded order of the classes; cached under ``key`` (which names the
    model and the crops) and the arguments."""
    digest = hashlib.sha256(f"{key}|{classes}|{count}|{seed}|{steps}|{STEER_LR}".encode())
    path = cache_dir() / "steered" / f"{digest.hexdigest()[:20]}.safetensors"
    if path.is_file():
        return load_file(str(path))["images"]
    order = torch.randperm(classes, generator=seeded_generator(seed, "steered-classes"))
    targets = order[torch.arange(count) % classes]
    was_training = model.training
    model.eval()  # (batch norms on their running statistics, not the steered batch's)
    made = []
    try:
        for first in range(0, count, BATCH):
            batch = range(first, min(first + BATCH, count))
            images = torch.stack([crops[i][0] for i in batch])
            made.append((steer(model, normalise, images, targets[first:batch.stop], steps)
                         * 255).round().to(torch.uint8))
    finally:
        model.train(was_training)
    images = torch.cat(made)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({"images": images, "targets": targets}, str(partial))
    partial.replace(path)
    return images


class Interleaved(Dataset):
    """``first``'s items at even indices and ``second``'s (cycled) at odd ones: half of every
    batch from each, ``len(first)`` pairs."""

    def __init__(self, first: Dataset, second: Tensor):
        self.first, self.second = first, second
        self.class_names: list[str] = list(getattr(first, "class_names", []))

    def __len__(self) -> int:
        return 2 * len(self.first)

    def __getitem__(self, index: int) -> tuple[Tensor, int, Tensor]:
        if index % 2 == 0:
            return self.first[index // 2]
        image = self.second[(index // 2) % len(self.second)].float() / 255
        return image, -1, torch.full(image.shape[1:], NO_MASK)
