"""Benchmarks: how fast and how lean the engine, the app, the evaluation and training are, the
reference implementation (the ``grad-cam`` package) they are measured against, and the one way to
start the app for them and the tests (``serving``).

Above what it measures, as torchcam keeps its ``scripts/``; ``python -m cam_studio bench``
(``cam_studio.commands.bench``) runs it. Numbers go to BENCHMARKS.md with the machine they ran on.
"""
