"""The data layer: the synthetic ground-truth domain, ImageFolder + salience folders, photo crops."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from cam_studio.data.folders import FolderDataset
from cam_studio.data.photos import PhotoCrops, photo_set
from cam_studio.data.synthetic import SyntheticDataset
from cams.errors import UserInputError


def test_synthetic_is_deterministic_by_seed_and_balanced():
    a, b = SyntheticDataset("7class", "train", 64, seed=3), SyntheticDataset("7class", "train", 64, 3)
    other = SyntheticDataset("7class", "train", 64, seed=4)
    for index in (0, 5, 123):
        assert all(torch.equal(x, y) for x, y in zip(a[index][::2], b[index][::2]))
        assert not torch.equal(a[index][0], other[index][0])
    assert [a[i][1] for i in range(14)] == list(range(7)) * 2
    image, _, mask = a[0]
    assert image.shape == (3, 64, 64) and 0 <= float(image.min()) and float(image.max()) <= 1
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert 0.03 < float(mask.mean()) < 0.15  # a small, localized pattern


def test_the_mask_is_where_the_pattern_was_drawn():
    """Redraw the same sample's background alone: pixels differ only inside the mask."""
    from cam_studio.data.order import seeded_generator
    from cam_studio.data.synthetic import clutter

    dataset = SyntheticDataset("7class", "test", 64, seed=0)
    image, _, mask = dataset[11]
    generator = seeded_generator(0, "test", 11)
    torch.randint(1, (1,), generator=generator)  # the pattern draw that precedes the background
    background = clutter(64, generator)
    changed = (image - background).abs().amax(dim=0) > 0
    assert bool((changed <= (mask > 0)).all())
    assert float(changed[mask > 0].float().mean()) > 0.5


def test_binary_leave_one_type_out():
    train = SyntheticDataset("binary", "train", holdout="checker")
    outset = SyntheticDataset("binary", "outset", holdout="checker")
    assert "checker" not in train.patterns(1) and len(train.patterns(1)) == 5
    assert outset.patterns(1) == ("checker",) and outset.patterns(0) == ("disc",)
    assert train.class_names == ["bona fide", "attack"]
    with pytest.raises(UserInputError, match="not an attack type"):
        SyntheticDataset("binary", holdout="disc")
    with pytest.raises(UserInputError, match="unknown synthetic task"):
        SyntheticDataset("3class")


def make_tree(root, salience=None, missing=()):
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for index in range(3):
            Image.fromarray(rng.integers(0, 255, (20, 30, 3), np.uint8)).save(
                root / label / f"{index}.jpg")
            if salience is not None and f"{label}/{index}" not in missing:
                (salience / label).mkdir(parents=True, exist_ok=True)
                np.save(salience / label / f"{index}.npy",
                        np.arange(50, dtype=np.float32).reshape(5, 10) * 3 + 7)


def test_folder_with_salience_maps(tmp_path):
    make_tree(tmp_path / "data", tmp_path / "maps")
    dataset = FolderDataset(tmp_path / "data", tmp_path / "maps", size=32)
    assert dataset.class_names == ["cats", "dogs"] and len(dataset) == 6
    image, label, mask = dataset[4]
    assert image.shape == (3, 32, 32) and label == 1 and mask.shape == (32, 32)
    assert float(mask.min()) == 0 and float(mask.max()) == pytest.approx(1)  # min-max normalised
    assert float(mask[0, 0]) < float(mask[-1, -1])  # the map's gradient survives the resize


def test_missing_and_broken_salience_maps_are_named(tmp_path):
    make_tree(tmp_path / "data", tmp_path / "maps", missing=("dogs/2",))
    with pytest.raises(UserInputError, match=r"no salience map for .*dogs/2\.jpg.*skip-missing"):
        FolderDataset(tmp_path / "data", tmp_path / "maps")
    skipping = FolderDataset(tmp_path / "data", tmp_path / "maps", skip_missing=True)
    assert len(skipping) == 5 and [p.name for p in skipping.skipped] == ["2.jpg"]
    (tmp_path / "maps" / "cats" / "0.npy").write_bytes(b"garbage")
    with pytest.raises(UserInputError, match=r"salience map .*cats/0\.npy cannot be read"):
        skipping[0]
    np.save(tmp_path / "maps" / "cats" / "0.npy", np.zeros((2, 3, 4)))
    with pytest.raises(UserInputError, match="not a finite 2-D map"):
        skipping[0]


def test_folder_errors(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        FolderDataset(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    with pytest.raises(UserInputError, match="no class sub-folders"):
        FolderDataset(tmp_path / "flat")
    (tmp_path / "flat" / "empty").mkdir()
    with pytest.raises(UserInputError, match="holds no images"):
        FolderDataset(tmp_path / "flat")


def test_the_photo_sets_are_disjoint_and_the_test_set_is_worth_its_name():
    """Training, validation (recipes are chosen on it) and test (neither trained nor tuned on)
    share no photo, checked by content; the test set has 15 real photos of which the clean Lite0
    recognises at least 12 with p ≥ 0.5, of at least 8 distinct classes, each with its source
    and licence recorded."""
    from cam_studio.data.photos import TEST_PHOTOS
    from cams import load_backbone
    sets = {name: photo_set(name) for name in ("train", "train-wide", "validation", "test",
                                               "test-v1")}
    assert len(sets["validation"]) == 3 and len(sets["train"]) >= 15
    assert set(sets["train"]) < set(sets["train-wide"]) and len(sets["train-wide"]) >= 50
    assert len(sets["test"]) == 15 and len(sets["test-v1"]) == 6
    digests = {name: {hashlib.sha256(photo.tobytes()).hexdigest() for photo in photos.values()}
               for name, photos in sets.items()}
    assert not digests["train-wide"] & digests["validation"]
    assert not ((digests["train-wide"] | digests["validation"])
                & (digests["test"] | digests["test-v1"]))
    # No OpenCV sample of a test photo's scene either (aero1 is aero3's valley).
    from cam_studio.data.photos import OPENCV_TRAIN_SAMPLES
    tested = {photo.path for photo in TEST_PHOTOS.values()} | {"aero1.jpg"}
    assert not tested & set(OPENCV_TRAIN_SAMPLES)
    assert len(digests["test"]) == 15  # no photo twice
    clean = load_backbone(device="cpu")
    with torch.no_grad():
        probabilities = clean.model(torch.cat([clean.preprocess(photo) for photo in
                                               sets["test"].values()])).softmax(1)
    confident = probabilities.amax(1) >= 0.5
    assert int(confident.sum()) >= 12
    assert len(set(probabilities.argmax(1)[confident].tolist())) >= 8
    assert all(photo.origin and photo.licence for photo in TEST_PHOTOS.values())
    held_out = sets["validation"]
    crops = PhotoCrops(held_out, size=48, seed=1, length=8)
    image, label, mask = crops[3]
    assert image.shape == (3, 48, 48) and label == -1 and float(mask.max()) == -1
    assert torch.equal(crops[5][0], PhotoCrops(held_out, size=48, seed=1)[5][0])
    assert {crops.photo_name(index) for index in range(8)} <= set(held_out)


def test_a_folder_validates_on_at_most_val_size_images_and_shuffles_for_limit(tmp_path):
    """ImageNet-sized trees: validation takes a seeded random val_size of val/, and the
    evaluation's --limit N takes a seeded random N, not the first class folders."""
    from cam_studio.data.sources import samples
    from cam_studio.data.training import training_data
    for part in ("train", "val"):
        make_tree(tmp_path / "data" / part)
    data = training_data(str(tmp_path / "data"), 32, seed=0, val_size=3)
    assert len(data.val) == 3 and len(data.train) == 6
    again = training_data(str(tmp_path / "data"), 32, seed=0, val_size=3)
    assert data.val.indices == again.val.indices
    every = [sample.id for sample in samples(str(tmp_path / "data" / "val"))]
    assert sorted(every) == [f"{label}/{index}.jpg" for label in ("cats", "dogs")
                             for index in range(3)]
    assert every != sorted(every)  # shuffled, the same way every time:
    assert [sample.id for sample in samples(str(tmp_path / "data" / "val"), limit=3)] == every[:3]
