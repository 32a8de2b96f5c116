"""Per-image results, appended as they are computed: bounded memory, and resumable.

Each table has one CSV file in ``OUT/records/``. Rows are appended (and flushed) a batch at a
time; a run that is interrupted and started again reads which (unit, image) pairs are already
there and computes only the rest. A half-written last line (a kill mid-write) is dropped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path


class RecordFile:
    """An append-only CSV of per-image rows with a fixed header; ``done`` holds the keys (the
    values of ``key_columns``) of the rows already written."""

    def __init__(self, path: Path, columns: list[str], key_columns: list[str]):
        self.path, self.columns, self.key_columns = path, columns, key_columns
        self.done: set[tuple[str, ...]] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > 0:
            self._recover()
        else:
            path.write_text(",".join(columns) + "\n")

    def _recover(self) -> None:
        text = self.path.read_text()
        if not text.endswith("\n"):  # a write cut short: keep whole lines only
            text = text[: text.rfind("\n") + 1]
            self.path.write_text(text)
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or rows[0] != self.columns:
            raise ValueError(f"{self.path} has other columns than this run writes: delete it or "
                             "use another --out")
        positions = [self.columns.index(column) for column in self.key_columns]
        self.done = {tuple(row[i] for i in positions) for row in rows[1:] if row}

    def key(self, row: dict) -> tuple[str, ...]:
        return tuple(str(row[column]) for column in self.key_columns)

    def append(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow([format_value(row[column]) for column in self.columns])
        with self.path.open("a") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
        self.done.update(self.key(row) for row in rows)

    def rows(self) -> Iterator[dict[str, str]]:
        with self.path.open() as handle:
            yield from csv.DictReader(handle)


def format_value(value: object) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return str(value)
