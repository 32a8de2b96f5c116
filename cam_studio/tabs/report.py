"""One comparison as a self-contained HTML file a reviewer can attach: the grid, the verdict, the
table, the predictions, what each method computes, the package versions, and the SHA-256 of the
image and of each checkpoint's weights. Everything is inside the file (the grid as an inline
PNG, no script, no link): it opens offline in any browser.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from importlib import metadata

from PIL import Image

from cam_studio.tabs.comparison import Comparison
from cam_studio.tabs.verdict import verdict, verdict_markdown
from cams import __version__
from cams.backbones import Backbone
from cams.checkpoints import state_dict_sha256
from cams.methods import method_row
from cams.render import png_html

PACKAGES = ("torch", "torchvision", "timm", "gradio", "numpy")
STYLE = ("body{font-family:sans-serif;max-width:1250px;margin:1em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
         "padding:2px 6px;font-size:.9em;text-align:left}img{max-width:100%;height:auto}")


def image_sha256(picture: Image.Image) -> str:
    """The SHA-256 of an image's decoded pixels (whatever file format carried them)."""
    return hashlib.sha256(picture.tobytes()).hexdigest()


def weights_sha256(backbone: Backbone) -> str:
    """The registry's recorded SHA-256 of the weights file, else one computed here over the
    model's state dict (each tensor's name and bytes, in order)."""
    recorded = backbone.metadata.get("weights_sha256")
    if recorded:
        return f"{recorded} (the weights file, as the registry recorded it)"
    return f"{state_dict_sha256(backbone.model)} (the loaded state dict's tensors)"


def _markdown_lines(text: str) -> str:
    """The verdict's few Markdown forms (### headings, **bold**, lines) as HTML."""
    out = []
    for line in text.splitlines():
        escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(line))
        if escaped.startswith("### "):
            out.append(f"<h3>{escaped[4:]}</h3>")
        elif escaped.strip():
            out.append(f"<p>{escaped.lstrip('- ')}</p>")
    return "\n".join(out)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def report_html(comparison: Comparison, grid, image_sha256: str, stem: str,
                faithfulness: bool = False) -> str:
    """The report of ``comparison`` (its ``grid`` as drawn for the page)."""
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    checkpoints = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{html.escape(backbone.name)}</td>"
        f"<td>{html.escape(backbone.weights_source)}</td>"
        f"<td><code>{html.escape(weights_sha256(backbone))}</code></td></tr>"
        for label, backbone in zip(comparison.labels, comparison.backbones))
    predictions = "".join(
        f"<tr><td>{html.escape(label)}</td><td>"
        + "; ".join(f"{c}: {html.escape(name)} ({p:.1%})" for c, name, p in comparison.top_k(index))
        + "</td></tr>" for index, label in enumerate(comparison.labels))
    methods = "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(row.summary)}</td></tr>"
                      for name in comparison.methods if (row := method_row(name)))
    versions = ", ".join(f"{package} {_version(package)}" for package in PACKAGES)
    alt = f"CAMs of {stem} by {' and '.join(comparison.labels)}, method by method"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CAM Studio comparison: {html.escape(stem)}</title>
<style>{STYLE}</style></head><body>
<h1>CAM Studio comparison: {html.escape(stem)}</h1>
<p>Made {created} by CAM Studio {__version__} ({versions}).</p>
<h2>Image and checkpoints</h2>
<p>Image <b>{html.escape(stem)}</b>, SHA-256 of its decoded RGB pixels: <code>{image_sha256}</code></p>
<table><tr><th>checkpoint</th><th>backbone</th><th>weights</th><th>SHA-256</th></tr>{checkpoints}</table>
<h2>Maps</h2>
{png_html(grid, alt)}
<h2>Verdict</h2>
{_markdown_lines(verdict_markdown(verdict(comparison)))}
<h2>Predictions (top-5)</h2>
<table>{predictions}</table>
<h2>Table</h2>
{comparison.table_html(faithfulness)}
<h2>What each method computes</h2>
<table>{methods}</table>
</body></html>
"""
