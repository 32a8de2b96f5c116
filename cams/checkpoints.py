"""The checkpoint registry: one folder of ``NAME.safetensors`` + ``NAME.json`` (metadata) pairs.

The folder is ``./checkpoints`` unless ``CAMS_CHECKPOINTS`` names another; the checkpoints shipped
with the project (``assets/checkpoints``) are listed too, read-only. Writes are atomic: weights and
metadata go to temporary names in the same folder and are renamed into place, metadata last, and
the metadata records the weights' size and SHA-256, which listing checks (once per file version).
So a crash or a kill at any moment leaves the old checkpoint, the new one, an unlisted temporary
file, or an entry reported as broken; never a listed, half-written checkpoint. Listing skips broken
entries and says why.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from cams.errors import BACKBONE, WEIGHTS, Fix, UserInputError, shorten

CHECKPOINTS_ENV = "CAMS_CHECKPOINTS"
# The checkpoints shipped with the project: assets/checkpoints in the repository, installed by
# the wheel as cams/assets/checkpoints.
_PACKAGE = Path(__file__).resolve().parent
SHIPPED_DIR = (_PACKAGE if (_PACKAGE / "assets").is_dir() else _PACKAGE.parent) / "assets" / "checkpoints"
FORMAT = "cams-checkpoint/1"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Checkpoint:
    """A listed checkpoint: its name, backbone, files, and the metadata of its ``.json``."""

    name: str
    backbone: str
    weights_path: Path
    metadata_path: Path
    metadata: dict[str, Any]
    shipped: bool

    @property
    def label(self) -> str:
        """What a picker shows, e.g. ``sham-lite0 (shipped; sham loss, 600 steps)``."""
        recipe = self.metadata.get("recipe", {})
        details = ["shipped"] if self.shipped else []
        if self.metadata.get("construction"):
            details.append("constructed, class-uniform")
        if recipe.get("loss"):
            details.append(f"{recipe['loss']} loss")
        if recipe.get("steps"):
            details.append(f"{recipe['steps']} steps")
        return f"{self.name} ({'; '.join(details)})" if details else self.name


def checkpoint_dir() -> Path:
    """The user's registry folder: ``$CAMS_CHECKPOINTS`` or ``./checkpoints``."""
    return Path(os.environ.get(CHECKPOINTS_ENV) or "checkpoints")


def registry_dirs() -> list[Path]:
    return [checkpoint_dir(), SHIPPED_DIR]


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name or ""):
        raise UserInputError(f"checkpoint name {name!r} is not allowed",
                             Fix("name", "1–100 letters, digits, '.', '_' or '-', starting with a "
                                         "letter or digit"))
    return name


def unique_name(stem: str, taken: set[str]) -> str:
    """``stem``, or the first of ``stem-2``, ``stem-3``, … not in ``taken`` (which gains it)."""
    candidate, counter = stem, 1
    while candidate in taken:
        counter += 1
        candidate = f"{stem}-{counter}"
    taken.add(candidate)
    return candidate


def taken_names(directory: Path | None = None) -> set[str]:
    """Checkpoint names in ``directory`` (default: the user's registry) and the shipped one."""
    folders = [Path(directory) if directory is not None else checkpoint_dir(), SHIPPED_DIR]
    return {path.stem for folder in folders if folder.is_dir() for path in folder.glob("*.json")}


def free_name(name: str, directory: Path | None = None) -> str:
    """``name`` if no checkpoint has it yet, else the first free ``name-2``, ``name-3``, …"""
    return unique_name(name, taken_names(directory))


def check_free(name: str, directory: Path | None = None) -> None:
    """Refuse a name a checkpoint already has (before a run, so no training is lost)."""
    folder = Path(directory) if directory is not None else checkpoint_dir()
    if (folder / f"{name}.json").exists() or (SHIPPED_DIR / f"{name}.json").exists():
        raise UserInputError(f"checkpoint {name!r} already exists in "
                             f"{folder if (folder / f'{name}.json').exists() else SHIPPED_DIR}",
                             Fix("name", value=free_name(name, folder)), "delete the old one")


def code_version() -> str:
    """``git describe`` of the working tree the code runs from, or "unknown"."""
    try:
        result = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def state_dict_sha256(model: nn.Module) -> str:
    """The SHA-256 of ``model``'s state dict: each tensor's name and bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _cached_sha256(path: Path, mtime_ns: int, size: int) -> str:
    """The digest of a file, computed once per (path, modification time, size)."""
    return _sha256(path)


def atomic_write(path: Path, write) -> None:
    """Call ``write(temporary_path)``, flush it to disk, then rename it to ``path``."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # not mkstemp's private 0600
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def save_checkpoint(state_dict: dict[str, Tensor], metadata: dict[str, Any], name: str,
                    directory: Path | None = None, half: bool = False,
                    overwrite: bool = False) -> Checkpoint:
    """Write ``NAME.safetensors`` then ``NAME.json`` atomically; returns the listed entry.

    ``metadata`` must hold at least ``backbone``; format, file facts, time and code version are
    added here. ``half`` stores floating tensors as float16 (half the size; loading casts back).
    """
    from safetensors.torch import save_file

    check_name(name)
    if "backbone" not in metadata:
        raise ValueError("checkpoint metadata needs a 'backbone'")
    directory = Path(directory) if directory is not None else checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / f"{name}.safetensors"
    metadata_path = directory / f"{name}.json"
    if not overwrite:
        check_free(name, directory)
    tensors = {key: (value.detach().half() if half and value.is_floating_point() else
                     value.detach()).contiguous().cpu() for key, value in state_dict.items()}
    atomic_write(weights_path, lambda path: save_file(tensors, str(path), metadata={"name": name}))
    record = {"format": FORMAT, "name": name, **metadata,
              "weights": weights_path.name, "weights_bytes": weights_path.stat().st_size,
              "weights_sha256": _sha256(weights_path),
              "dtype": "float16" if half else "float32",
              "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "code_version": metadata.get("code_version") or code_version()}
    atomic_write(metadata_path, lambda path: path.write_text(json.dumps(record, indent=2) + "\n"))
    return _entry(metadata_path, shipped=directory.resolve() == SHIPPED_DIR)


def _entry(metadata_path: Path, shipped: bool) -> Checkpoint:
    """Read and check one ``.json``; raises ValueError saying what is wrong."""
    try:
        metadata = json.loads(metadata_path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"unreadable metadata ({error})") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} metadata file")
    weights_path = metadata_path.with_name(str(metadata.get("weights", "")))
    if weights_path.parent != metadata_path.parent or weights_path.suffix != ".safetensors":
        raise ValueError("its 'weights' entry is not a .safetensors file beside it")
    if not weights_path.is_file():
        raise ValueError(f"weights file {weights_path.name} is missing")
    stat = weights_path.stat()
    if stat.st_size != metadata.get("weights_bytes"):
        raise ValueError(f"weights file {weights_path.name} has {stat.st_size} "
                         f"bytes, the metadata says {metadata.get('weights_bytes')}")
    # Same size is not enough: an overwrite killed between the weights and the metadata leaves
    # new weights beside old metadata.
    if _cached_sha256(weights_path, stat.st_mtime_ns, stat.st_size) != metadata.get("weights_sha256"):
        raise ValueError(f"weights file {weights_path.name} does not match its metadata's SHA-256 "
                         "(an interrupted save?): train or save it again")
    return Checkpoint(name=metadata_path.stem, backbone=str(metadata.get("backbone")),
                      weights_path=weights_path, metadata_path=metadata_path, metadata=metadata,
                      shipped=shipped)


def list_checkpoints(backbone: str | None = None) -> tuple[list[Checkpoint], list[str]]:
    """Every valid checkpoint (of ``backbone``, if given), user folder first; and one line per
    broken entry, e.g. ``checkpoints/x.json: weights file x.safetensors is missing``."""
    entries: list[Checkpoint] = []
    problems: list[str] = []
    seen: set[str] = set()
    for directory in registry_dirs():
        if not directory.is_dir():
            continue
        shipped = directory.resolve() == SHIPPED_DIR
        for metadata_path in sorted(directory.glob("*.json")):
            if metadata_path.name.startswith("."):  # temporary files and resumable run states
                continue
            try:
                entry = _entry(metadata_path, shipped)
            except ValueError as error:
                problems.append(f"{metadata_path}: {error}")
                continue
            if entry.name in seen:  # a user's checkpoint shadows a shipped one of the same name
                continue
            seen.add(entry.name)
            if backbone is None or entry.backbone == backbone:
                entries.append(entry)
        for weights_path in sorted(directory.glob("*.safetensors")):
            if not weights_path.name.startswith(".") and not weights_path.with_suffix(
                    ".json").exists():
                problems.append(f"{weights_path}: weights without metadata (a save interrupted "
                                "between its two files): save it again, or delete it")
    return entries, problems


STALE_TMP_S = 3600.0  # a save's temporary file older than this was left by a killed process


def tidy_registry(directory: Path | None = None, now: float | None = None) -> list[Path]:
    """Remove what killed saves left in a registry folder: its ``.*.tmp`` files older than
    ``STALE_TMP_S`` (a save takes seconds; a younger one may be another process's, still
    writing). Returns the files removed. Weights without metadata are listed by
    ``list_checkpoints`` as problems, not removed: they may be a user's."""
    folder = Path(directory) if directory is not None else checkpoint_dir()
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for path in sorted(folder.glob(".*.tmp")):
        try:
            if now - path.stat().st_mtime > STALE_TMP_S:
                path.unlink()
                removed.append(path)
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    return removed


def find_checkpoint(name: str, backbone: str | None = None) -> Checkpoint:
    """The listed checkpoint called ``name`` (of ``backbone``, if given), or a UserInputError."""
    entries, _ = list_checkpoints()
    for entry in entries:
        if entry.name == name:
            if backbone is not None and entry.backbone != backbone:
                raise UserInputError(f"checkpoint {name!r} is for backbone {entry.backbone}, not "
                                     f"{backbone}", Fix(BACKBONE, value=entry.backbone),
                                     Fix(WEIGHTS, "another checkpoint"))
            return entry
    known = ", ".join(entry.name for entry in entries) or "none yet"
    raise UserInputError(f"no checkpoint called {shorten(name)!r} in {checkpoint_dir()} (known: "
                         f"{known})",
                         Fix(WEIGHTS, "a listed checkpoint"))

