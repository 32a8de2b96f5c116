"""Reading what users give: weights files (never unpickled beyond tensors), their ``.json``
metadata, and class names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from timm.data import ImageNetInfo
from torch import Tensor

from cams.errors import CLASS_NAMES, WEIGHTS, Fix, UserInputError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
STATE_DICT_FIX = Fix(WEIGHTS, "a .safetensors file, or a torch.save'd model.state_dict() of "
                              "tensors only")


def _flat_tensor_dict(loaded: Any, path: Path) -> dict[str, Tensor]:
    if not isinstance(loaded, dict) or not loaded:
        raise UserInputError(f"weights file {path} holds {type(loaded).__name__}, not a state "
                             "dict", STATE_DICT_FIX)
    bad = [key for key, value in loaded.items() if not isinstance(value, Tensor)]
    if bad:
        raise UserInputError(f"weights file {path} holds more than tensors (e.g. {bad[0]!r})",
                             STATE_DICT_FIX)
    # Models saved through DataParallel / DDP prefix every key with "module.".
    if all(key.startswith("module.") for key in loaded):
        loaded = {key.removeprefix("module."): value for key, value in loaded.items()}
    for key, value in loaded.items():  # NaN or Inf weights give NaN logits and blank maps
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            kind = "NaN" if bool(torch.isnan(value).any()) else "infinite"
            raise UserInputError(f"weights file {path.name} has {kind} weights in {key!r}",
                                 "the training that wrote it diverged: use an earlier "
                                 "checkpoint, or train again with a lower learning rate")
    return loaded


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a weights file safely: ``.safetensors``, or a pickle of tensors only (never unpickled
    beyond what ``torch.load(weights_only=True)`` allows). Returns the tensors and any metadata."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"weights file {path} not found", STATE_DICT_FIX)
    if path.stat().st_size == 0:
        raise UserInputError(f"weights file {path} is empty (0 bytes)", "copy it again")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise UserInputError(f"weights file {path} is not a valid .safetensors file "
                                 f"({error})", "export it again") from error
        return _flat_tensor_dict(tensors, path), metadata
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, …
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(f"weights file {path} cannot be read safely ({first_line[:160]})",
                             STATE_DICT_FIX) from error
    return _flat_tensor_dict(loaded, path), {}


def sidecar_metadata(path: Path | None) -> dict[str, Any]:
    """The ``.json`` beside a weights file (the checkpoint registry writes one), or {}."""
    if path is None or not path.with_suffix(".json").is_file():
        return {}
    try:
        metadata = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


CLASS_NAMES_FIX = Fix(CLASS_NAMES, "a UTF-8 text file with one name per line, or a JSON list")


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a file: a JSON list, or plain text with one name per line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read class names from {path} ({error})",
                             CLASS_NAMES_FIX) from error
    try:
        names = json.loads(text)
    except ValueError:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not isinstance(names, list) or not names:
        raise UserInputError(f"{path} holds no class names", CLASS_NAMES_FIX)
    return [str(name) for name in names]


def class_names_from(metadata: dict[str, Any], num_classes: int,
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
