"""Drawing maps: colour overlays on the input and labelled grids (no screen needed)."""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")
import numpy as np
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from cams.methods import DIFF_BASELINES, METHODS, signed_display_maps
from cams.metrics import baseline_similarity

COLORMAP = "jet"  # the CAM literature's convention: red = most salient
# For the signed class maps (t, f, t − f) when asked: blue negative, white zero, red positive.
DIVERGING = "RdBu_r"
SIGNED_STYLES = ("minmax", "diverging")  # how the signed maps are drawn


def signed_maps(result, index: int | slice = slice(None)) -> dict[str, Tensor]:
    """The class maps of an ``Explanation`` (TrueClassCAM, FalseClassCAM, DifferenceSalience)
    for a diverging colormap (``cams.methods.signed_display_maps``: 0.5 = zero)."""
    size = tuple(result.inputs.shape[-2:])
    return {name: signed_display_maps(layer[index], size)
            for name, layer in result.layer_maps.items() if METHODS[name].class_map}


def baseline_captions(maps: dict[str, Tensor]) -> dict[str, str]:
    """Under each DiffGradCAM(++) map of one image (1×H×W), its MSE to its GradCAM(++) baseline."""
    return {name: f"MSE vs {DIFF_BASELINES[name]} {float(value[0]):.1e}"
            for name, value in baseline_similarity(maps).items()}


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5,
            colormap: str = COLORMAP) -> np.ndarray:
    """Blend an H×W map in [0, 1] over an H×W×3 RGB image in [0, 1]: H×W×3 in [0, 1]."""
    lookup = matplotlib.colormaps[colormap](np.linspace(0, 1, 256))[:, :3].astype(np.float32)
    colours = lookup[np.round(np.clip(heatmap, 0, 1) * 255).astype(np.uint8)]
    return (1 - opacity) * image + opacity * colours


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def _text_strip(lines: list[str], width: int, height: int, size: int,
                colours: tuple[str, ...] = ("black", "dimgray")) -> Image.Image:
    """Centred lines of text on white; line i in ``colours[min(i, last)]``."""
    strip = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(strip)
    font = _font(size)
    top = (height - len(lines) * (size + 3)) / 2
    for index, line in enumerate(lines):
        text_width = draw.textlength(line, font=font)
        draw.text(((width - text_width) / 2, top + index * (size + 3)), line,
                  fill=colours[min(index, len(colours) - 1)], font=font)
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


Row = tuple[str, dict[str, np.ndarray], dict[str, str]]  # label, maps, captions under names


def compose_rows(image: np.ndarray, rows: list[Row], title: str, opacity: float = 0.5,
                 colormaps: dict[str, str] | None = None) -> np.ndarray:
    """A labelled grid as an H×W×3 uint8 array, drawn with PIL (fast enough for every request):
    per row the input then its overlays in order, so rows given the same methods (checkpoints A
    and B) line up column by column; each overlay is titled with its method name and an optional
    caption (an MSE); a colour bar on the right and the title (lines split at "\n") on top.
    ``colormaps`` names another colormap for some maps (``DIVERGING`` for signed ones: their
    caption says so)."""
    colormaps = colormaps or {}
    height, width = image.shape[:2]
    label_height = 36 if any(captions for _, _, captions in rows) or DIVERGING in colormaps.values() else 20
    title_lines = title.split("\n")
    title_height = 10 + 20 * len(title_lines)
    columns = max(len(maps) for _, maps, _ in rows) + 1
    cell_height = height + label_height
    canvas = Image.new("RGB", (columns * (width + 4) + 64, title_height + len(rows) * cell_height),
                       "white")
    canvas.paste(_text_strip(title_lines, canvas.width, title_height, 15, ("black",)), (0, 0))
    for row, (label, maps, captions) in enumerate(rows):
        top = title_height + row * cell_height
        panels = [([label], image, ("darkred",))] + [
            ([name, captions[name]] if name in captions
             else [name, "blue < 0 = white < red"] if colormaps.get(name) == DIVERGING else [name],
             overlay(image, heatmap, opacity, colormaps.get(name, COLORMAP)),
             ("black", "dimgray"))
            for name, heatmap in maps.items()]
        for column, (lines, picture, colours) in enumerate(panels):
            left = column * (width + 4)
            canvas.paste(_text_strip(lines, width, label_height, 12, colours), (left, top))
            canvas.paste(Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8)),
                         (left, top + label_height))
    canvas.paste(_colorbar(canvas.height - title_height), (canvas.width - 62, title_height))
    return np.asarray(canvas)
