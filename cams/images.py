"""Reading users' images safely: refused before decoding when huge, every PIL mode to 8-bit RGB."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cams.errors import UserInputError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (decompression bombs)


def _over_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB: transparency over white, 16-bit and float scaled, not clipped."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return _over_white(image)
    if image.mode.startswith("I"):  # 16-bit (I;16, I;16B, …) or 32-bit integer grey
        values = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if values.max(initial=0) <= 65535 else values.max()
        return Image.fromarray(np.uint8(np.clip(values / scale * 255.0 + 0.5, 0, 255))).convert("RGB")
    if image.mode == "F":  # float grey of unknown range: stretch to 0–255
        values = np.asarray(image, dtype=np.float64)
        low, high = np.nanmin(values), np.nanmax(values)
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        return Image.fromarray(np.uint8(np.nan_to_num(scaled) * 255.0 + 0.5)).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def load_image(path: str | Path, name: str | None = None) -> Image.Image:
    """Open an image file as RGB, refusing missing, empty, corrupt, non-image and huge files.

    ``name`` is how messages call the file (e.g. an upload's own name, not the server path)."""
    return _load_image(Path(path), Path(name or path))


def _load_image(source: Path, path: Path) -> Image.Image:
    if not source.exists():
        raise UserInputError(f"image {path} not found: check the path")
    if not source.is_file():
        raise UserInputError(f"{path} is not a file: give the path of an image")
    if source.stat().st_size == 0:
        raise UserInputError(f"image {path} is empty (0 bytes): copy it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise UserInputError(
                    f"image {path} is {width}×{height} = {width * height / 1e6:.0f} megapixels, "
                    f"more than the {MAX_PIXELS / 1e6:.0f} allowed: downscale it first")
            image.seek(0)  # first frame of an animation or a multi-page file
            image.load()
            return to_rgb(image)
    except UserInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UserInputError(f"image {path} is too large to decode safely ({error}): downscale "
                             "it first") from error
    except UnidentifiedImageError as error:
        raise UserInputError(f"{path} is not an image format we can read (PNG, JPEG, TIFF, BMP, "
                             "WebP, GIF …)") from error
    except PermissionError as error:
        raise UserInputError(f"cannot read image {path}: permission denied") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise UserInputError(f"image {path} is corrupt or truncated ({error}): "
                             "re-export or re-download it") from error
