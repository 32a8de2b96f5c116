"""CAM Studio around the engine: the data layer (``data``), the evaluation (``evaluation``), the
app's tab backends (``tabs``), the benchmarks (``benchmarks``), the command lines (``commands``)
and the page (``page``).

The engine is ``cams`` and fooling is ``fooling``; the layers, lowest first: ``cams``, ``data``,
``fooling``, ``evaluation``, ``tabs``, ``benchmarks``, then ``commands`` and ``page`` (docs/
architecture.md). This file imports nothing, so that the data layer can be imported from below
the layers that sit above it here.
"""
