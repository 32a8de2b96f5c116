"""Training runs in the background, for the app's Fine-tune tab: start, watch, cancel.

A ``TrainingJob`` runs ``fooling.train.train`` in a thread and records every progress event, so a
page can poll it and draw the curves; ``cancel()`` makes the run save its state and stop. One
run at a time: on a shared CPU a second one would only halve the speed of both.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cam_studio.tabs.access import ACCESS
from cam_studio.tabs.words import public_message
from cams.checkpoints import Checkpoint
from cams.errors import UserInputError
from fooling.config import TrainConfig
from fooling.train import Run, execute, prepare

MAX_ZIP_BYTES = 2 * 1024**3  # uncompressed size limit of an uploaded dataset
MAX_ZIP_MEMBERS = 200_000  # and of its number of files (each one a file and an inode)
# A run nobody has followed for this long (its page closed and not reopened, its API client
# gone) is cancelled, its state saved for Resume: it would otherwise hold the one training slot.
# A reload within it finds the run again. ``CAMS_UNWATCHED_S`` sets it.
UNWATCHED_S = float(os.environ.get("CAMS_UNWATCHED_S", 60))
_RUNNING = threading.Lock()
log = logging.getLogger("cam_studio.jobs")
_LATEST: list[TrainingJob] = []  # the last run started (one at a time), for a reloaded page


@dataclass
class TrainingJob:
    config: TrainConfig
    events: list[dict[str, Any]] = field(default_factory=list)
    result: Checkpoint | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    # what a page keeps in its browser to find its run again after a reload (unguessable: on a
    # shared app another visitor cannot attach to it or cancel it)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    scratch: Path | None = None  # an unpacked dataset upload: removed when the run ends
    watched: float = field(default_factory=time.monotonic)  # when a page or client last looked
    _cancel: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cancel(self) -> None:
        self._cancel.set()

    def watch(self) -> None:
        """A page or API client is following the run (it polls this while connected)."""
        self.watched = time.monotonic()

    @property
    def unwatched(self) -> bool:
        return time.monotonic() - self.watched > UNWATCHED_S

    def record(self, event: dict[str, Any]) -> None:
        """A progress event of the run, with when it came (``time.perf_counter``); a run left
        unwatched is cancelled here, at a step's end."""
        self.events.append({**event, "time": time.perf_counter()})
        if self.unwatched and not self._cancel.is_set():
            log.warning("training run %r unwatched for %.0f s: cancelled, its state saved",
                        self.config.name, UNWATCHED_S)
            self._cancel.set()

    def _run(self, run: Run, resume: bool) -> None:
        log.info("training run %r started (%d steps)", self.config.name, self.config.steps)
        try:
            self.result = execute(run, progress=self.record, cancel=self._cancel,
                                  resume=resume)
        except UserInputError as error:  # a cancel (its state saved) or a user's mistake
            self.error = public_message(error) + (
                f" (nobody followed it for {UNWATCHED_S:.0f} s)" if self.unwatched else "")
        except Exception as error:  # shown in the page (on a shared app without its text)
            log.exception("training run %r failed", self.config.name)
            self.error = ("training failed with an internal error (the server's log has it)"
                          if ACCESS.remote else
                          f"training failed: {type(error).__name__}: {error}")
        finally:
            log.info("training run %r ended after %.0f s: %s", self.config.name,
                     time.time() - self.started,
                     "saved" if self.result is not None else self.error or "stopped")
            remove_scratch(self.scratch)
            _RUNNING.release()


def remove_scratch(scratch: Path | None) -> None:
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


def start_job(config: TrainConfig, resume: bool = False,
              scratch: Path | None = None) -> TrainingJob:
    """Check and load ``config`` (its mistakes raise here, at once), then train it in a
    background thread; refuse while another run is going. ``scratch`` (an unpacked upload) is
    removed when the run ends or cannot start."""
    if not _RUNNING.acquire(blocking=False):
        remove_scratch(scratch)
        raise UserInputError("a training run is already going: wait for it or cancel it")
    try:
        run = prepare(config, resume=resume)
    except BaseException:
        remove_scratch(scratch)
        _RUNNING.release()
        raise
    job = TrainingJob(config, scratch=scratch)
    job._thread = threading.Thread(target=job._run, args=(run, resume), daemon=True,
                                   name=f"train-{config.name}")
    job._thread.start()
    _LATEST[:] = [job]
    return job


def job_for(token: str | None) -> TrainingJob | None:
    """The run a page started (its ``token``), while it is the latest one; else None."""
    latest = _LATEST[0] if _LATEST else None
    if latest is not None and token and secrets.compare_digest(latest.token, str(token)):
        return latest
    return None


def unpack_dataset_zip(archive: str | Path, destination: Path) -> tuple[Path, Path | None]:
    """Unpack an uploaded ImageFolder zip safely; returns (images folder, salience folder or None).

    Layout: ``images/CLASS/…`` with an optional ``salience/CLASS/…`` beside it, or (without
    salience maps) the class folders at the top level; one enclosing folder is fine. Members that
    would land outside ``destination`` and archives over 2 GB unpacked are refused.
    """
    try:
        with zipfile.ZipFile(archive) as opened:
            members = opened.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise UserInputError(f"the dataset zip holds more than {MAX_ZIP_MEMBERS:,} files: "
                                     "use a folder on the server instead")
            if sum(member.file_size for member in members) > MAX_ZIP_BYTES:
                raise UserInputError("the dataset zip unpacks to more than 2 GB: use a folder on "
                                     "the server instead")
            root = destination.resolve()
            for member in members:
                target = (root / member.filename).resolve()
                if root not in target.parents and target != root:
                    raise UserInputError(f"the dataset zip holds an unsafe path {member.filename!r}"
                                         ": make the zip from the dataset folder itself")
            opened.extractall(root)
    except zipfile.BadZipFile as error:
        raise UserInputError(f"the dataset upload is not a valid zip file ({error})") from error
    folders = [entry for entry in destination.iterdir() if entry.is_dir()
               and entry.name != "__MACOSX"]
    if len(folders) == 1 and not (folders[0] / "images").is_dir() and folders[0].name not in (
            "images", "salience"):
        destination = folders[0]  # the zip wrapped everything in one folder
    images = destination / "images" if (destination / "images").is_dir() else destination
    salience = destination / "salience" if (destination / "salience").is_dir() else None
    if salience is not None and images == destination:
        raise UserInputError("the dataset zip has a salience/ folder beside its class folders: put "
                             "the class folders in images/ (images/CLASS/…, salience/CLASS/…)")
    return images, salience
