"""Drawing maps: colour overlays on the input and labelled grids (no screen needed)."""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")
import numpy as np
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from cams.methods import method_row, signed_display_maps

COLORMAP = "jet"  # the CAM literature's convention: red = most salient
# The colour maps a grid may use for its [0, 1] maps, by name (matplotlib's), with what they are
# good for; viridis and cividis are perceptually uniform and read the same under the common
# colour-vision deficiencies (cividis is optimised for deuteranopia), jet is not.
COLORMAPS = {"jet": "the CAM papers' convention (not colour-blind safe)",
             "viridis": "perceptually uniform, colour-blind safe",
             "cividis": "perceptually uniform, safe for red-green colour blindness",
             "turbo": "a smoother jet (not colour-blind safe)",
             "inferno": "perceptually uniform, dark to bright"}
# For the signed class maps (t, f, t − f) when asked: blue negative, white zero, red positive.
DIVERGING = "RdBu_r"
SIGNED_STYLES = ("minmax", "diverging")  # how the signed maps are drawn


def signed_maps(result, index: int | slice = slice(None)) -> dict[str, Tensor]:
    """The class maps of an ``Explanation`` (TrueClassCAM, FalseClassCAM, DifferenceSalience)
    for a diverging colormap (``cams.methods.signed_display_maps``: 0.5 = zero)."""
    size = tuple(result.inputs.shape[-2:])
    return {name: signed_display_maps(layer[index], size)
            for name, layer in result.layer_maps.items()
            if (row := method_row(name)) is not None and row.class_map}


def signed_arrays(result, index: int) -> dict[str, np.ndarray]:
    """Image ``index``'s class maps signed for the diverging colour map (``signed_maps``), as
    the arrays a grid draws."""
    return {name: values[0].cpu().numpy()
            for name, values in signed_maps(result, slice(index, index + 1)).items()}


def baseline_captions(similarity: dict[str, float]) -> dict[str, str]:
    """Under each DiffGradCAM(++) map of one image, its MSE to its GradCAM(++) baseline
    (``similarity``: ``cams.metrics.baseline_similarity`` of that image, computed once by the
    caller and shared with its tables)."""
    return {name: f"MSE vs {method_row(name).baseline} {value:.1e}"
            for name, value in similarity.items()}


def check_colormap(name: str) -> str:
    """``name`` if it is one of ``COLORMAPS`` (or the diverging one); else a one-line error."""
    if name not in COLORMAPS and name != DIVERGING:
        from cams.errors import UserInputError
        raise UserInputError(f"unknown colour map {name!r}: choose one of {', '.join(COLORMAPS)}")
    return name


@functools.lru_cache(maxsize=16)
def colour_table(colormap: str) -> np.ndarray:
    """``colormap``'s 256 colours (256×3 float32 RGB in [0, 1]), built once per name."""
    check_colormap(colormap)
    return matplotlib.colormaps[colormap](np.linspace(0, 1, 256))[:, :3].astype(np.float32)


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5,
            colormap: str = COLORMAP) -> np.ndarray:
    """Blend an H×W map in [0, 1] over an H×W×3 RGB image in [0, 1]: H×W×3 uint8, each pixel
    ``(1 − opacity) · image + opacity · colour(map)`` in [0, 255], rounded (the map read as one
    of the colour map's 256 levels)."""
    levels = np.round(np.clip(heatmap, 0, 1) * 255).astype(np.uint8)
    colours = colour_table(colormap) * np.float32(255 * opacity)
    blend = np.clip(image, 0, 1).astype(np.float32) * np.float32(255 * (1 - opacity))
    blend += np.take(colours, levels, axis=0) + np.float32(0.5)  # (np.take: 2× indexing's speed)
    return blend.astype(np.uint8)  # at most 255.5: truncation rounds


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def _text_strip(lines: tuple[str, ...], width: int, height: int, size: int,
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


def _colorbar(height: int, colormap: str, ends: tuple[str, str, str], size: int = 12,
              width: int = 64) -> Image.Image:
    """A vertical colour bar of ``colormap`` with its top, middle and bottom labelled."""
    bar = Image.new("RGB", (width, height), "white")
    ramp = np.linspace(1, 0, max(height - 40, 2))[:, None].repeat(14, axis=1)
    colours = (matplotlib.colormaps[colormap](ramp)[..., :3] * 255).astype(np.uint8)
    bar.paste(Image.fromarray(colours), (8, 20))
    draw = ImageDraw.Draw(bar)
    font = _font(size)
    top, middle, bottom = ends
    draw.text((26, 14), top, fill="black", font=font)
    draw.text((26, height // 2 - size // 2), middle, fill="black", font=font)
    draw.text((26, height - 20 - size), bottom, fill="black", font=font)
    return bar


# A panel's label, drawn once per text and size: a grid's method names recur in every grid (the
# strip is only pasted; 256 of 224 px are 7 MB).
_label_strip = functools.lru_cache(maxsize=256)(_text_strip)

Row = tuple[str, dict[str, np.ndarray], dict[str, str]]  # label, maps, captions under names


def compose_rows(image: np.ndarray, rows: list[Row], title: str, opacity: float = 0.5,
                 colormaps: dict[str, str] | None = None, colormap: str = COLORMAP,
                 font_size: int = 12) -> np.ndarray:
    """A labelled grid as an H×W×3 uint8 array, drawn with PIL (fast enough for every request):
    per row the input then its overlays in order, so rows given the same methods (checkpoints A
    and B) line up column by column; each overlay is titled with its method name and an optional
    caption (an MSE); a colour bar on the right and the title (lines split at "\n") on top.
    ``colormap`` draws the [0, 1] maps, ``colormaps`` names another for some (``DIVERGING``
    for signed ones: their caption says so, and a second colour bar shows its scale);
    ``font_size`` sets the captions' size (the title's is a quarter larger: large for a
    projector)."""
    colormaps = colormaps or {}
    check_colormap(colormap)
    height, width = image.shape[:2]
    shown = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    lines_per_label = 2 if (any(captions for _, _, captions in rows)
                            or DIVERGING in colormaps.values()) else 1
    label_height = 8 + (font_size + 4) * lines_per_label
    title_size = round(font_size * 1.25)
    title_lines = title.split("\n")
    title_height = 10 + (title_size + 5) * len(title_lines)
    columns = max(len(maps) for _, maps, _ in rows) + 1
    cell_height = height + label_height
    signed_bar = DIVERGING in colormaps.values()
    bars = 2 if signed_bar else 1
    bar_width = 20 + 4 * font_size
    canvas = Image.new("RGB", (columns * (width + 4) + bars * bar_width,
                               title_height + len(rows) * cell_height), "white")
    canvas.paste(_text_strip(tuple(title_lines), canvas.width, title_height, title_size,
                             ("black",)),
                 (0, 0))
    for row, (label, maps, captions) in enumerate(rows):
        top = title_height + row * cell_height
        panels = [([label], shown, ("darkred",))] + [
            ([name, captions[name]] if name in captions
             else [name, "blue < 0 = white < red"] if colormaps.get(name) == DIVERGING else [name],
             overlay(image, heatmap, opacity, colormaps.get(name, colormap)),
             ("black", "dimgray"))
            for name, heatmap in maps.items()]
        for column, (lines, picture, colours) in enumerate(panels):
            left = column * (width + 4)
            canvas.paste(_label_strip(tuple(lines), width, label_height, font_size, colours),
                         (left, top))
            canvas.paste(Image.fromarray(picture), (left, top + label_height))
    height_left = canvas.height - title_height
    left = canvas.width - bars * bar_width
    canvas.paste(_colorbar(height_left, colormap, ("max", "", "min"), font_size, bar_width),
                 (left, title_height))
    if signed_bar:  # the signed panels' own scale
        canvas.paste(_colorbar(height_left, DIVERGING, ("+", "0", "−"), font_size, bar_width),
                     (left + bar_width, title_height))
    return np.asarray(canvas)


def label_corner(picture: Image.Image, text: str, right: bool = False, size: int = 22) -> None:
    """Write ``text`` on a white box in the bottom left (or right) corner of ``picture``, in
    place: the sides of the A | B slider say which is which (the top holds the viewer's
    buttons)."""
    draw = ImageDraw.Draw(picture)
    font = _font(size)
    width = draw.textlength(text, font=font)
    left = picture.width - width - 12 if right else 8
    top = picture.height - size - 14
    draw.rectangle((left - 4, top - 2, left + width + 4, top + size + 6), fill="white")
    draw.text((left, top), text, fill="black", font=font)


def png_html(picture: np.ndarray, alt: str, width: int | None = None) -> str:
    """An H×W×3 uint8 picture as an HTML ``<img>`` holding its PNG (a notebook shows it inline;
    nothing is written to disk)."""
    import base64
    import html
    import io
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}"{size}>'


def explanation_grid(result, index: int = 0, opacity: float = 0.5,
                     colormap: str = COLORMAP) -> np.ndarray:
    """One image of an ``Explanation``: its input (min-max scaled: an Explanation does not know
    its backbone's normalisation) and every map over it, each titled with its method."""
    inputs = result.inputs[index].detach().float().cpu()
    low, high = inputs.amin(), inputs.amax()
    picture = ((inputs - low) / (high - low).clamp_min(1e-12)).permute(1, 2, 0).numpy()
    maps = {name: values[index].detach().float().cpu().numpy()
            for name, values in result.maps.items()}
    class_maps = signed_arrays(result, index)
    maps.update(class_maps)
    signed = dict.fromkeys(class_maps, DIVERGING)
    scale = -(-NOTEBOOK_SIDE // picture.shape[1])  # small inputs enlarged: captions fit
    if scale > 1:
        picture = picture.repeat(scale, 0).repeat(scale, 1)
        maps = {name: values.repeat(scale, 0).repeat(scale, 1) for name, values in maps.items()}
    title = (f"explained: class {int(result.targets[index])} · false class "
             f"{int(result.false_classes[index])}")
    return compose_rows(picture, [("", maps, {})], title, opacity, signed, colormap)


NOTEBOOK_SIDE = 160  # the smallest panel a notebook shows (a 64 px input is drawn 192 px)
