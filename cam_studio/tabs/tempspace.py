"""The one folder an app writes its temporary files to, kept to a bounded size.

Everything a page shows or offers is a file: the grid JPEG, the A | B views, the downloads (grid
PNG, two NPZ, CSV), and Gradio's copies of uploads and of what it serves. ``GRADIO_TEMP_DIR`` is
this space's ``SERVED`` folder (set by ``cam_studio.page`` before Gradio is imported), and the app
writes its files inside it, so that Gradio serves them without copying them again.
``TempSpace.sweep`` deletes what no page needs any more: every file older than ``keep_s``, and,
while the folder is over ``budget_mb``, the oldest files first; a file younger than ``in_use_s``
is never touched (a request may be writing or serving it). Empty folders go with their last file.

An app's own space (``app_space`` without ``$CAMS_TEMP_DIR``) is named after its process,
``cam-studio-<pid>-…``: it is removed when the process exits, and a space whose process is gone
(killed, so its exit never ran) is removed by the next app that starts.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SERVED = "gradio"  # the subfolder Gradio serves from (GRADIO_TEMP_DIR): files there are not copied
KEEP_S = 600  # a page's files stay this long (a download prepared 10 minutes ago is made again)
BUDGET_MB = 60  # above this, the oldest files go first
IN_USE_S = 10  # files younger than this are never deleted
SWEEP_EVERY_S = 5  # sweeps closer together than this are skipped
PREFIX = "cam-studio-"  # an app's own space: PREFIX, its process id, "-", a random tail


@dataclass
class TempSpace:
    """A folder of temporary files, swept by age and by size (see the module docstring)."""

    root: Path
    keep_s: float = KEEP_S
    budget_mb: float = BUDGET_MB
    in_use_s: float = IN_USE_S
    protected: Callable[[Path], bool] = field(default=lambda path: False, repr=False)
    _named: set[str] = field(default_factory=set, repr=False)  # as the walk spells them
    _last: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def folder(self, name: str) -> Path:
        """A named subfolder (made if missing; never swept away, even when empty)."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        self._named.update(map(str, [path, *path.parents]))
        return path

    def served(self, name: str) -> Path:
        """A named subfolder of what Gradio serves (its copies are not made again)."""
        return self.folder(f"{SERVED}/{name}")

    def fresh(self, prefix: str) -> Path:
        """A new, empty served subfolder of its own (one request's files)."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.served("requests")))

    def size_mb(self) -> float:
        return sum(size for _, _, size in self._walk()[1]) / 2**20

    def _walk(self) -> tuple[dict[str, float], list[tuple[float, str, int]]]:
        """One walk of the folder: each folder's modification time, and each file's
        (modification time, path, bytes). ``os.scandir`` and plain strings, as every upload
        asks for the size: 3-4× faster than ``os.walk`` with a ``Path`` per file (360 files)."""
        folders: dict[str, float] = {}
        files: list[tuple[float, str, int]] = []
        pending = [str(self.root)]
        while pending:
            directory = pending.pop()
            with contextlib.suppress(OSError):  # swept by another request meanwhile
                folders[directory] = os.stat(directory).st_mtime
                with os.scandir(directory) as entries:
                    for entry in entries:
                        with contextlib.suppress(OSError):
                            if entry.is_dir(follow_symlinks=False):
                                pending.append(entry.path)
                            elif entry.is_file(follow_symlinks=False):
                                stat = entry.stat(follow_symlinks=False)
                                files.append((stat.st_mtime, entry.path, stat.st_size))
        return folders, files

    def sweep(self, force: bool = False) -> int:
        """Delete what no page needs; returns how many files went."""
        now = time.time()
        if not force and now - self._last < SWEEP_EVERY_S:
            return 0
        with self._lock:
            self._last = now
            # Folders' ages before this sweep empties them (deleting a file touches its folder).
            folders, files = self._walk()
            files.sort()  # oldest first
            total = sum(size for _, _, size in files)
            removed = 0
            for changed, path, size in files:
                old = now - changed > self.keep_s
                over = total > self.budget_mb * 2**20 and now - changed > self.in_use_s
                # (protected: e.g. the files a page's layout itself shows)
                if not (old or over) or self.protected(Path(path)):
                    continue
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    total -= size
                    removed += 1
            # Empty folders go, deepest first, unless named (requests write into them) or made
            # so recently that a request may be about to fill them.
            for path, changed in sorted(folders.items(), key=lambda item: -item[0].count(os.sep)):
                if path not in self._named and now - changed > self.in_use_s:
                    with contextlib.suppress(OSError):
                        os.rmdir(path)  # only succeeds when empty
            return removed

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_SPACE: TempSpace | None = None


def app_space() -> TempSpace:
    """This process's space (one per process): ``$CAMS_TEMP_DIR`` (the deployer's folder, kept),
    or a new folder of this process's own in the system's temporary folder (removed at exit)."""
    global _SPACE
    if _SPACE is None:
        root = os.environ.get("CAMS_TEMP_DIR")
        if root:
            _SPACE = TempSpace(Path(root))
            _SPACE.root.mkdir(parents=True, exist_ok=True)
        else:
            remove_orphans(Path(tempfile.gettempdir()))
            _SPACE = TempSpace(Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")))
            atexit.register(_SPACE.remove)
    return _SPACE


def remove_orphans(folder: Path) -> None:
    """Remove the spaces in ``folder`` whose process is gone."""
    for path in folder.glob(f"{PREFIX}*-*"):
        match = re.fullmatch(rf"{PREFIX}(\d+)-.+", path.name)
        if match and path.is_dir() and not running(int(match[1])):
            shutil.rmtree(path, ignore_errors=True)


def running(pid: int) -> bool:
    """Whether a process ``pid`` exists (another user's included). On Windows, where signal 0
    would end the process, every process counts as running: orphans stay there."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's, or not a pid this system could have: left alone
    return True
