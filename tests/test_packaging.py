"""``pip install .`` ships what the project needs and nothing generic: three import names (cams,
fooling, cam_studio), the shipped checkpoints, ``py.typed``, the console scripts and the extras
(the wheel is built here, offline; installing it into a fresh virtualenv is checked by hand and
in the closing notes)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"cams", "fooling", "cam_studio"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    # Built from a copy, so the build leaves nothing in the working tree.
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".ci", "docs", "tests", "build", "site", "*.egg-info", "__pycache__", "*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(folder), str(source)], check=True, capture_output=True,
                   timeout=300)
    with zipfile.ZipFile(next(folder.glob("cam_studio-*.whl"))) as opened:
        yield opened


def metadata(wheel: zipfile.ZipFile, suffix: str) -> str:
    return wheel.read(next(name for name in wheel.namelist() if name.endswith(suffix))).decode()


def test_the_wheel_installs_three_import_names_and_nothing_generic(wheel):
    names = set(wheel.namelist())
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == IMPORT_NAMES
    for package in IMPORT_NAMES:
        shipped = {path.relative_to(ROOT).as_posix() for path in (ROOT / package).rglob("*.py")}
        assert shipped <= names, sorted(shipped - names)[:3]
        assert f"{package}/py.typed" in names
    checkpoints = {f"cams/assets/checkpoints/{path.name}"
                   for path in (ROOT / "assets" / "checkpoints").glob("*")
                   if not path.name.startswith(".")}
    assert checkpoints and checkpoints <= names


def test_the_scripts_the_extras_and_the_one_list_of_dependencies(wheel):
    scripts = configparser.ConfigParser()
    scripts.read_string(metadata(wheel, "entry_points.txt"))
    assert dict(scripts["console_scripts"]) == {"cams": "cam_studio.commands:main",
                                                "cam-studio": "cam_studio.page:main"}
    from packaging.requirements import Requirement
    shipped: dict[str | None, set] = {}
    text = metadata(wheel, "METADATA")
    for line in text.splitlines():
        if line.startswith("Requires-Dist: "):
            requirement = Requirement(line.removeprefix("Requires-Dist: "))
            extra = next((marker.split("==")[1].strip(" '\"") for marker in
                          [str(requirement.marker)] if requirement.marker), None)
            shipped.setdefault(extra, set()).add((requirement.name, requirement.specifier))

    def listed(*files: str) -> set:
        return {(Requirement(line).name, Requirement(line).specifier) for file in files
                for line in (ROOT / file).read_text().splitlines()
                if line.strip() and not line.startswith(("#", "-r"))}

    # requirements.txt is the one list of dependencies (names and version ranges); the extras
    # are the test and docs lists, which requirements-dev.txt gathers for pip -r.
    assert shipped[None] == listed("requirements.txt")
    assert shipped["docs"] == listed("requirements-docs.txt")
    assert shipped["dev"] == listed("requirements-test.txt", "requirements-docs.txt")
    assert "Classifier: Typing :: Typed" in text and "Project-URL: " in text
    dev = (ROOT / "requirements-dev.txt").read_text().split()
    assert [dev[i + 1] for i, word in enumerate(dev) if word == "-r"] == [
        "requirements.txt", "requirements-test.txt", "requirements-docs.txt"]
