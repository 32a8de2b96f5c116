"""What a page may reach on the server, and what its errors may say.

On loopback (the app's default, ``--host 127.0.0.1``) the person at the page is the person at the
server: any folder may be named. Bound beyond loopback or shared (``--host 0.0.0.0``,
``--share``), a stranger may be at the page: a server folder must lie under ``--data-root``
(checked after resolving links, so a symlink cannot lead out), error messages lose every
server path, and each job has a step / image limit. The page sets ``ACCESS`` at start-up; the
tabs' backends ask it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cams.errors import UserInputError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# Per-job limits of a shared app unless its owner sets others (a loopback app has none).
SHARED_MAX_STEPS, SHARED_MAX_IMAGES, SHARED_MAX_MINUTES = 1000, 200, 30
# A shared app's comparison at most (the default methods take about a second; every method with
# faithfulness took 154 s, SS-CAM alone minutes per image on a 2-core CPU).
SHARED_MAX_COMPARE_SECONDS = 120
# A shared app's fine-tuning batch and input side at most (size 512, batch 32 took 4.8 GB and
# 109 s a step on a 2-core CPU).
SHARED_MAX_BATCH, SHARED_MAX_SIZE = 64, 512
# An absolute POSIX or Windows path in a message (what a remote user must not see).
SERVER_PATH = re.compile(r"(?:[A-Za-z]:\\|(?<![\w.])/)[^\s'\",:;)\]]+")


@dataclass
class Access:
    """The running app's policy. ``remote``: reachable by others; ``data_root``: the one folder
    (and below) pages may name; ``max_steps`` / ``max_images``: per-job limits (None = none)."""

    remote: bool = False
    data_root: Path | None = None
    max_steps: int | None = None
    max_images: int | None = None
    max_minutes: float | None = None  # a job's estimated time at most
    max_compare_seconds: float | None = None  # a comparison's time at most

    def folder(self, text: str, what: str) -> Path:
        """The server folder a page named, if this policy allows it (relative names are taken
        under the data root); otherwise a one-line error that names no server path."""
        text = (text or "").strip()
        if not text:
            raise UserInputError(f"give the {what}")
        if self.data_root is None:
            if self.remote:
                raise UserInputError("server folders are off on a shared app: its owner can "
                                     "allow some with --data-root DIR")
            return Path(text).expanduser()
        root = self.data_root.resolve()
        path = (root / Path(text).expanduser()).resolve()  # an absolute text replaces root
        if path != root and root not in path.parents:
            raise UserInputError(f"the {what} must lie inside this app's data root (give a "
                                 "folder relative to it)")
        if not path.is_dir():
            raise UserInputError(f"the {what} {text!r} is not a folder inside the data root")
        return path

    def steps(self, steps: int) -> int:
        if self.max_steps is not None and steps > self.max_steps:
            raise UserInputError(f"at most {self.max_steps} steps per run on this server")
        return steps

    def images(self, limit: int | None) -> int | None:
        """An evaluation's image limit: the server's when none is given."""
        if self.max_images is None:
            return limit
        if limit is not None and limit > self.max_images:
            raise UserInputError(f"at most {self.max_images} images per evaluation on this server")
        return limit or self.max_images

    def minutes(self, seconds: float, what: str) -> None:
        """Refuse a job whose estimated time (on the 2-core CPU the estimates were measured on)
        is above this server's limit, before it starts."""
        if self.max_minutes is not None and seconds > 60 * self.max_minutes:
            raise UserInputError(f"this {what} would take about {seconds / 60:.0f} min; this "
                                 f"server allows {self.max_minutes:g} min a job",
                                 "choose fewer images, seeds, steps or tables")

    def compare_seconds(self, elapsed: float, left: float | None) -> None:
        """Stop a comparison that has run, or from its rate so far would run, past this server's
        limit (checked at each progress report of its long stages), in one line."""
        limit = self.max_compare_seconds
        if limit is None or (elapsed <= limit and (left is None or elapsed + left <= limit)):
            return
        raise UserInputError(f"this comparison would take {'over' if elapsed > limit else 'about'}"
                             f" {max(elapsed + (left or 0), limit):.0f} s; this server allows "
                             f"{limit:g} s a comparison",
                             "untick the slow methods (ScoreCAM, SS-CAM, IS-CAM, AblationCAM, "
                             "SESS, …) or faithfulness")

    def training_shape(self, batch: int, size: int | None) -> None:
        """A shared app's cap on a fine-tuning run's batch and input side (memory and time)."""
        if not self.remote:
            return
        if batch > SHARED_MAX_BATCH:
            raise UserInputError(f"at most batch {SHARED_MAX_BATCH} on this server")
        if size is not None and size > SHARED_MAX_SIZE:
            raise UserInputError(f"at most {SHARED_MAX_SIZE} px input size on this server")

    def public(self, message: str) -> str:
        """``message`` as a page may show it: unchanged on loopback, server paths hidden else."""
        return SERVER_PATH.sub("<server path>", message) if self.remote else message


ACCESS = Access()


def configure(host: str, share: bool, data_root: Path | None, max_steps: int | None,
              max_images: int | None, max_minutes: float | None = None,
              max_compare_seconds: float | None = None) -> Access:
    """Set the running app's policy from its command line (limits left as None are the shared
    defaults on a shared app, none on loopback)."""
    if data_root is not None and not data_root.is_dir():
        raise UserInputError(f"--data-root {data_root} is not a folder")
    ACCESS.remote = share or host not in LOOPBACK
    ACCESS.data_root = data_root
    ACCESS.max_steps = max_steps or (SHARED_MAX_STEPS if ACCESS.remote else None)
    ACCESS.max_images = max_images or (SHARED_MAX_IMAGES if ACCESS.remote else None)
    ACCESS.max_minutes = max_minutes or (SHARED_MAX_MINUTES if ACCESS.remote else None)
    ACCESS.max_compare_seconds = max_compare_seconds or (SHARED_MAX_COMPARE_SECONDS
                                                         if ACCESS.remote else None)
    return ACCESS
