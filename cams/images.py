"""Reading users' images safely, and the example photos that ship inside installed packages."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cams.errors import UserInputError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (decompression bombs)


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data
        return getattr(data, name)()
    return load


# Photos bundled with scikit-image and matplotlib: no download, no files in this repository.
EXAMPLES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "chelsea": (_skimage("chelsea"), "a tabby cat (scikit-image)"),
    "coffee": (_skimage("coffee"), "a cup of espresso (scikit-image)"),
    "astronaut": (_skimage("astronaut"), "astronaut Eileen Collins (scikit-image)"),
    "rocket": (_skimage("rocket"), "a rocket on its launch pad (scikit-image)"),
    "grace_hopper": (_grace_hopper, "Rear Admiral Grace Hopper (matplotlib)"),
}


def example_image(name: str) -> Image.Image:
    """One of the bundled example photos, as an RGB PIL image."""
    if name not in EXAMPLES:
        raise UserInputError(f"unknown example {name!r}: choose one of {', '.join(EXAMPLES)}")
    return Image.fromarray(EXAMPLES[name][0]()).convert("RGB")


def example_thumbnails(folder: Path, size: int = 160) -> list[tuple[str, str]]:
    """Write a small JPEG of every example into ``folder``: (path, name) pairs for a gallery."""
    folder.mkdir(parents=True, exist_ok=True)
    thumbnails = []
    for name in EXAMPLES:
        image = example_image(name)
        image.thumbnail((size, size))
        path = folder / f"{name}.jpg"
        image.save(path, quality=85)
        thumbnails.append((str(path), name))
    return thumbnails


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
