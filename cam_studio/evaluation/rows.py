"""A table's rows as typed dataclasses: its columns are the fields (in order), typed; the fields
marked ``key()`` name one unit of work (an image of a model, a training run).

    @dataclass(frozen=True)
    class SimilarityRow:
        backbone: str = key()
        image: str = key()
        method: str = ""
        mse: float = 0.0

Records are CSV (``records.py``): a row is written with ``cells`` and read back with ``parse``,
so the report reads ``row.mse`` as a float, never a string.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

KEY = "key"


def key(default: Any = "") -> Any:
    """A key field: part of the name of the unit of work the row belongs to."""
    return dataclasses.field(default=default, metadata={KEY: True})


@functools.cache
def columns(row_type: type) -> tuple[str, ...]:
    """The CSV columns of a row type, in order."""
    return tuple(field.name for field in dataclasses.fields(row_type))


@functools.cache
def key_columns(row_type: type) -> tuple[str, ...]:
    """The columns that name one unit of work, in order."""
    return tuple(field.name for field in dataclasses.fields(row_type) if field.metadata.get(KEY))


@functools.cache
def _types(row_type: type) -> dict[str, type]:
    return typing.get_type_hints(row_type)


def format_value(value: object) -> str:
    """A cell's text: floats round-trip exactly (``repr``), booleans as 0 / 1."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def cells(row: object) -> list[str]:
    """A row's CSV cells, in column order."""
    return [format_value(getattr(row, name)) for name in columns(type(row))]


def row_key(row: object) -> tuple[str, ...]:
    """The unit of work a row belongs to, as the text its key cells hold."""
    return tuple(format_value(getattr(row, name)) for name in key_columns(type(row)))


def parse(row_type: type, texts: dict[str, str]) -> Any:
    """A row read back from its CSV cells, each converted to its column's type."""
    types = _types(row_type)
    return row_type(**{name: types[name](texts[name]) if types[name] is not bool
                       else texts[name] == "1" for name in columns(row_type)})
