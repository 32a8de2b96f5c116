"""The Hugging Face hub and the network: what is cached, what may be downloaded, and when not.

``HF_HUB_OFFLINE=1`` (or ``CAMS_OFFLINE=1``) never tries the network; ``HF_ENDPOINT`` names a
mirror; ``HF_HUB_CACHE`` the cache that is read first (huggingface_hub's own variables).
"""

from __future__ import annotations

import functools
import json
import os
import socket
from pathlib import Path
from typing import Any

import timm

from cams.errors import WEIGHTS, Fix, UserInputError

OFFLINE_ENV = "CAMS_OFFLINE"  # set to 1 to never try to download weights
HF_OFFLINE_ENV = "HF_HUB_OFFLINE"  # Hugging Face's own switch, honoured the same way
HF_HUB = "hf-hub:"  # timm's prefix for a model repository on the Hugging Face hub
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HUB_CACHE_FIX = Fix(None, "copy the repository into the Hugging Face cache (HF_HUB_CACHE) on a "
                          "connected machine")


def offline() -> bool:
    """Whether downloads are switched off (``CAMS_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    return any(os.environ.get(key, "").lower() not in ("", "0", "false", "no")
               for key in (OFFLINE_ENV, HF_OFFLINE_ENV))


def reachable(host: str | None = None, timeout_s: float = 3.0) -> bool:
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


def pretrained_cfg(architecture: str) -> dict[str, Any]:
    """timm's pretrained config of a model name ({} if it has none)."""
    cfg = timm.models.get_pretrained_cfg(architecture)
    return cfg.to_dict() if cfg is not None else {}


def cached_timm_weights(architecture: str) -> str | None:
    """A cached copy of a timm model's pretrained weights in the local hub cache."""
    repo = pretrained_cfg(architecture).get("hf_hub_id")
    return next(filter(None, (repo_file(repo, name, download=False)
                              for name in HUB_WEIGHT_FILES)), None) if repo else None


def repo_file(repo: str, filename: str, download: bool = True) -> str | None:
    """A file of a hub repository: the cached copy, else (when ``download`` and the hub is
    reachable) downloaded into the cache; None when neither."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
    cached = try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return cached
    if not download or not reachable():
        return None
    try:
        return hf_hub_download(repo, filename)
    except EntryNotFoundError:
        return None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise UserInputError(f"cannot get {filename} of {HF_HUB}{repo} ({type(error).__name__})",
                             "check the repository name", HUB_CACHE_FIX) from error


@functools.lru_cache(maxsize=16)
def hub_model_config(repo: str) -> tuple[str, dict[str, Any]]:
    """timm's architecture name and create_model arguments from a repository's config.json
    (what timm's own hf-hub loader reads: architecture, num_classes, label_names, model_args,
    pretrained_cfg), without any weights."""
    path = repo_file(repo, "config.json")
    if path is None:
        raise UserInputError(f"{HF_HUB}{repo} is not in the Hugging Face cache and the hub "
                             "cannot be reached", "connect once", HUB_CACHE_FIX)
    try:
        config = json.loads(Path(path).read_text())
        architecture = config["architecture"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserInputError(f"{HF_HUB}{repo}'s config.json is not a timm model config (it has "
                             "no 'architecture')", "give a timm repository") from error
    if not timm.is_model(architecture):
        raise UserInputError(f"{HF_HUB}{repo} is a {architecture!r}, which this timm "
                             f"{timm.__version__} does not know", "upgrade timm")
    cfg = {key: tuple(value) if isinstance(value, list) else value
           for key, value in config.get("pretrained_cfg", {}).items()}
    cfg.update(hf_hub_id=repo, source="hf-hub")
    for key in ("num_classes", "label_names", "label_descriptions"):
        if key in config:
            cfg[key] = config[key]
    arguments = {**config.get("model_args", {}), "pretrained_cfg": cfg}
    if "num_classes" in config:
        arguments["num_classes"] = config["num_classes"]
    return architecture, arguments


def hub_weights_file(repo: str) -> str:
    """A repository's weights file (cached, else downloaded), or a one-line error."""
    path = next(filter(None, (repo_file(repo, name) for name in HUB_WEIGHT_FILES)), None)
    if path is None:
        raise UserInputError(f"{HF_HUB}{repo} has no model.safetensors or pytorch_model.bin in "
                             "the cache", "connect once", Fix(WEIGHTS, "a weights file"))
    return path
