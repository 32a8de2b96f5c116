"""Drawing maps: colour overlays on the input and labelled grids (no screen needed)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

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
    return overlays(image, [heatmap], opacity, colormap)[0]


def overlays(image: np.ndarray, heatmaps: Sequence[np.ndarray], opacity: float = 0.5,
             colormap: str = COLORMAP) -> np.ndarray:
    """``overlay`` of each of several H×W maps over the same image, as one M×H×W×3 uint8 stack:
    the image's share is weighed once, and the look-up and blend of every map are one numpy
    operation each (numpy, not torch: torch splits each over its thread pool, and 16 requests'
    threads each doing so on 2 cores spent most of their time waiting for each other)."""
    levels = np.round(np.clip(np.stack(heatmaps), 0, 1) * 255).astype(np.uint8)
    # The colour's share and the 0.5 first, then the image's: at most 255.5, truncation rounds.
    colours = colour_table(colormap) * np.float32(255 * opacity) + np.float32(0.5)
    blend = np.take(colours, levels, axis=0)
    blend += np.clip(image, 0, 1).astype(np.float32) * np.float32(255 * (1 - opacity))
    return blend.astype(np.uint8)


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


def _strip_array(lines: tuple[str, ...], width: int, height: int, size: int,
                 colours: tuple[str, ...] = ("black", "dimgray")) -> np.ndarray:
    return np.asarray(_text_strip(lines, width, height, size, colours))


@functools.lru_cache(maxsize=512)
def _advance(character: str, size: int) -> float:
    """How far a character moves the pen (px; FreeType's, cached: 40 µs a call)."""
    return _font(size).getlength(character)


@functools.lru_cache(maxsize=512)
def _glyph(character: str, size: int, colour: str) -> np.ndarray:
    """One character in ``colour`` on white, as FreeType draws it at the top left of its
    advance (the box as wide as the advance, rounded up)."""
    font = _font(size)
    ascent, descent = font.getmetrics()
    box = Image.new("RGB", (max(1, math.ceil(_advance(character, size))), ascent + descent),
                    "white")
    ImageDraw.Draw(box).text((0, 0), character, fill=colour, font=font)
    return np.asarray(box)


def _captioned_strip(name: str, caption: str, width: int, height: int, size: int) -> np.ndarray:
    """``_text_strip((name, caption), …)`` with the caption set from cached glyphs: a caption
    (a number) is new in every comparison, and FreeType takes 0.4 ms a line at 12 px, while
    copying its characters takes a few µs. Each character sits where the line's own advances
    put it (rounded to a pixel); dark ink on white, so overlapping boxes keep the darker."""
    strip = _label_strip((name, ""), width, height, size).copy()
    top = round((height - 2 * (size + 3)) / 2 + size + 3)
    position = (width - sum(_advance(character, size) for character in caption)) / 2
    for character in caption:
        glyph = _glyph(character, size, "dimgray")
        left = round(position)
        start, end = max(left, 0), min(left + glyph.shape[1], width)  # a caption wider than
        if start < end:  # its panel is cut at the panel's sides, as PIL cuts it
            region = strip[top:top + glyph.shape[0], start:end]
            np.minimum(region, glyph[:region.shape[0], start - left:end - left], out=region)
        position += _advance(character, size)
    return strip


# A panel's label, drawn once per text and size: a grid's method names recur in every grid (the
# strip is only copied; 256 of 224 px are 7 MB). Captions (numbers) are drawn each time.
_label_strip = functools.lru_cache(maxsize=256)(_strip_array)
_colorbar_array = functools.lru_cache(maxsize=16)(
    lambda *arguments: np.asarray(_colorbar(*arguments)))

Row = tuple[str, dict[str, np.ndarray], dict[str, str]]  # label, maps, captions under names


def compose_rows(image: np.ndarray, rows: list[Row], title: str, opacity: float = 0.5,
                 colormaps: dict[str, str] | None = None, colormap: str = COLORMAP,
                 font_size: int = 12) -> np.ndarray:
    """A labelled grid as an H×W×3 uint8 array (fast enough for every request: a row's overlays
    are one ``overlays`` stack, the labels cached strips, copied into one array): per row the
    input then its overlays in order, so rows given the same methods (checkpoints A and B) line
    up column by column; each overlay is titled with its method name
    and an optional caption (an MSE); a colour bar on the right and the title (lines split at
    "\n") on top. ``colormap`` draws the [0, 1] maps, ``colormaps`` names another for some
    (``DIVERGING`` for signed ones: their caption says so, and a second colour bar shows its
    scale); ``font_size`` sets the captions' size (the title's is a quarter larger: large for a
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
    canvas = np.full((title_height + len(rows) * cell_height,
                      columns * (width + 4) + bars * bar_width, 3), 255, np.uint8)

    def put(picture: np.ndarray, left: int, top: int) -> None:
        canvas[top:top + picture.shape[0], left:left + picture.shape[1]] = picture

    put(np.asarray(_text_strip(tuple(title_lines), canvas.shape[1], title_height, title_size,
                               ("black",))), 0, 0)
    # The overlays of a row in one colour map at once (a row at a time: 6 maps' float blend
    # is 3.6 MB at 224 px, a whole grid's would be 15 MB per request).
    drawn: dict[tuple[int, str], np.ndarray] = {}
    for row, (_, maps, _) in enumerate(rows):
        for look in dict.fromkeys(colormaps.get(name, colormap) for name in maps):
            chosen = [name for name in maps if colormaps.get(name, colormap) == look]
            for name, picture in zip(chosen, overlays(image, [maps[name] for name in chosen],
                                                      opacity, look), strict=True):
                drawn[row, name] = picture
    for row, (label, maps, captions) in enumerate(rows):
        top = title_height + row * cell_height
        put(_label_strip((label,), width, label_height, font_size, ("darkred",)), 0, top)
        put(shown, 0, top + label_height)
        for column, name in enumerate(maps, start=1):
            left = column * (width + 4)
            if name in captions:
                strip = _captioned_strip(name, captions[name], width, label_height, font_size)
            else:
                strip = _label_strip((name, "blue < 0 = white < red") if colormaps.get(name)
                                     == DIVERGING else (name,), width, label_height, font_size)
            put(strip, left, top)
            put(drawn[row, name], left, top + label_height)
    height_left = canvas.shape[0] - title_height
    left = canvas.shape[1] - bars * bar_width
    put(_colorbar_array(height_left, colormap, ("max", "", "min"), font_size, bar_width),
        left, title_height)
    if signed_bar:  # the signed panels' own scale
        put(_colorbar_array(height_left, DIVERGING, ("+", "0", "−"), font_size, bar_width),
            left + bar_width, title_height)
    return canvas


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
