"""What every report section shares: Markdown and CSV tables, box plots, the unit of a crop (its
photo), values grouped and averaged per unit, and the cells of paired comparisons."""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from cam_studio.evaluation.statistics import (
    PairedComparison,
    equivalence_p,
    holm,
    mean_std,
    paired_comparison,
    rank_sum,
    t_interval,
    unit_means,
)

CROP_ID = re.compile(r"(?P<photo>.+)/crop-[0-9]+")  # imagedata.sources names crops PHOTO/crop-I


def p_value(a: list[float], b: list[float]) -> float:
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return rank_sum(torch.tensor(a), torch.tensor(b)).p_value


def format_mean_std(values: list[float], digits: str = ".2e") -> str:
    mean, std = mean_std(values)
    return f"{mean:{digits}} ± {std:{digits}}"


@dataclass(frozen=True)
class Equivalence:
    """A TOST p-value for a paired difference within ±``margin`` (``equivalence_p``)."""

    p_value: float
    margin: float


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def p_text(p: float) -> str:
    return "—" if math.isnan(p) else f"{p:.2g}"


def effect_text(comparison: PairedComparison, digits: str = "+.2e") -> str:
    """The mean difference and its 95 % t interval."""
    if math.isnan(comparison.low):
        return f"{comparison.mean_difference:{digits}}"
    return (f"{comparison.mean_difference:{digits}} [{comparison.low:{digits}}, "
            f"{comparison.high:{digits}}]")


def expanded(header: list[str], rows: list[list[Any]]) -> tuple[list[str], list[list[str]]]:
    """A table whose cells may be ``PairedComparison``s or ``Equivalence``s, as text: a
    comparison becomes its effect [95 % t interval], its signed-rank p and its Holm-adjusted p
    (Holm over every comparison of the table: one family), an equivalence its TOST p."""
    comparisons = [cell for row in rows for cell in row if isinstance(cell, PairedComparison)]
    adjusted = dict(zip(map(id, comparisons), holm([c.p_value for c in comparisons])))
    # What each column holds: the first special cell found in it, else plain text.
    special = [next((row[i] for row in rows if i < len(row)
                     and isinstance(row[i], PairedComparison | Equivalence)), None)
               for i in range(len(header))]
    kinds = [type(cell) if cell is not None else str for cell in special]
    names: list[str] = []
    for label, cell in zip(header, special):
        if isinstance(cell, PairedComparison):
            names += [f"{label}: Δ [95 % t]", f"{label}: signed-rank p", f"{label}: Holm p"]
        elif isinstance(cell, Equivalence):
            names.append(f"{label}: within ±{cell.margin:g}, TOST p")
        else:
            names.append(label)
    text_rows = []
    for row in rows:
        cells: list[str] = []
        for cell, kind in zip(row, kinds):
            if isinstance(cell, PairedComparison):
                cells += [effect_text(cell), p_text(cell.p_value), p_text(adjusted[id(cell)])]
            elif kind is PairedComparison:  # no comparison in this row
                cells += ["—", "—", "—"]
            elif isinstance(cell, Equivalence):
                cells.append(p_text(cell.p_value))
            else:
                cells.append(str(cell))
        text_rows.append(cells)
    return names, text_rows


def write_table(out: Path, name: str, header: list[str], rows: list[list[Any]]) -> str:
    """Write ``NAME.csv`` and ``NAME.md`` (comparisons expanded with Holm within the table,
    ``expanded``); returns the Markdown."""
    header, rows = expanded(header, rows)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    (out / f"{name}.csv").write_text(buffer.getvalue())
    text = markdown_table(header, rows)
    (out / f"{name}.md").write_text(text)
    return text


def grouped(rows: list[Any], *keys: str, value: str) -> dict[tuple, list[float]]:
    """``value`` of the rows, grouped by the values of ``keys``."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        groups[tuple(getattr(row, key) for key in keys)].append(float(getattr(row, value)))
    return groups


def unit_of(image: str) -> str:
    """The independent unit an image belongs to: its photo for a crop, else the image itself."""
    match = CROP_ID.fullmatch(image)
    return match["photo"] if match else image


def per_unit(rows: list[Any], *keys: str, value: str) -> dict[tuple, dict[str, float]]:
    """Per key, the mean of ``value`` per unit (``unit_of`` the row's image)."""
    groups: dict[tuple, tuple[list[float], list[str]]] = defaultdict(lambda: ([], []))
    for row in rows:
        values, units = groups[tuple(getattr(row, key) for key in keys)]
        values.append(float(getattr(row, value)))
        units.append(unit_of(row.image))
    return {key: unit_means(*pair) for key, pair in groups.items()}


def paired(a: dict[str, float], b: dict[str, float]) -> PairedComparison:
    """a − b over the units both have (``paired_comparison``)."""
    units = [unit for unit in a if unit in b]
    return paired_comparison([a[unit] for unit in units], [b[unit] for unit in units])


def equivalent(a: dict[str, float], b: dict[str, float], margin: float) -> Equivalence:
    """Whether a − b over the units both have lies within ±``margin`` (paired TOST)."""
    units = [unit for unit in a if unit in b]
    return Equivalence(equivalence_p([a[unit] - b[unit] for unit in units], margin), margin)


def interval_cell(units: dict[str, float], digits: str = ".2e") -> str:
    """The mean over units with its 95 % t interval."""
    estimate = t_interval(list(units.values()))
    if math.isnan(estimate.low):
        return f"{estimate.mean:{digits}}"
    return f"{estimate.mean:{digits}} [{estimate.low:{digits}}, {estimate.high:{digits}}]"


def box_plot(path: Path, groups: dict[str, list[float]], title: str, ylabel: str,
             log: bool = False) -> None:
    figure, axis = plt.subplots(figsize=(1.2 * len(groups) + 2, 4), layout="constrained")
    axis.boxplot(list(groups.values()), tick_labels=list(groups), showmeans=True)
    axis.set_title(title)
    axis.set_ylabel(ylabel)
    if log and all(min(values) > 0 for values in groups.values()):
        axis.set_yscale("log")
    axis.tick_params(axis="x", rotation=30)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def units_text(rows: list[Any], short: bool = False) -> str:
    images = {row.image for row in rows}
    units = {unit_of(image) for image in images}
    if len(units) == len(images):
        return f"{len(images)} images"
    if short:
        return f"{len(images)} crops / {len(units)} photos"
    return (f"{len(images)} crops of {len(units)} photos, the photo the unit of every interval "
            "and paired test")


def describe(change: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in change.items()) or "none (the base)"
