"""The command line: outputs a user can open, and one clear line (exit 2) for every bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from cam_studio.commands import main
from cam_studio.data.examples import example_image
from cams import explain
from cams.methods import DEFAULT_METHODS
from tests.conftest import ROOT


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_module_entry_point_writes_grid_and_maps(tmp_path, lite0):
    completed = subprocess.run(
        [sys.executable, "-m", "cam_studio", "explain", "--example", "chelsea", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "Egyptian cat" in completed.stdout
    png = Image.open(tmp_path / "chelsea.png")
    assert png.size[0] > 800 and png.size[1] > 800
    saved = np.load(tmp_path / "chelsea.npz")
    assert set(DEFAULT_METHODS) | {"input", "logits", "target", "false_class"} == set(saved.files)
    assert int(saved["target"]) == 285 and saved["logits"].shape == (1000,)
    assert saved["input"].shape == (3, 224, 224) and saved["input"].dtype == np.float32
    expected = explain(lite0, [example_image("chelsea")])
    for name in DEFAULT_METHODS:
        heatmap = saved[name]
        assert heatmap.dtype == np.float32 and heatmap.shape == (224, 224)
        assert 0.0 <= heatmap.min() <= 1e-6 and 1.0 - 1e-6 <= heatmap.max() <= 1.0
        np.testing.assert_allclose(heatmap, expected.maps[name][0].numpy(), atol=1e-5)


def test_target_by_name_and_method_subset(tmp_path, capsys):
    code, _, err = run(capsys, "explain", "--example", "coffee", "--target", "tiger cat",
                         "--methods", "GradCAM,MeanDiffGradCAM", "--out", str(tmp_path))
    assert code == 0, err
    saved = np.load(tmp_path / "coffee.npz")
    assert int(saved["target"]) == 282
    assert {"GradCAM", "MeanDiffGradCAM"} <= set(saved.files) and "HiResCAM" not in saved.files


def test_a_report_of_a_versus_b_from_the_command_line(tmp_path, capsys):
    """--report --versus writes the page's self-contained report: A and B's predictions, the
    verdict (here a sanity check) and the SHA-256 of the image's decoded pixels (hashlib here)."""
    import hashlib
    code, out, err = run(capsys, "explain", "--example", "chelsea", "--methods",
                         "GradCAM,EigenCAM", "--versus", "randomised:classifier", "--report",
                         "--out", str(tmp_path))
    assert code == 0, err
    assert "chelsea-report.html" in out
    report = (tmp_path / "chelsea-report.html").read_text()
    assert hashlib.sha256(example_image("chelsea").tobytes()).hexdigest() in report
    assert "A: clean" in report and "B: randomised:classifier" in report
    assert "A sanity check, not a fool" in report and "data:image/png;base64," in report
    assert "<script" not in report and "http" not in report.split("<body", 1)[1].replace(
        "https://arxiv.org", "")  # nothing to fetch: it opens offline
    code, _, err = run(capsys, "explain", "--example", "chelsea", "--versus", "random",
                       "--out", str(tmp_path))
    assert code == 2 and "add --report" in err


MODELS_PY = """
import torch
import torchvision


def build():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=3)


def not_a_model():
    return 42
"""


def test_your_own_model_by_module_and_function(tmp_path, capsys):
    """--model FILE.py:FUNCTION builds the user's nn.Module, read at --layer; its maps are the
    ones cams.wrap gives the same model in Python, and the sanity report works on it."""
    import torchvision

    from cams import wrap
    (tmp_path / "models.py").write_text(MODELS_PY)
    names = tmp_path / "names.txt"
    names.write_text("ant\nbee\ncat\n")
    out = tmp_path / "out"
    code, _, err = run(capsys, "explain", "--example", "chelsea", "--model",
                       f"{tmp_path / 'models.py'}:build", "--layer", "layer4", "--input-size",
                       "96", "--class-names", str(names), "--methods", "GradCAM,HiResCAM",
                       "--versus", "randomised:fc", "--report", "--out", str(out))
    assert code == 0, err
    torch.manual_seed(0)
    expected = explain(wrap(torchvision.models.resnet18(num_classes=3), "layer4", input_size=96),
                       [example_image("chelsea")], ["GradCAM", "HiResCAM"])
    saved = np.load(out / "chelsea.npz")
    for name in ("GradCAM", "HiResCAM"):
        np.testing.assert_allclose(saved[name], expected.maps[name][0].numpy(), atol=1e-5)
    assert "A sanity check" in (out / "chelsea-report.html").read_text()
    for argv, message in [
        (["--model", f"{tmp_path / 'models.py'}:build"], "--model needs --layer"),
        (["--model", "models.py", "--layer", "x"], "is not MODULE:FUNCTION"),
        (["--model", f"{tmp_path / 'models.py'}:not_a_model", "--layer", "x"],
         "returned a int, not an nn.Module"),
        (["--model", "no_such_module_here:build", "--layer", "x"], "cannot import"),
    ]:
        code, _, err = run(capsys, "explain", "--example", "chelsea", *argv, "--out", str(out))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_second_run_never_replaces_the_first_silently(tmp_path, capsys):
    """Run twice with other weights: the first result stays, the second is coffee-2; with
    --overwrite the second replaces it."""
    first = ("explain", "--example", "coffee", "--methods", "GradCAM", "--out", str(tmp_path))
    assert run(capsys, *first)[0] == 0
    kept = np.load(tmp_path / "coffee.npz")["GradCAM"]
    code, out, err = run(capsys, *first, "--weights", "random")
    assert code == 0, err
    assert "coffee-2.png" in out + err
    assert np.array_equal(np.load(tmp_path / "coffee.npz")["GradCAM"], kept)
    assert not np.array_equal(np.load(tmp_path / "coffee-2.npz")["GradCAM"], kept)
    assert run(capsys, *first, "--weights", "random", "--overwrite")[0] == 0
    assert not np.array_equal(np.load(tmp_path / "coffee.npz")["GradCAM"], kept)
    assert not (tmp_path / "coffee-3.npz").exists()


def test_colour_map_of_the_grid(tmp_path, capsys):
    """--colormap viridis draws the maps in matplotlib's viridis: at opacity 1 far more of the
    grid's pixels lie on viridis's colours than with the default jet."""
    from matplotlib import colormaps
    from scipy.spatial import cKDTree

    lut = cKDTree(colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255)

    def on_viridis(name, *extra):
        code, _, err = run(capsys, "explain", "--example", "coffee", "--methods", "GradCAM",
                           "--opacity", "1", "--out", str(tmp_path / name), *extra)
        assert code == 0, err
        pixels = np.asarray(Image.open(tmp_path / name / "coffee.png").convert("RGB"), float)
        return float((lut.query(pixels.reshape(-1, 3))[0] < 4).mean())

    assert on_viridis("viridis", "--colormap", "viridis") > 3 * on_viridis("jet")


SMALL_CNN = """
import torch

def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 12, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(12, 4))
"""


def test_all_methods_on_your_own_model_are_every_method_that_applies(tmp_path, capsys):
    """``--methods all`` on a small CNN of the user's (``--model FILE:FUNCTION``): every method
    of the table but LeGrad (transformers only) and the classic CAM (a wrapped model's head is
    not known to be GAP → Linear), the many-pass ones included."""
    from cams.methods import METHOD_NAMES
    (tmp_path / "small.py").write_text(SMALL_CNN)
    image = tmp_path / "photo.png"
    example_image("rocket").resize((80, 60)).save(image)
    code, _, err = run(capsys, "explain", str(image), "--model", f"{tmp_path / 'small.py'}:build",
                       "--layer", "5", "--input-size", "64", "--methods", "all",
                       "--out", str(tmp_path / "out"))
    assert code == 0, err
    names = set(np.load(tmp_path / "out" / "photo.npz").files)
    assert {"ScoreCAM", "SS-CAM", "SESS", "RefineCAM"} <= names
    assert set(METHOD_NAMES) - names == {"LeGrad", "CAM"}


def test_one_bad_image_does_not_lose_the_others(tmp_path, capsys):
    (tmp_path / "empty.jpg").write_bytes(b"")
    good = tmp_path / "good.png"
    example_image("coffee").save(good)
    code, _, err = run(capsys, "explain", str(tmp_path / "empty.jpg"), str(good),
                         "--methods", "GradCAM", "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.strip().count("\n") == 0 and "empty (0 bytes)" in err
    assert (tmp_path / "out" / "good.npz").exists()


def make_bad_input(tmp_path, kind):
    """Files for the bad-input table below; returns the extra command-line arguments."""
    if kind == "missing":
        return [str(tmp_path / "nowhere.png")]
    if kind == "not-an-image":
        (tmp_path / "notes.png").write_text("hello")
        return [str(tmp_path / "notes.png")]
    if kind == "corrupt":
        example_image("coffee").save(tmp_path / "full.jpg")
        data = (tmp_path / "full.jpg").read_bytes()
        (tmp_path / "cut.jpg").write_bytes(data[:200])
        return [str(tmp_path / "cut.jpg")]
    if kind == "huge":
        Image.new("1", (9000, 9000)).save(tmp_path / "huge.png")
        return [str(tmp_path / "huge.png")]
    state = timm.create_model("resnet18", num_classes=3).state_dict()
    if kind == "wrong-architecture":
        save_file(state, tmp_path / "resnet.safetensors")
        return ["--example", "chelsea", "--weights", str(tmp_path / "resnet.safetensors")]
    if kind == "pickle-with-objects":
        torch.save({**state, "optimizer": {"lr": 0.1}}, tmp_path / "ckpt.pt")
        return ["--example", "chelsea", "--backbone", "resnet18", "--weights",
                str(tmp_path / "ckpt.pt")]
    raise AssertionError(kind)


@pytest.mark.parametrize(("kind", "message"), [
    ("missing", "not found"),
    ("not-an-image", "not an image"),
    ("corrupt", "corrupt or truncated"),
    ("huge", "megapixels"),
    ("wrong-architecture", "does not fit backbone efficientnet_lite0"),
    ("pickle-with-objects", "holds more than tensors"),
])
def test_bad_files_give_one_line_and_exit_2(tmp_path, capsys, kind, message):
    code, _, err = run(capsys, "explain", *make_bad_input(tmp_path, kind), "--methods", "GradCAM",
                       "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--backbone", "resnet_9000"], "unknown backbone"),
    (["--methods", "GradCAM,NopeCAM"], "unknown method 'NopeCAM'"),
    (["--target", "1000"], "target class 1000 is out of range"),
    (["--target", "unicorn"], "neither a class index nor a class name"),
    (["--false-class", "285"], "must differ"),
    (["--batch-size", "0"], "at least 1"),
    (["--methods", ","], "no method given"),
    (["--target", "²"], "neither a class index nor a class name"),
    (["--target", "crane"], "names several classes (134, 517)"),
    (["--target", "282", "--false-class", "tiger cat"], "must differ"),
    (["--target", "282: tiger cat (33.0%)"], "neither a class index nor a class name"),
    (["--device", "mps"], "not supported"),
])
def test_bad_options_give_one_line_and_exit_2(tmp_path, capsys, argv, message):
    code, _, err = run(capsys, "explain", "--example", "chelsea", *argv, "--out", str(tmp_path))
    assert code == 2
    assert err.count("\n") == 1 and message in err


def test_usage_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--no-such-flag"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "unrecognized arguments" in err


def test_output_folder_that_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    code, _, err = run(capsys, "explain", "--example", "chelsea", "--methods", "GradCAM",
                       "--out", str(tmp_path / "taken"))
    assert code == 2 and err.count("\n") == 1 and "cannot create the output folder" in err


def test_no_image_is_a_clear_error(capsys):
    code, _, err = run(capsys, "explain")
    assert code == 2 and "no image given" in err


def test_lists(capsys):
    code, out, _ = run(capsys, "methods")
    assert code == 0 and all(name in out for name in DEFAULT_METHODS + ("ScoreCAM",))
    code, out, _ = run(capsys, "backbones")
    assert code == 0 and re.search(r"efficientnet_lite0 +weights offline", out)
    assert "resnet50" in out and "swin_tiny_patch4_window7_224" in out and "hf-hub:" in out


def test_every_command_line_says_its_version(capsys):
    """One version (cams.__version__, which the wheel's metadata reads too) for the command line
    and the app."""
    from cam_studio.page import command_line
    from cams import __version__
    for call in (lambda: main(["--version"]), lambda: command_line().parse_args(["--version"])):
        with pytest.raises(SystemExit) as exit_info:
            call()
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.strip().endswith(__version__)


def test_one_flag_name_per_concept_old_names_still_work():
    """--batch-size (explain, evaluate, train), --entropy-nats (sham, construct, train),
    --registry (where train and construct save), --json (bench results), --out (a folder of
    results: explain, evaluate, check); the older --batch / --entropy / --out still parse."""
    import argparse as argparse_module

    from cam_studio.commands import bench, evaluate, explain, fooling
    parser = argparse_module.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    for module in (explain, fooling, evaluate, bench):
        module.add_commands(commands)
    flags = {name: set(re.findall(r"(--[a-z][a-z-]*)", sub.format_help()))
             for name, sub in commands.choices.items()}
    assert {"--batch-size"} <= flags["explain"] & flags["evaluate"] & flags["train"]
    assert not any("--batch" in found for found in flags.values())
    assert "--entropy-nats" in flags["sham"] & flags["construct"] & flags["train"]
    assert not any("--entropy" in found for found in flags.values())
    assert "--registry" in flags["train"] & flags["construct"]
    assert "--out" not in flags["train"] | flags["construct"] | flags["bench"]
    assert "--json" in flags["bench"]
    old = parser.parse_args(["train", "--name", "x", "--batch", "4", "--out", "reg"])
    new = parser.parse_args(["train", "--name", "x", "--batch-size", "4", "--registry", "reg"])
    assert (old.batch, old.directory) == (new.batch, new.directory) == (4, "reg")
    assert parser.parse_args(["sham", "--entropy", "3"]).entropy_nats == 3.0
    assert parser.parse_args(["evaluate", "--batch", "2"]).batch == 2
    assert parser.parse_args(["bench", "--out", "r.json"]).json.name == "r.json"


def test_the_old_entry_points_say_where_the_commands_went():
    for package in ("cams", "fooling"):
        result = subprocess.run([sys.executable, "-m", package, "explain", "--example", "chelsea"],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 2
        assert result.stderr.strip() == ("error: the command lines moved: run python -m "
                                         "cam_studio explain --example chelsea")


TWO_CLASS_RESNET = """
import torch
import torchvision

def build():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=2)
"""


def test_train_and_evaluate_your_own_model(tmp_path, capsys, monkeypatch):
    """``train --model`` fine-tunes the user's own nn.Module (a torchvision ResNet, not timm's)
    and saves a checkpoint that says so; ``evaluate --model`` runs the sanity and similarity
    tables on it; loading the checkpoint by name says how to load it instead."""
    from safetensors.torch import load_file

    from cams.backbones import load_backbone
    from cams.checkpoints import CHECKPOINTS_ENV
    from cams.errors import UserInputError
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path / "registry"))
    (tmp_path / "models.py").write_text(TWO_CLASS_RESNET)
    own = ["--model", f"{tmp_path / 'models.py'}:build", "--layer", "layer4"]
    code, _, err = run(capsys, "train", *own, "--size", "96", "--data", "synthetic:binary",
                       "--steps", "2", "--batch", "4", "--val-size", "8", "--name", "own-fool")
    assert code == 0, err
    entry = json.loads((tmp_path / "registry" / "own-fool.json").read_text())
    assert entry["backbone"] == "models.build" and entry["wrapped"] and entry["layer"] == "layer4"
    weights = load_file(str(tmp_path / "registry" / "own-fool.safetensors"))
    assert "layer4.1.conv2.weight" in weights  # torchvision's names: the user's model, trained
    with pytest.raises(UserInputError, match=r"fine-tuned your own model models\.build"):
        load_backbone(None, "own-fool")

    code, _, err = run(capsys, "evaluate", *own, "--input-size", "96", "--images", "examples",
                       "--limit", "2", "--tables", "sanity", "--sanity-seeds", "1",
                       "--methods", "GradCAM,EigenCAM", "--out", str(tmp_path / "eval"))
    assert code == 0, err
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "### models.build (2 images, 1 seed" in report and "layer4.1" in report
