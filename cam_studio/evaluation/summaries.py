"""What every report section shares: Markdown and CSV tables, box plots, the unit of a crop (its
photo), values grouped and averaged per unit, and the cells of paired comparisons."""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from cam_studio.evaluation.statistics import (
    bootstrap_interval,
    mean_std,
    paired_comparison,
    rank_sum,
    unit_means,
)

SIGNIFICANCE = 0.05
CROP_ID = re.compile(r"(?P<photo>.+)/crop-[0-9]+")  # imagedata.sources names crops PHOTO/crop-I


def p_value(a: list[float], b: list[float]) -> float:
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return rank_sum(torch.tensor(a), torch.tensor(b)).p_value


def format_mean_std(values: list[float], digits: str = ".2e") -> str:
    mean, std = mean_std(values)
    return f"{mean:{digits}} ± {std:{digits}}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_table(out: Path, name: str, header: list[str], rows: list[list[str]]) -> str:
    """Write ``NAME.csv`` and ``NAME.md``; returns the Markdown."""
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


def paired_cells(a: dict[str, float], b: dict[str, float]) -> list[str]:
    """Signed-rank p and mean difference [95 %] of a − b over the units both have."""
    units = [unit for unit in a if unit in b]
    result = paired_comparison([a[unit] for unit in units], [b[unit] for unit in units])
    return [f"{result.p_value:.1e}" + (" *" if result.p_value < SIGNIFICANCE else ""),
            f"{result.mean_difference:+.2e} [{result.low:+.2e}, {result.high:+.2e}]"]


def interval_cell(units: dict[str, float]) -> str:
    low, high = bootstrap_interval(list(units.values()))
    return f"{mean_std(list(units.values()))[0]:.2e} [{low:.2e}, {high:.2e}]"


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
    return (f"{len(images)} crops of {len(units)} photos, the photo the unit of the paired tests "
            "and intervals")


def describe(change: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in change.items()) or "none (the base)"
