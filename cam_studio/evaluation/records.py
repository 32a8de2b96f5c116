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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cam_studio.data.distributed import current
from cam_studio.evaluation.rows import cells, columns, key_columns, parse


class RecordFile:
    """The append-only CSV of the rows of type ``row`` (``cam_studio.evaluation.rows``; the file
    is named by its ``table``) in ``folder``; ``done`` holds the keys (the values of the key
    columns) of the rows already written, by this run or an earlier one, by any process."""

    def __init__(self, folder: Path, row: type):
        self.row, self.table, self.folder = row, row.table, folder
        self.columns, self.key_columns = list(columns(row)), list(key_columns(row))
        self.path = folder / f"{self.table}.csv"
        process = current()
        self.write_path = (self.path if process.world == 1
                           else folder / f"{self.table}.rank{process.rank}.csv")
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

    def key(self, cells: dict[str, str]) -> tuple[str, ...]:
        return tuple(cells[column] for column in self.key_columns)

    def append(self, rows: Iterable[Any], path: Path | None = None) -> None:
        """Append typed rows (``path``: another file, for ``merge``)."""
        self._append([cells(row) for row in rows], path)

    def _append(self, lines: list[list[str]], path: Path | None = None) -> None:
        if not lines:
            return
        buffer = io.StringIO()
        csv.writer(buffer).writerows(lines)
        data = buffer.getvalue().encode()
        # One write to a file opened for appending: a batch lands whole or (killed) not at all.
        descriptor = os.open(path or self.write_path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(descriptor, data)
            if written != len(data):
                raise OSError(f"short write to {path or self.write_path}: is the disk full?")
        finally:
            os.close(descriptor)
        self.done.update(tuple(line[self.columns.index(column)] for column in self.key_columns)
                         for line in lines)

    def merge(self) -> None:
        """Move every shard's rows into the table (rank 0, after all processes have finished);
        rows of a key the table already holds are dropped, so nothing is counted twice."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.write_text(",".join(self.columns) + "\n")
        in_table = {self.key(row) for row in self._read(self.path, own=True)}
        for shard in self.shards():
            rows = [row for row in self._read(shard) if self.key(row) not in in_table]
            self._append([[row[column] for column in self.columns] for row in rows], self.path)
            in_table.update(self.key(row) for row in rows)
            shard.unlink()


def read_rows(folder: Path, row: type) -> list[Any]:
    """The typed rows of ``row``'s table in ``folder`` ([] when it has none)."""
    path = folder / f"{row.table}.csv"
    if not path.exists():
        return []
    with path.open() as handle:
        return [parse(row, cells) for cells in csv.DictReader(handle)]


def merge_all(folder: Path, row_types: Iterable[type]) -> None:
    """Merge the shards of every table that has any (a no-op when there are none)."""
    for row in row_types:
        if any(folder.glob(f"{row.table}.rank*.csv")):
            RecordFile(folder, row).merge()
