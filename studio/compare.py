"""The Compare tab: per request, load checkpoints (cached), compare, write the downloads.

``app.py`` only builds the page and wires its events here; the same functions serve the API
(``api_name="explain"``) and the tests. Every user mistake raises ``UserInputError`` with a
one-line message (the app shows it with ``gr.Error``).
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cams.backbones import (
    CLEAN_WEIGHTS,
    REGISTRY,
    Backbone,
    load_backbone,
    parse_class,
    weights_available_offline,
)
from cams.checkpoints import list_checkpoints
from cams.engine import applies
from cams.errors import UserInputError
from cams.images import EXAMPLES, example_image, load_image
from cams.methods import METHODS
from imagedata.synthetic import SYNTHETIC_EXAMPLE_PREFIX, synthetic_example, synthetic_examples
from studio.comparison import Comparison, compare_checkpoints

NONE = "none"
CACHE_SIZE = 3  # backbones (with their checkpoints) kept in memory at once


class BackboneCache:
    """A bounded, thread-safe LRU cache of loaded checkpoints, keyed by (backbone, weights).

    Loading happens outside the lock's critical path for other keys: one lock per key, so two
    users asking for different backbones load in parallel and the same backbone loads once.
    """

    def __init__(self, capacity: int = CACHE_SIZE):
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], Backbone] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    def get(self, name: str, weights: str | None, upload: bool = False) -> Backbone:
        """Backbone ``name`` with ``weights``: "clean" or a registry name, or with ``upload`` the
        path of an uploaded file (a picker's value is never read as a path)."""
        key = (name, weights or CLEAN_WEIGHTS)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            try:
                backbone = load_backbone(name, weights, files=upload)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self._items[key] = backbone
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            return backbone

    def __len__(self) -> int:
        return len(self._items)


def backbone_choices() -> list[tuple[str, str]]:
    """(label, name) for the dropdown: the registered backbones (those without offline
    pretrained weights say so, and how many registry checkpoints they have), then any other
    backbone that has checkpoints in the registry."""
    counts: dict[str, int] = {}
    for entry in list_checkpoints()[0]:
        counts[entry.backbone] = counts.get(entry.backbone, 0) + 1
    choices = []
    for name in [*REGISTRY, *sorted(set(counts) - set(REGISTRY))]:
        if name in REGISTRY and weights_available_offline(name):
            choices.append((name, name))
        else:
            choices.append((f"{name} (no pretrained weights offline; "
                            f"{counts.get(name, 0)} checkpoints)", name))
    return choices


def checkpoint_choices(backbone: str, allow_none: bool = False) -> list[tuple[str, str]]:
    """(label, value) for a checkpoint picker: [none,] clean, then the registry's checkpoints of
    ``backbone`` (read afresh, so a newly trained one appears without a restart)."""
    choices = [("none", NONE)] if allow_none else []
    choices.append(("clean (pretrained)", CLEAN_WEIGHTS))
    return choices + [(entry.label, entry.name) for entry in list_checkpoints(backbone)[0]]


def checkpoint_weights(choice: str | None, upload: str | None) -> tuple[str, bool]:
    """What a picker asks for, and whether it is an upload: an uploaded ``.safetensors`` wins;
    otherwise the picker's value, "clean" or a registry checkpoint name."""
    if upload:
        if not str(upload).endswith(".safetensors"):
            raise UserInputError("a checkpoint upload must be a .safetensors file")
        return str(upload), True
    return choice or CLEAN_WEIGHTS, False


@dataclass
class CompareResponse:
    grid: np.ndarray
    table: list[list]
    predictions: str
    files: list[str]
    comparison: Comparison

    @property
    def class_choices(self) -> list[str]:
        """A's top-5 as picker entries, e.g. "285: Egyptian cat (38.1%)", then every class
        ("0: tench", …) so that typing in the picker searches all of them."""
        top = [f"{c}: {name} ({p:.1%})" for c, name, p in self.comparison.top_k(0)]
        return top + [f"{c}: {name}" for c, name in enumerate(self.comparison.backbones[0].class_names)]


def example_choices() -> list[str]:
    """The bundled photos, then one synthetic-task image per pattern (for the synthetic models)."""
    return list(EXAMPLES) + synthetic_examples()


def resolve_image(image: str | Image.Image | None, example: str | None) -> tuple[Image.Image, str]:
    if image is not None and not isinstance(image, str):
        return image.convert("RGB"), "upload"
    if image:
        return load_image(image, name=Path(image).name), Path(image).stem
    if example and example.startswith(SYNTHETIC_EXAMPLE_PREFIX):
        return synthetic_example(example), example.split()[1]
    if example:
        if example not in EXAMPLES:
            raise UserInputError(f"unknown example {example!r}: choose one of "
                                 f"{', '.join(example_choices())}")
        return example_image(example), example
    raise UserInputError("no image: upload one or pick an example")


def predictions_markdown(comparison: Comparison) -> str:
    lines = []
    for index, label in enumerate(comparison.labels):
        lines.append(f"\n**{label}**\n")
        lines += [f"{rank}. `{c}` {name} — {p:.1%}" for rank, (c, name, p)
                  in enumerate(comparison.top_k(index), 1)]
    agree = comparison.predictions_agree()
    if agree is not None:
        lines.append(f"\n**A and B {'agree' if agree else 'DISAGREE'} on the prediction.**")
    return "\n".join(lines)


def write_downloads(comparison: Comparison, grid: np.ndarray, stem: str) -> list[str]:
    """The grid (PNG), the maps of each checkpoint (NPZ, keys = method names), the table (CSV),
    in a fresh temporary folder of the app's own."""
    folder = Path(tempfile.mkdtemp(prefix="cams-"))
    files = [folder / f"{stem}-grid.png"]
    Image.fromarray(grid).save(files[0], compress_level=1)  # fast; the page shows this file
    for index, letter in zip(range(len(comparison.results)), "AB"):
        path = folder / f"{stem}-{letter}.npz"
        np.savez(path, **{k: v.astype(np.float32) for k, v in comparison.maps(index).items()})
        files.append(path)
    files.append(folder / f"{stem}-table.csv")
    files[-1].write_text(comparison.table_csv())
    return [str(path) for path in files]


def run_compare(cache: BackboneCache, image, example: str | None, backbone_name: str,
                checkpoint_a: str | None, upload_a: str | None,
                checkpoint_b: str | None, upload_b: str | None,
                target: str | None, false_class: str | None, methods: list[str] | None,
                opacity: float = 0.5, progress=None) -> CompareResponse:
    """One comparison request, from the page's values to what it shows."""
    picture, stem = resolve_image(image, example)
    if backbone_name not in REGISTRY and not list_checkpoints(backbone_name)[0]:
        raise UserInputError(f"unknown backbone {backbone_name!r}: pick one from the list")
    backbones = [cache.get(backbone_name, *checkpoint_weights(checkpoint_a, upload_a))]
    labels = [f"A: {Path(upload_a).name if upload_a else checkpoint_a or CLEAN_WEIGHTS}"]
    if upload_b or checkpoint_b not in (None, "", NONE):
        backbones.append(cache.get(backbone_name, *checkpoint_weights(checkpoint_b, upload_b)))
        labels.append(f"B: {Path(upload_b).name if upload_b else checkpoint_b}")
    names = backbones[0].class_names
    # Ticked methods that this head does not have (CAM) are left out, not refused.
    chosen = [name for name in methods if name not in METHODS
              or applies(METHODS[name], backbones[0])] if methods else None
    comparison = compare_checkpoints(
        backbones, labels, picture, chosen,
        parse_class(target or None, names, "target class"),
        parse_class(false_class or None, names, "false class"), progress=progress)
    grid = comparison.grid(opacity)
    return CompareResponse(grid=grid, table=[[f"{v:.3g}" if isinstance(v, float) else v
                                              for v in row] for row in comparison.table()],
                           predictions=predictions_markdown(comparison),
                           files=write_downloads(comparison, grid, stem), comparison=comparison)
