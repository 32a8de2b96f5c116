"""Drawing maps: colour overlays on the input and a labelled grid (matplotlib, no screen needed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

COLORMAP = "jet"  # the CAM literature's convention: red = most salient


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5,
            colormap: str = COLORMAP) -> np.ndarray:
    """Blend an H×W map in [0, 1] over an H×W×3 RGB image in [0, 1]: H×W×3 in [0, 1]."""
    colours = matplotlib.colormaps[colormap](np.clip(heatmap, 0, 1))[..., :3]
    return (1 - opacity) * image + opacity * colours


def grid_figure(image: np.ndarray, maps: dict[str, np.ndarray], captions: dict[str, str],
                title: str, opacity: float = 0.5, columns: int = 4) -> Figure:
    """The input, then one overlay per map, each labelled with its name and optional caption."""
    panels = [("input", image, "")] + [
        (name, overlay(image, heatmap, opacity), captions.get(name, ""))
        for name, heatmap in maps.items()]
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.5 * rows + 0.6),
                                squeeze=False, layout="constrained")
    for axis in axes.flat:
        axis.axis("off")
    for axis, (name, picture, caption) in zip(axes.flat, panels):
        axis.imshow(picture)
        axis.set_title(f"{name}\n{caption}" if caption else name, fontsize=10)
    mappable = plt.cm.ScalarMappable(cmap=COLORMAP, norm=matplotlib.colors.Normalize(0, 1))
    figure.colorbar(mappable, ax=axes, fraction=0.02, pad=0.01, shrink=0.6,
                    label="normalised salience")
    figure.suptitle(title, fontsize=12)
    return figure


def rows_figure(image: np.ndarray, rows: list[tuple[str, dict[str, np.ndarray]]], title: str,
                opacity: float = 0.5) -> Figure:
    """One row per (label, maps): the input, then the overlays in order; rows given the same
    methods (checkpoints A and B) line up column by column."""
    width = max(len(maps) for _, maps in rows) + 1
    figure, axes = plt.subplots(len(rows), width, figsize=(2.4 * width, 2.7 * len(rows) + 0.6),
                                squeeze=False, layout="constrained")
    for axis in axes.flat:
        axis.axis("off")
    for row_axes, (label, maps) in zip(axes, rows):
        row_axes[0].imshow(image)
        row_axes[0].set_title(label, fontsize=9, fontweight="bold")
        for axis, (name, heatmap) in zip(row_axes[1:], maps.items()):
            axis.imshow(overlay(image, heatmap, opacity))
            axis.set_title(name, fontsize=9)
    mappable = plt.cm.ScalarMappable(cmap=COLORMAP, norm=matplotlib.colors.Normalize(0, 1))
    figure.colorbar(mappable, ax=axes, fraction=0.02, pad=0.01, shrink=0.8,
                    label="normalised salience")
    figure.suptitle(title, fontsize=11)
    return figure


def figure_to_array(figure: Figure, dpi: int = 90) -> np.ndarray:
    """Render a figure to an H×W×3 uint8 array (and close it)."""
    figure.set_dpi(dpi)
    figure.canvas.draw()
    picture = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return picture


def save_figure(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
