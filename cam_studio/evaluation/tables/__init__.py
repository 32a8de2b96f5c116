"""The evaluation's tables, one object each (``cam_studio.evaluation.work.Table``), in the order
they run and are reported. Adding a table is one module here and one entry below."""

from cam_studio.evaluation.tables import (
    attacks,
    coverage,
    faithfulness,
    fewclass,
    modvid,
    runtime,
    sanity,
    similarity,
    susceptibility,
    training,
)
from cam_studio.evaluation.work import Table

TABLES: dict[str, Table] = {table.name: table for table in [
    similarity.TABLE, susceptibility.TABLE, faithfulness.FAITHFULNESS, faithfulness.ROAD,
    sanity.TABLE, attacks.TABLE, coverage.TABLE, fewclass.TABLE, runtime.TABLE, modvid.TABLE, training.TABLE]}
ROW_TYPES: tuple[type, ...] = tuple(row for table in TABLES.values() for row in table.rows)
