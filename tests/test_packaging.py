"""``pip install .`` ships what the project needs: every layer, the app, the shipped checkpoints,
and the console scripts (the wheel is built here, offline; a fresh virtualenv install of it is
what `.ci/run` and the README's commands exercise)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("cams", "imagedata", "fooling", "evaluation", "studio", "benchmarks")


def test_the_wheel_holds_the_layers_the_app_the_checkpoints_and_the_scripts(tmp_path):
    # Built from a copy, so the build leaves nothing in the working tree.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".ci", "docs", "tests", "build", "*.egg-info", "__pycache__", "*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(source)], check=True, capture_output=True,
                   timeout=300)
    wheel = next(tmp_path.glob("cam_studio-*.whl"))
    with zipfile.ZipFile(wheel) as opened:
        names = set(opened.namelist())
        entry_points = next(name for name in names if name.endswith("entry_points.txt"))
        scripts = configparser.ConfigParser()
        scripts.read_string(opened.read(entry_points).decode())
        requirements = opened.read(next(name for name in names
                                         if name.endswith("METADATA"))).decode()
    assert "app.py" in names
    for package in LAYERS:
        shipped = {path.relative_to(ROOT).as_posix() for path in (ROOT / package).rglob("*.py")}
        assert shipped <= names, sorted(shipped - names)[:3]
    checkpoints = {path.relative_to(ROOT).as_posix()
                   for path in (ROOT / "assets" / "checkpoints").glob("*")
                   if not path.name.startswith(".")}
    assert checkpoints and checkpoints <= names
    assert dict(scripts["console_scripts"]) == {"cams": "cams.__main__:main",
                                                "fooling": "fooling.__main__:main",
                                                "cam-studio": "app:main"}
    # requirements.txt is the one list of dependencies (names and version ranges)
    from packaging.requirements import Requirement
    shipped = {(Requirement(line).name, Requirement(line).specifier)
               for line in requirements.splitlines() if line.startswith("Requires-Dist: ")
               for line in [line.removeprefix("Requires-Dist: ")]}
    listed = {(Requirement(line).name, Requirement(line).specifier)
              for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert listed == shipped
