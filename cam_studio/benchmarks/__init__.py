"""Benchmarks: how fast and how lean the engine, the app, the evaluation and training are, and
the reference implementation (the ``grad-cam`` package) they are measured against.

The top layer, as torchcam keeps its ``scripts/``: it measures the others and nothing imports
it (``python -m cams bench`` and ``python -m fooling bench`` reach it through the packages'
``__main__.py``). Numbers go to BENCHMARKS.md with the machine they ran on.
"""
