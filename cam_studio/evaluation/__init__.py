"""The papers' tables: one object per table (``tables``), the one loop that runs them with
per-image records (resumable, shardable under torchrun), and the report.

Above ``fooling`` (the training and attacks tables train models) and the data layer;
``python -m cam_studio evaluate`` and the app's Evaluate tab run it.
"""
