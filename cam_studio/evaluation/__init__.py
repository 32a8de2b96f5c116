"""The papers' tables: per-image records (resumable, shardable under torchrun) and the report.

Above ``fooling`` (the training table trains models) and the data layer; ``python -m cams
evaluate`` and the app's Evaluate tab run it.
"""
