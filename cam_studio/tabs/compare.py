"""The Compare tab: per request, load checkpoints (cached), compare, write the downloads.

``cam_studio.page.compare`` builds the tab and wires its events here; the same functions serve
the API (``api_name="explain"``) and the tests. A request is one ``CompareRequest``; every user
mistake raises ``UserInputError`` (the page words it, ``cam_studio.tabs.words``).
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import torch
from PIL import Image

from cam_studio.data.examples import EXAMPLES, example_image
from cam_studio.data.synthetic import SYNTHETIC_EXAMPLE_PREFIX, synthetic_example, synthetic_examples
from cam_studio.tabs.access import ACCESS
from cam_studio.tabs.batching import Batcher
from cam_studio.tabs.comparison import (
    Comparison,
    compare_checkpoints,
    explain_images,
    image_comparison,
)
from cam_studio.tabs.progress import within_budget
from cam_studio.tabs.report import image_sha256, report_html
from cam_studio.tabs.tempspace import app_space
from cam_studio.tabs.values import number
from cams.backbones import (
    CLEAN_WEIGHTS,
    DEFAULT_BACKBONE,
    REGISTRY,
    WEIGHT_SUFFIXES,
    Backbone,
    load_backbone,
    randomisable_blocks,
    weights_available_offline,
)
from cams.checkpoints import list_checkpoints
from cams.engine import applies, needs
from cams.errors import FALSE_CLASS, INPUT_SIZE, MEAN, STD, TARGET, WEIGHTS, Fix, UserInputError
from cams.errors import METHODS as METHODS_INPUT
from cams.folding import has_batch_norms
from cams.images import load_image
from cams.methods import (
    DEFAULT_METHODS,
    MANY_PASS_KINDS,
    RETARGETABLE,
    TARGETS,
    method_row,
    targeted_name,
)
from cams.randomise import randomised_name
from cams.render import COLORMAP, COLORMAPS, SIGNED_STYLES, check_colormap, label_corner, overlay

NONE = "none"
CACHE_SIZE = 3  # backbones (with their checkpoints) kept in memory at once
RESULTS_SIZE = 16  # comparisons kept at most (~7 MB each for Lite0 A and B: maps, inputs)
# and the memory they hold at most ($CAMS_RESULTS_MEMORY_MB, default 64 MB: 9 of Lite0 A and
# B, enough for each of a classroom's requests to meet its page's follow-ups, the A | B
# slider and the link, which come right after it).
RESULTS_BUDGET = int(float(os.environ.get("CAMS_RESULTS_MEMORY_MB", 64)) * 1e6)
# The loaded models' memory at most (their parameters and buffers; $CAMS_MODEL_MEMORY_MB, default
# 2 GB): a Lite0 is 19 MB, a ResNet-50 100 MB, an uploaded 40,000-class head more.
MODEL_BUDGET = int(float(os.environ.get("CAMS_MODEL_MEMORY_MB", 2000)) * 1e6)


class LruCache:
    """A bounded, thread-safe LRU cache whose values are computed once per key: requests for a
    missing key wait for its one computation (a class of 30 asking for the same example computes
    it once), while different keys compute in parallel (one lock per key being computed).

    Bounded by ``capacity`` entries and, with ``size`` (bytes of a value), by ``budget`` bytes
    (the newest entry always stays); ``on_evict(value)`` hears of each value evicted."""

    def __init__(self, capacity: int, budget: int | None = None,
                 size: Callable[[Any], int] | None = None,
                 on_evict: Callable[[Any], None] | None = None):
        self.capacity, self.budget, self.size, self.on_evict = capacity, budget, size, on_evict
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            try:
                value = compute()
            finally:
                with self._lock:
                    self._computing.pop(key, None)
            size = self.size(value) if self.size is not None else 0
            with self._lock:
                self._items[key], self._sizes[key] = value, size
                evicted = []
                while len(self._items) > self.capacity or (
                        self.budget is not None and len(self._items) > 1
                        and sum(self._sizes.values()) > self.budget):
                    old, old_value = self._items.popitem(last=False)
                    self._sizes.pop(old, None)
                    evicted.append(old_value)
            for old_value in evicted:  # outside the lock: the hook may use other caches
                if self.on_evict is not None:
                    self.on_evict(old_value)
            return value

    def discard(self, unwanted: Callable[[Any], bool]) -> int:
        """Drop every entry whose value is ``unwanted``; returns how many."""
        with self._lock:
            keys = [key for key, value in self._items.items() if unwanted(value)]
            for key in keys:
                self._items.pop(key)
                self._sizes.pop(key, None)
        return len(keys)

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def __len__(self) -> int:
        return len(self._items)


def tensor_bytes(tensors) -> int:
    """The memory ``tensors`` hold."""
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def model_bytes(backbone: Backbone) -> int:
    """The memory a loaded model holds: its parameters' and buffers' bytes, twice for a model
    with batch norms (the copy with them folded that its first explanation makes,
    ``cams.folding``)."""
    own = tensor_bytes([*backbone.model.parameters(), *backbone.model.buffers()])
    return own * (2 if has_batch_norms(backbone.model) else 1)


class BackboneCache(LruCache):
    """The loaded checkpoints, keyed by (backbone, weights); the same one loads once."""

    def __init__(self, capacity: int = CACHE_SIZE, budget: int | None = None,
                 on_evict: Callable[[Backbone], None] | None = None):
        super().__init__(capacity, MODEL_BUDGET if budget is None else budget, model_bytes,
                         on_evict)

    def get(self, name: str, weights: str | None, upload: bool = False,
            options: dict[str, Any] | None = None) -> Backbone:
        """Backbone ``name`` with ``weights``: "clean" or a registry name, or with ``upload`` the
        path of an uploaded file (a picker's value is never read as a path); ``options``: the
        page's own-model settings (``own_model``)."""
        weights = weights or CLEAN_WEIGHTS
        if ACCESS.remote and name not in dict(backbone_choices()).values():
            raise UserInputError(f"{name!r} is not offered on this shared app: pick a listed "
                                 "backbone (typed timm, hf-hub: and torchvision: names work "
                                 "when the app runs on your own machine)")
        options = options or {}
        key = (name, weights, repr(sorted(options.items())))
        return super().get(key, lambda: load_backbone(name, weights, files=upload, **options))


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
    choices += [(entry.label, entry.name) for entry in list_checkpoints(backbone)[0]]
    return choices + (randomised_choices(backbone) if allow_none else [])


@functools.lru_cache(maxsize=64)
def randomised_choices(backbone: str) -> list[tuple[str, str]]:
    """B's sanity-check choices: the pretrained model re-drawn from the top block down to each
    block (``cams.randomise``); none for a backbone whose architecture cannot be built here."""
    try:
        names = randomisable_blocks(backbone)
    except Exception:  # a picker's choices never break the page (a model's constructor may
        return []      # refuse the meta device); loading it says what is wrong
    return [(f"sanity check: randomised from the top down to {name} ({index} of {len(names)} "
             "blocks)", randomised_name(name)) for index, name in enumerate(names, 1)]


def three_numbers(text: str | None, what: str) -> tuple[float, float, float] | None:
    """"0.485, 0.456, 0.406" (commas or spaces) as three numbers; blank: None."""
    if not (text or "").strip():
        return None
    parts = str(text).replace(",", " ").split()
    try:
        values = tuple(number(part, what, -1e6, 1e6) for part in parts)
    except UserInputError:
        values = ()
    if len(values) != 3 or (what == STD and min(values) <= 0):
        raise UserInputError(f"{text!r} is not three numbers", Fix(what, "R, G, B: e.g. "
                                                                         "0.485, 0.456, 0.406"))
    return values


def own_model(request: CompareRequest) -> dict[str, Any]:
    """``load_backbone`` keywords from the request's own-model settings (none given: none);
    refused on a shared app, whose models are the ones it offers."""
    given = (request.class_names, request.input_size, request.mean, request.std, request.layer)
    if all(value in (None, "", 0) for value in given):
        return {}
    if ACCESS.remote:
        raise UserInputError("your own model's settings are off on a shared app",
                             "run the app on your own machine to explain your own models")
    text = (request.class_names or "").strip()
    names = [name.strip() for name in (text.splitlines() if "\n" in text else text.split(","))
             if name.strip()] or None
    size = number(request.input_size, INPUT_SIZE, 0, 4096, integer=True, default=0)
    config = {"input_size": (3, size, size) if size else None,
              "mean": three_numbers(request.mean, MEAN), "std": three_numbers(request.std, STD)}
    return {"layer": (request.layer or "").strip() or None, "class_names": names,
            "data_config": {key: value for key, value in config.items() if value is not None}}


def checkpoint_weights(choice: str | None, upload: str | None) -> tuple[str, bool]:
    """What a picker asks for, and whether it is an upload: an uploaded weights file wins
    (``.safetensors``, or a ``.pth`` / ``.pt`` / ``.bin`` state dict read as tensors only);
    otherwise the picker's value, "clean" or a registry checkpoint name."""
    if upload:
        if not str(upload).lower().endswith(WEIGHT_SUFFIXES):
            raise UserInputError("a checkpoint upload must be a weights file",
                                 Fix(WEIGHTS, "a .safetensors, or a .pth / .pt / .bin state dict"))
        return str(upload), True
    return choice or CLEAN_WEIGHTS, False


@dataclass(frozen=True)
class CompareRequest:
    """One comparison as the page or the API asks for it, built once from their values (the
    field order is the API's parameter order) and passed whole.

    ``image``: an uploaded file's path or a PIL image (None: ``example``); ``checkpoint_a`` /
    ``checkpoint_b``: "clean" or a registry name (B "none": A alone), an upload winning;
    ``target`` / ``false_class``: a class index (a picker's value) or what a user typed (an
    index or a class name), None or "" for the default; ``methods``: None for the defaults;
    ``signed``: how TrueClassCAM, FalseClassCAM and DifferenceSalience are drawn; ``colormap``:
    the other maps' colours (``cams.render.COLORMAPS``); ``large``: the grid for a projector or
    a phone (two methods per row pair, large captions)."""

    image: str | Image.Image | None = None
    example: str | None = "chelsea"
    backbone: str = DEFAULT_BACKBONE
    checkpoint_a: str | None = CLEAN_WEIGHTS
    upload_a: str | None = None
    checkpoint_b: str | None = NONE
    upload_b: str | None = None
    target: int | str | None = None
    false_class: int | str | None = None
    methods: tuple[str, ...] | None = None
    opacity: float = 0.5
    faithfulness: bool = False
    signed: str = "minmax"
    colormap: str = COLORMAP
    large: bool = False
    # Your own model (local use): class names (one per line, or comma-separated), the input
    # side in pixels, the normalisation's mean and std (three numbers each), the target layer.
    class_names: str | None = None
    input_size: int | None = None
    mean: str | None = None
    std: str | None = None
    layer: str | None = None
    # The target as a choice: each ticked gradient method also explaining these scalars
    # (``cams.methods.TARGETS``: MeanDiff, MaxDiff, LSEDiff, Finer), as "METHOD · TARGET".
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.methods is not None and not isinstance(self.methods, tuple):
            object.__setattr__(self, "methods", tuple(self.methods))
        targets = tuple(self.targets or ())
        unknown = [target for target in targets if target not in TARGETS]
        if unknown:
            raise UserInputError(f"no target {unknown[0]!r}",
                                 Fix(METHODS_INPUT, "targets among " + ", ".join(TARGETS)))
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "opacity", number(self.opacity, "opacity", 0, 1, default=0.5))
        object.__setattr__(self, "faithfulness", bool(self.faithfulness))
        object.__setattr__(self, "signed", self.signed or "minmax")
        object.__setattr__(self, "colormap", check_colormap(self.colormap or COLORMAP))
        object.__setattr__(self, "large", bool(self.large))

    @property
    def chosen_methods(self) -> tuple[str, ...] | None:
        """The methods to compute: the ticked ones (None: the defaults) and, for each target,
        every ticked gradient method's map of it (the papers' named variants by their names)."""
        if not self.targets:
            return self.methods
        base = self.methods or DEFAULT_METHODS
        extra = [targeted_name(name, target) for name in base if name in RETARGETABLE
                 for target in self.targets]
        return tuple(dict.fromkeys([*base, *extra]))

    def draw(self, comparison: Comparison) -> np.ndarray:
        """The grid of ``comparison`` as this request looks at it."""
        return comparison.grid(self.opacity, signed=self.signed, colormap=self.colormap,
                               large=self.large)

    @property
    def compares_b(self) -> bool:
        return bool(self.upload_b) or self.checkpoint_b not in (None, "", NONE)

    def labels(self) -> list[str]:
        """How the grid and the table name A (and B)."""
        labels = [f"A: {Path(self.upload_a).name if self.upload_a else self.checkpoint_a or CLEAN_WEIGHTS}"]
        if self.compares_b:
            labels.append(f"B: {Path(self.upload_b).name if self.upload_b else self.checkpoint_b}")
        return labels


@dataclass
class CachedComparison:
    """A result-cache entry: the comparison, the backbones it was computed with (their ids are
    in its key: the page drops the entry when one of them leaves memory, so an id is never
    reused while it lives and no entry pins a model), and its display files per opacity."""

    comparison: Comparison
    backbones: list[Backbone]
    displays: dict[tuple, str]  # (opacity, signed style, colour map, large) → display file
    # Held while a look is drawn: a class asking for the same example at once draws it once
    # (the others wait for it instead of drawing it again side by side).
    drawing: threading.Lock = field(default_factory=threading.Lock, repr=False)


def entry_bytes(entry: CachedComparison) -> int:
    """The memory a cached comparison holds: its explanations' tensors."""
    return tensor_bytes(tensor for result in entry.comparison.results
                        for tensor in (*result.maps.values(), *result.layer_maps.values(),
                                       *result.class_maps.values(), result.inputs, result.logits))


@dataclass
class CompareResponse:
    display: str  # the grid as a JPEG file, for the page
    table: list[list]  # rows of TABLE_COLUMNS, numbers as numbers
    predictions: dict  # predictions_data
    files: list[str]
    comparison: Comparison
    views: tuple[str, str] | None = None  # one method's A and B maps, large
    left_out: tuple[str, ...] = ()  # ticked methods this model does not have, with what they need

    @property
    def left_out_line(self) -> str:
        """One line for the page: the ticked methods left out and why ("" when none were)."""
        if not self.left_out:
            return ""
        backbone = self.comparison.backbones[0].name
        return f"Left out for {backbone}: " + "; ".join(self.left_out) + "."

    @property
    def table_text(self) -> list[list]:
        """The table as the page shows it (numbers to 3 significant digits)."""
        return [[f"{v:.3g}" if isinstance(v, float) else v for v in row] for row in self.table]

    @property
    def class_choices(self) -> list[tuple[str, int]]:
        """A picker's (label, class index): A's top-5 first, e.g. ("285: Egyptian cat (38.1%)",
        285), then every other class ("0: tench", 0), so that typing searches all of them."""
        top = [(f"{c}: {name} ({p:.1%})", c) for c, name, p in self.comparison.top_k(0)]
        shown = {c for _, c in top}
        names = self.comparison.backbones[0].class_names
        return top + [(f"{c}: {name}", c) for c, name in enumerate(names) if c not in shown]


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


def predictions_data(comparison: Comparison) -> dict:
    """The top-5 of each checkpoint and whether A and B agree, as data (the API's answer)."""
    return {"checkpoints": [{"label": label, "top5": [
                {"class": c, "name": name, "probability": p}
                for c, name, p in comparison.top_k(index)]}
                for index, label in enumerate(comparison.labels)],
            "agree": comparison.predictions_agree()}


def predictions_markdown(predictions: dict) -> str:
    """``predictions_data`` as the page shows it."""
    lines = []
    for checkpoint in predictions["checkpoints"]:
        lines.append(f"\n**{checkpoint['label']}**\n")
        lines += [f"{rank}. `{top['class']}` {top['name']} — {top['probability']:.1%}"
                  for rank, top in enumerate(checkpoint["top5"], 1)]
    if predictions["agree"] is not None:
        verdict = "agree" if predictions["agree"] else "DISAGREE"
        lines.append(f"\n**A and B {verdict} on the prediction.**")
    return "\n".join(lines)


DISPLAY_QUALITY = 80  # JPEG quality of the grid the page shows (the PNG is in the downloads)


def display_file(grid: np.ndarray, stem: str) -> str:
    """The grid as the page shows it: a JPEG under a name of its own (Gradio copies a file into
    its cache atomically, which it does not do for an image it encodes itself: concurrent
    identical results could be served half-written), in the app's temporary space, which is
    swept on the way (``studio.tempspace``)."""
    space = app_space()
    space.sweep()
    path = space.served("display") / f"{stem}-{uuid.uuid4().hex[:12]}.jpg"
    Image.fromarray(grid).save(path, quality=DISPLAY_QUALITY)
    return str(path)


SLIDER_PX = 640  # width of the enlarged single-method A | B view


def method_views(comparison: Comparison, method: str, opacity: float, stem: str,
                 colormap: str = COLORMAP) -> tuple[str, str]:
    """One method's map by A and by B, enlarged for a projector: two JPEG files for the page's
    A | B slider (the same overlay as the grid's panels), each labelled A or B in its corner."""
    if len(comparison.results) < 2:
        raise UserInputError("pick a checkpoint B: the slider compares A's map with B's")
    if method not in comparison.methods:
        raise UserInputError(f"{method} is not among the compared methods: tick it first")
    picture = comparison.picture()
    height = round(SLIDER_PX * picture.shape[0] / picture.shape[1])
    files = []
    for index, letter in enumerate("AB"):
        view = overlay(picture, comparison.maps(index)[method], opacity, colormap)
        large = Image.fromarray(view).resize(
            (SLIDER_PX, height), Image.Resampling.BICUBIC)
        label_corner(large, f"{letter}: {comparison.labels[index].split(': ', 1)[-1]}",
                     right=letter == "B")
        files.append(display_file(np.asarray(large), f"{stem}-{method}-{letter}"))
    return files[0], files[1]


def write_downloads(comparison: Comparison, grid: np.ndarray, stem: str,
                    faithfulness: bool = False, image_sha256: str = "") -> list[str]:
    """The grid (PNG), the maps of each checkpoint (NPZ, keys = method names), the table (CSV)
    and the report to attach (one self-contained HTML file, ``cam_studio.tabs.report``), in a
    fresh folder of the app's temporary space (swept with it)."""
    space = app_space()
    space.sweep()
    folder = space.fresh(f"{stem}-")
    files = [folder / f"{stem}-grid.png"]
    Image.fromarray(grid).save(files[0])
    for index, letter in zip(range(len(comparison.results)), "AB"):
        path = folder / f"{stem}-{letter}.npz"
        np.savez_compressed(path, **{k: v.astype(np.float32)
                                     for k, v in comparison.maps(index).items()})
        files.append(path)
    files.append(folder / f"{stem}-table.csv")
    files[-1].write_text(comparison.table_csv(faithfulness))
    files.append(folder / f"{stem}-report.html")
    files[-1].write_text(report_html(comparison, grid, image_sha256, stem, faithfulness),
                         encoding="utf-8")
    return [str(path) for path in files]


@dataclass(frozen=True)
class Work:
    """One comparison to compute: the loaded checkpoints, their labels, the image, the methods
    (None: the defaults) and the classes (None: A's top-1 and strongest rival). ``inputs``: the
    image preprocessed for the backbone (1×3×H×W), given to a batched work in the request's own
    thread (a large upload's resize does not hold up the batch it joins)."""

    backbones: tuple[Backbone, ...]
    labels: tuple[str, ...]
    picture: Image.Image
    methods: tuple[str, ...] | None
    target: int | None
    false_class: int | None
    inputs: torch.Tensor | None = field(default=None, compare=False, repr=False)

    @property
    def batched(self) -> bool:
        """Computed with concurrent requests (``cam_studio.tabs.batching``): every method of one
        pass; those of many passes per image run alone, with their progress reports."""
        return not any(row.kind in MANY_PASS_KINDS
                       for row in map(method_row, self.methods or DEFAULT_METHODS) if row)

    @property
    def key(self) -> tuple:
        """What requests must share to share a pass: the checkpoints, the methods, and whether
        classes are given (a batch explains every image's given classes or none)."""
        return (tuple(map(id, self.backbones)), self.methods, self.target is None,
                self.false_class is None)


def compute_together(works: Sequence[Work]) -> list[Comparison]:
    """Comparisons of one key (``Work.key``), one forward pass and one VJP per checkpoint, of
    the works' preprocessed images. Each image's share of the batch is taken here too: taken in
    each request's own thread instead, 8 threads copying at once beside the next batch made a
    classroom slower (BENCHMARKS.md, "Where a classroom's batch waits")."""
    first = works[0]
    results = explain_images(list(first.backbones), [work.inputs for work in works],
                             list(first.methods) if first.methods else None,
                             [work.target for work in works],
                             [work.false_class for work in works])
    return [image_comparison(list(work.backbones), list(work.labels), results, index)
            for index, work in enumerate(works)]


BATCHER = Batcher(compute_together)


def run_compare(cache: BackboneCache, request: CompareRequest, progress=None,
                results: LruCache | None = None, downloads: bool = False,
                view: str | None = None) -> CompareResponse:
    """One comparison request, from the page's values to what it shows. With ``results``, a
    comparison already computed for the same image, checkpoints, classes and methods is reused
    (only the grid is drawn again, for the opacity); ``downloads`` also writes the files, and
    ``view`` (a method) draws that method's A and B maps large for the A | B slider; the
    request's ``faithfulness`` adds each map's deletion and insertion AUC and ROAD to the table
    (computed once per cached comparison)."""
    # A shared app's time limit, checked at each report of the long stages (masked passes,
    # faithfulness), whoever asked (the page, the API, the downloads).
    progress = within_budget(progress, ACCESS.compare_seconds)
    picture, stem = resolve_image(request.image, request.example)
    options = own_model(request)
    backbones = [cache.get(request.backbone, *checkpoint_weights(request.checkpoint_a,
                                                                 request.upload_a), options)]
    if request.compares_b:
        backbones.append(cache.get(request.backbone, *checkpoint_weights(request.checkpoint_b,
                                                                         request.upload_b),
                                   options))
    labels = request.labels()
    # Ticked methods that this model does not have (CAM, RefineCAM, LeGrad) are left out, not
    # refused, and the page says which.
    asked = request.chosen_methods
    chosen = [name for name in asked if method_row(name) is None
              or applies(method_row(name), backbones[0])] if asked else None
    left_out = tuple(f"{name}, which {needs(method_row(name))}" for name in asked or ()
                     if name not in (chosen or ()))
    target_class = backbones[0].class_index(request.target, TARGET)
    false_class_index = backbones[0].class_index(request.false_class, FALSE_CLASS)

    def compute() -> CachedComparison:
        work = Work(tuple(backbones), tuple(labels), picture, tuple(chosen) if chosen else None,
                    target_class, false_class_index)
        if work.batched:  # one pass for all, the image preprocessed here, before it joins
            comparison = BATCHER.submit(work.key, replace(work, inputs=backbones[0].preprocess(
                picture)))
        else:
            comparison = compare_checkpoints(backbones, labels, picture, chosen, target_class,
                                             false_class_index, progress=progress)
        return CachedComparison(comparison, backbones, {})

    # The decoded picture identifies the image (already in memory: no second read of an upload).
    key = (picture.size, image_sha256(picture), request.backbone,
           tuple(map(id, backbones)), tuple(labels), target_class, false_class_index,
           tuple(chosen) if chosen else None)
    entry = results.get(key, compute) if results is not None else compute()
    comparison = entry.comparison
    look = (request.opacity, request.signed, request.colormap, request.large)
    with entry.drawing:
        display = entry.displays.get(look)
        if display is None or not Path(display).exists():  # drawn once per look while it lasts
            display = entry.displays[look] = display_file(request.draw(comparison), stem)
    if request.faithfulness:  # computed once per cached comparison, with its own stage
        comparison.faithfulness(progress)
    files = (write_downloads(comparison, request.draw(comparison), stem, request.faithfulness,
                             key[1]) if downloads else [])
    return CompareResponse(display=display, table=comparison.table(request.faithfulness),
                           predictions=predictions_data(comparison), files=files,
                           comparison=comparison,
                           views=(method_views(comparison, view, request.opacity, stem,
                                               request.colormap) if view else None),
                           left_out=left_out)


# The one-click teaching cases, by their buttons' words: A clean, B a shipped fool, on chelsea (a
# validation photo: no fool was trained on it). The fool trained on one class per image, the one
# trained on every class (part of its change is common-mode), the constructed one (all of it).
FOOLING_CASES = {
    "a one-class fool": CompareRequest(example="chelsea",
                                       checkpoint_b="sham-one-class-efficientnet_lite0"),
    "an all-class fool": CompareRequest(example="chelsea",
                                        checkpoint_b="sham-all-classes-efficientnet_lite0"),
    "the constructed fool": CompareRequest(example="chelsea",
                                           checkpoint_b="constructed-sham-efficientnet_lite0"),
    "a sanity check": CompareRequest(example="chelsea", checkpoint_b=randomised_name("classifier")),
}


# A comparison as a link: the request's settings in the URL's query (bundled examples only: an
# upload is not on the server for long). Query key → the request's field.
LINK_KEYS = {"example": "example", "backbone": "backbone", "a": "checkpoint_a",
             "b": "checkpoint_b", "target": "target", "false": "false_class",
             "methods": "methods", "opacity": "opacity", "colours": "colormap",
             "signed": "signed", "large": "large", "faithfulness": "faithfulness",
             "targets": "targets"}


def link_query(request: CompareRequest, view: str | None = None) -> str:
    """``?example=chelsea&b=sham-one-class-efficientnet_lite0&…`` for a request: what differs from the
    page's start (and the example and B, always), methods comma-separated, switches as 1; ``view`` is the
    method the A | B slider shows."""
    start = CompareRequest()
    query = {}
    for key, name in LINK_KEYS.items():
        value = getattr(request, name)
        if key not in ("example", "b") and (value in (None, "") or value == getattr(start, name)
                           or (key == "methods" and tuple(value) == DEFAULT_METHODS)):
            continue
        if isinstance(value, list | tuple):
            value = ",".join(value)
        query[key] = "1" if value is True else str(value)
    if view and method_row(view):
        query["view"] = view
    return "?" + urlencode(query)


SWITCHES = ("large", "faithfulness")  # link keys that are on (1) or off


def link_request(query: dict[str, str]) -> CompareRequest:
    """The request a link's query describes (unknown keys and values ignored; methods as a
    list, opacity as a number clipped to [0, 1], a class as an index when it is one)."""
    settings: dict[str, Any] = {}
    for key, name in LINK_KEYS.items():
        if query.get(key) is None:
            continue
        value: Any = query[key]
        if key == "methods":
            value = tuple(name for name in value.split(",") if method_row(name))
        elif key == "targets":
            value = tuple(name for name in value.split(",") if name in TARGETS)
        elif key == "opacity":
            try:
                value = min(max(float(value), 0.0), 1.0)
            except ValueError:
                continue
        elif key in SWITCHES:
            value = value.strip().lower() in ("1", "true", "yes", "on")
        elif key == "colours" and value not in COLORMAPS:
            continue
        elif key == "signed" and value not in SIGNED_STYLES:
            continue
        elif key in ("target", "false") and value.strip().isdigit():
            value = int(value)
        settings[name] = value
    return CompareRequest(**settings)


def link_view(query: dict[str, str]) -> str:
    """The method a link asks the A | B slider to show (GradCAM when none or unknown)."""
    view = query.get("view", "GradCAM")
    return view if method_row(view) else "GradCAM"
