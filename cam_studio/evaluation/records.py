"""Per-image results, appended as they are computed: bounded memory, resumable, shardable.

Each table has one CSV file in ``OUT/records/``. Rows are appended a batch at a time, each batch
in one ``write`` to a file opened for appending; a run that is interrupted and started again reads
which (unit, image) keys are already there and computes only the rest. A half-written last line
(a kill mid-write) is dropped.

Under ``torchrun`` each process appends to its own shard, ``TABLE.rankR.csv``; every process
counts the rows of the table and of all its shards as done, so the work of a killed process is
resumed, not redone, by the next run (with any number of processes). ``merge`` (rank 0, once all
processes are finished) moves the shards' rows into ``TABLE.csv``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from cam_studio.data.distributed import current

# Each table's columns, and the columns that name one unit of work (one image, or one run).
SCHEMAS: dict[str, tuple[list[str], list[str]]] = {
    "similarity": (["backbone", "image", "method", "baseline", "mse"], ["backbone", "image"]),
    "susceptibility": (["backbone", "clean", "fooled", "attack_cam", "image", "method", "mse",
                        "entropy_clean", "entropy_fooled", "agree", "common_mode_share",
                        "gradcam_sham_mse_clean", "gradcam_sham_mse_fooled"],
                       ["clean", "fooled", "image"]),
    "faithfulness": (["model", "image", "method", "deletion_auc", "insertion_auc"],
                     ["model", "image"]),
    "road": (["model", "image", "method", "morf", "lerf", "combined"], ["model", "image"]),
    "attacks": (["attack", "checkpoint", "steps", "train_seconds", "agreement",
                 "salience_mse"], ["attack"]),
    "runtime": (["backbone", "device", "method", "batch", "standalone_ms", "marginal_ms",
                 "panel_ms"], ["backbone", "device"]),
    "modvid": (["backbone", "epsilon", "image", "method", "nissim", "attack_success"],
               ["backbone", "epsilon", "image"]),
    "training": (["loss", "seed", "holdout", "steps", "lr", "in_set_auroc", "out_of_set_auroc",
                  "in_set_accuracy"], ["loss", "seed", "holdout"]),
    "pointing": (["loss", "seed", "holdout", "method", "hit_rate"], ["loss", "seed", "holdout"]),
}


class RecordFile:
    """Table ``table``'s append-only CSV in ``folder``; ``done`` holds the keys (the values of the
    key columns) of the rows already written, by this run or an earlier one, by any process."""

    def __init__(self, folder: Path, table: str):
        self.table, self.folder = table, folder
        self.columns, self.key_columns = SCHEMAS[table]
        self.path = folder / f"{table}.csv"
        process = current()
        self.write_path = (self.path if process.world == 1
                           else folder / f"{table}.rank{process.rank}.csv")
        folder.mkdir(parents=True, exist_ok=True)
        self.done: set[tuple[str, ...]] = set()
        for path in [self.path, *self.shards()]:
            self.done.update(self.key(row) for row in self._read(path, own=path == self.write_path))
        if not self.write_path.exists() or self.write_path.stat().st_size == 0:
            self.write_path.write_text(",".join(self.columns) + "\n")

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob(f"{self.table}.rank*.csv"))

    def _read(self, path: Path, own: bool = False) -> list[dict[str, str]]:
        """The whole rows of ``path``; a cut-short last line is dropped (and, in the file this
        process writes, removed)."""
        if not path.exists() or path.stat().st_size == 0:
            return []
        text = path.read_text()
        if not text.endswith("\n"):  # a write cut short: keep whole lines only
            text = text[: text.rfind("\n") + 1]
            if own:
                path.write_text(text)
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or rows[0] != self.columns:
            raise ValueError(f"{path} has other columns than this run writes: delete it or "
                             "use another --out")
        return [dict(zip(self.columns, row)) for row in rows[1:] if row]

    def key(self, row: dict) -> tuple[str, ...]:
        return tuple(format_value(row[column]) for column in self.key_columns)

    def append(self, rows: Iterable[dict], path: Path | None = None) -> None:
        rows = list(rows)
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow([format_value(row[column]) for column in self.columns])
        data = buffer.getvalue().encode()
        # One write to a file opened for appending: a batch lands whole or (killed) not at all.
        descriptor = os.open(path or self.write_path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(descriptor, data)
            if written != len(data):
                raise OSError(f"short write to {path or self.write_path}: is the disk full?")
        finally:
            os.close(descriptor)
        self.done.update(self.key(row) for row in rows)

    def merge(self) -> None:
        """Move every shard's rows into the table (rank 0, after all processes have finished);
        rows of a key the table already holds are dropped, so nothing is counted twice."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.write_text(",".join(self.columns) + "\n")
        in_table = {self.key(row) for row in self._read(self.path, own=True)}
        for shard in self.shards():
            rows = [row for row in self._read(shard) if self.key(row) not in in_table]
            self.append(rows, self.path)
            in_table.update(self.key(row) for row in rows)
            shard.unlink()

    def rows(self) -> Iterator[dict[str, str]]:
        with self.path.open() as handle:
            yield from csv.DictReader(handle)


def merge_all(folder: Path) -> None:
    """Merge the shards of every table that has any (a no-op when there are none)."""
    for table in SCHEMAS:
        if any(folder.glob(f"{table}.rank*.csv")):
            RecordFile(folder, table).merge()


def format_value(value: object) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return str(value)
