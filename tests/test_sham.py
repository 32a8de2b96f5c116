"""SHAM masks: sizes and entropies checked by hand (DiffGradCAM paper §3.2: 7×7 → 28 px, 3.33)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from cams.metrics import cam_entropy_nats
from fooling.sham import parse_size, sham_mask


def entropy_nats(mask: torch.Tensor) -> float:
    return float(cam_entropy_nats(mask[None].double())[0])


def test_the_papers_7x7_sham():
    mask = sham_mask(7, 7)
    assert int(mask.sum()) == 28
    assert entropy_nats(mask) == pytest.approx(math.log(28)) == pytest.approx(3.33, abs=5e-3)
    assert bool((mask[0] == 1).all() and (mask[:, 0] == 1).all())  # the outer ring is on
    assert bool((mask[2:5, 2:5] == 0).all())  # the centre is off
    # 24 outer pixels plus the 4 corners of the second ring.
    assert mask[1, 1] == mask[1, 5] == mask[5, 1] == mask[5, 5] == 1
    assert mask[1, 3] == 0


@pytest.mark.parametrize(("size", "on"), [
    # 6×6: outer ring 20 (ln 3.00), + 4 ring-2 corners = 24 (3.18), + 8 = 32 (3.47): 32 is nearest
    # 3.35. 5×5: everything but the centre (24). 14×14: corners-first part of the outer ring, 28.
    ((6, 6), 32), ((5, 5), 24), ((14, 14), 28), ((3, 3), 8)])
def test_sizes_by_hand(size, on):
    mask = sham_mask(*size)
    assert int(mask.sum()) == on
    assert entropy_nats(mask) == pytest.approx(math.log(on))


@pytest.mark.parametrize("size", [(7, 7), (7, 10), (12, 9), (28, 28)])
def test_symmetric_and_border_first(size):
    mask = sham_mask(*size)
    assert torch.equal(mask, mask.flip(0)) and torch.equal(mask, mask.flip(1))
    height, width = size
    rows, columns = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    ring = torch.minimum(torch.minimum(rows, columns),
                         torch.minimum(height - 1 - rows, width - 1 - columns))
    assert int(ring[mask == 1].max()) <= int(ring[mask == 0].min())


def test_entropy_target_moves_the_size():
    assert int(sham_mask(7, 7, entropy_nats=math.log(24)).sum()) == 24
    assert sham_mask(7, 7, entropy_nats=0.0).sum() == 4  # the smallest symmetric set: corners


def test_bad_sizes_and_entropies():
    with pytest.raises(ValueError, match="no border"):
        sham_mask(2, 2)
    with pytest.raises(ValueError, match="negative"):
        sham_mask(7, 7, entropy_nats=-1)
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        parse_size("seven")
    assert parse_size("7×9") == (7, 9) and parse_size("8") == (8, 8)


def test_cli(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cam_studio", "sham", "--size", "7x7", "--png",
                             str(tmp_path / "sham.png")], capture_output=True, text=True)
    assert result.returncode == 0
    assert "28 of 49 pixels on, entropy 3.33 nats" in result.stdout
    assert (tmp_path / "sham.png").stat().st_size > 0
    bad = subprocess.run([sys.executable, "-m", "cam_studio", "sham", "--size", "1x1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
