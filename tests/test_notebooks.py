"""The tutorial notebooks in docs/notebooks run from top to bottom, offline, in a fresh kernel,
and show what they say they show (nbclient executes them as Jupyter would)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))


def executed(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    # The repository root as the kernel's folder, as the notebooks ask (cams importable).
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode, kind: str) -> list[str]:
    return [str(output.get("data", {}).get(kind, output.get("text", "")))
            for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def test_there_are_the_two_tutorials():
    assert [path.name for path in NOTEBOOKS] == ["explain-your-own-model.ipynb",
                                                 "passive-fooling-and-sanity.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_tutorial_runs_offline_and_shows_its_maps(path, monkeypatch):
    monkeypatch.setenv("CAMS_OFFLINE", "1")
    notebook = executed(path)
    html = outputs(notebook, "text/html")
    assert any("data:image/png;base64," in text for text in html)  # a grid, displayed inline
    text = "\n".join(outputs(notebook, "text/plain") + outputs(notebook, "text/markdown"))
    if path.stem == "explain-your-own-model":
        assert "'Egyptian cat'" in text and "'EigenCAM': 1.0" in text
        assert "WithLogits {'GradCAM': (1, 160, 160)" in text
    else:
        assert "The prediction stayed" in text and "A sanity check, not a fool" in text
        assert "'conv_stem': {" in text
