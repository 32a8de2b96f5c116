"""Drawing maps: colour overlays on the input and labelled grids (no screen needed)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

COLORMAP = "jet"  # the CAM literature's convention: red = most salient


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5,
            colormap: str = COLORMAP) -> np.ndarray:
    """Blend an H×W map in [0, 1] over an H×W×3 RGB image in [0, 1]: H×W×3 in [0, 1]."""
    lookup = matplotlib.colormaps[colormap](np.linspace(0, 1, 256))[:, :3].astype(np.float32)
    colours = lookup[np.round(np.clip(heatmap, 0, 1) * 255).astype(np.uint8)]
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


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def _text_strip(text: str, width: int, height: int, size: int, bold: bool = False) -> Image.Image:
    strip = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(strip)
    font = _font(size)
    text_width = draw.textlength(text, font=font)
    draw.text(((width - text_width) / 2, (height - size) / 2 - 1), text,
              fill="darkred" if bold else "black", font=font)
    return strip


def _colorbar(height: int, width: int = 60) -> Image.Image:
    bar = Image.new("RGB", (width, height), "white")
    ramp = np.linspace(1, 0, height - 40)[:, None].repeat(14, axis=1)
    colours = (matplotlib.colormaps[COLORMAP](ramp)[..., :3] * 255).astype(np.uint8)
    bar.paste(Image.fromarray(colours), (8, 20))
    draw = ImageDraw.Draw(bar)
    font = _font(12)
    draw.text((26, 14), "1", fill="black", font=font)
    draw.text((26, height - 30), "0", fill="black", font=font)
    return bar


def compose_rows(image: np.ndarray, rows: list[tuple[str, dict[str, np.ndarray]]], title: str,
                 opacity: float = 0.5) -> np.ndarray:
    """A labelled grid as an H×W×3 uint8 array, drawn with PIL (fast enough for every request):
    per row the input then its overlays in order, so rows given the same methods (checkpoints A
    and B) line up column by column; a colour bar on the right and the title on top."""
    height, width = image.shape[:2]
    label_height, title_height = 20, 30
    columns = max(len(maps) for _, maps in rows) + 1
    cell_height = height + label_height
    canvas = Image.new("RGB", (columns * (width + 4) + 64, title_height + len(rows) * cell_height),
                       "white")
    canvas.paste(_text_strip(title, canvas.width, title_height, 15), (0, 0))
    for row, (label, maps) in enumerate(rows):
        top = title_height + row * cell_height
        panels = [(label, image, True)] + [(name, overlay(image, heatmap, opacity), False)
                                           for name, heatmap in maps.items()]
        for column, (name, picture, bold) in enumerate(panels):
            left = column * (width + 4)
            canvas.paste(_text_strip(name, width, label_height, 12, bold), (left, top))
            canvas.paste(Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8)),
                         (left, top + label_height))
    canvas.paste(_colorbar(canvas.height - title_height), (canvas.width - 62, title_height))
    return np.asarray(canvas)


def save_figure(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
