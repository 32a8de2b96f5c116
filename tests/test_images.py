"""Reading images: every odd mode converted correctly, every bad file refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cam_studio.data.examples import EXAMPLES, example_image
from cams.errors import UserInputError
from cams.images import MAX_PIXELS, load_image

RED = (200, 30, 40)


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def test_every_example_loads_as_rgb():
    for name in EXAMPLES:
        image = example_image(name)
        assert image.mode == "RGB" and min(image.size) >= 200


def test_grayscale_becomes_three_equal_channels(tmp_path):
    Image.new("L", (8, 6), 90).save(tmp_path / "grey.png")
    assert (pixels(load_image(tmp_path / "grey.png")) == 90).all()


def test_rgba_is_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (*RED, 0))
    rgba.putpixel((0, 0), (*RED, 255))
    rgba.save(tmp_path / "alpha.png")
    result = pixels(load_image(tmp_path / "alpha.png"))
    assert tuple(result[0, 0]) == RED
    assert (result[1:, 1:] == 255).all()  # fully transparent → white, not black


def test_palette_image_keeps_its_colours(tmp_path):
    palette = Image.new("RGB", (5, 5), RED).quantize(colors=4)
    assert palette.mode == "P"
    palette.save(tmp_path / "palette.gif")
    assert (pixels(load_image(tmp_path / "palette.gif")) == RED).all()


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    result = pixels(load_image(tmp_path / "deep.png"))[0, :, 0]
    assert list(result) == [0, 128, 255]  # 65535 / 257 = 255, 32768 / 257 ≈ 127.5


def test_sixteen_bit_rgb_is_scaled(tmp_path):
    import cv2
    values = np.zeros((2, 2, 3), np.uint16)
    values[0, 0] = (65535, 32768, 0)
    cv2.imwrite(str(tmp_path / "deep-rgb.png"), values[..., ::-1])  # cv2 writes BGR
    assert list(pixels(load_image(tmp_path / "deep-rgb.png"))[0, 0]) == [255, 128, 0]


def test_cmyk_is_converted(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    red, green, blue = pixels(load_image(tmp_path / "cmyk.jpg"))[2, 2]
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.parametrize(("make", "message"), [
    (lambda path: None, "not found"),
    (lambda path: path.write_bytes(b""), "empty"),
    (lambda path: path.write_text("just some words, not pixels"), "not an image"),
    (lambda path: path.mkdir(), "not a file"),
])
def test_bad_files_are_refused(tmp_path, make, message):
    path = tmp_path / "photo.png"
    make(path)
    with pytest.raises(UserInputError, match=message):
        load_image(path)


def test_truncated_image_is_refused(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="corrupt or truncated"):
        load_image(tmp_path / "cut.png")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    # A 1-bit 8000×8000 PNG is a few kB on disk but 64 megapixels once decoded.
    Image.new("1", (8000, 8000)).save(tmp_path / "bomb.png")
    assert 8000 * 8000 > MAX_PIXELS
    with pytest.raises(UserInputError, match="megapixels"):
        load_image(tmp_path / "bomb.png")


def test_unknown_example_is_refused():
    with pytest.raises(UserInputError, match="unknown example"):
        example_image("kitten")


def test_signed_maps_are_centred_on_zero_by_hand():
    """The diverging display: v / max|v| mapped to [0, 1] with 0 at 0.5 (at layer size the
    upsampling is the identity); a map of zeros is 0.5 everywhere."""
    import torch

    from cams.methods import signed_display_maps
    layer = torch.tensor([[[-2.0, 0.0], [1.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    shown = signed_display_maps(layer, (2, 2))
    torch.testing.assert_close(shown[0], torch.tensor([[0.0, 0.5], [0.75, 1.0]]))
    torch.testing.assert_close(shown[1], torch.full((2, 2), 0.5))
