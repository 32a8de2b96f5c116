"""The docs as a newcomer meets them: the site builds with warnings as errors, the README stays
short, and every ``python -m cam_studio`` command the README and the docs show parses with the
real command line (a flag that does not exist, or a command that moved, fails here)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md")),
         ROOT / "docs" / "results" / "README.md"]


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                             str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "engine" / "index.html").read_text()
    assert 'id="cams.engine.explain"' in api and 'id="cams.engine.layer_cams"' in api


def test_the_readme_is_short_and_leads_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert blocks[0].strip() == "pip install -r requirements.txt && python app.py"
    assert blocks[1].strip() == "pip install -r requirements-dev.txt && python -m pytest -q"


def shown_commands() -> list[tuple[str, str]]:
    """(page, command) for every ``python -m cam_studio …`` line of a shell block, with its
    continuation lines joined."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                command = line.split("#")[0].strip()
                match = re.search(r"-m cam_studio (.+)", command)
                if match:
                    found.append((page.name, match.group(1)))
    return found


def parser() -> argparse.ArgumentParser:
    from cam_studio.commands import bench, evaluate, explain, fooling
    from cam_studio.commands.runner import OneLineParser
    top = OneLineParser(prog="python -m cam_studio")
    commands = top.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in (explain, fooling, evaluate, bench):
        module.add_commands(commands)
    return top


def test_the_docs_show_commands():
    assert len(shown_commands()) > 25


@pytest.mark.parametrize(("page", "command"), shown_commands())
def test_every_command_the_docs_show_parses(page, command):
    words = [word for word in shlex.split(command) if word != "..."]
    try:
        parser().parse_args(words)
    except SystemExit as error:
        pytest.fail(f"{page}: python -m cam_studio {command} does not parse ({error.code})")
