"""``python -m cams evaluate``: the papers' tables on your backbones, checkpoints and images.

    python -m cams evaluate --images examples --backbones efficientnet_lite0 \\
        --pairs clean:sham-efficientnet_lite0 --out eval_out

Per-image rows are appended to ``OUT/records/`` as they are computed, so an interrupted run
resumes where it stopped (run the same command again); ``OUT/report.md`` links the tables (CSV and
Markdown) and plots.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from cams.errors import UserInputError
from evaluation.run import TABLES, EvaluationConfig, run_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", default="examples",
                        help="a folder, examples, photos, crops:N (held-out photo crops) or "
                             "synthetic:binary[:N] / synthetic:7class[:N] (default examples)")
    parser.add_argument("--backbones", default="efficientnet_lite0",
                        help="comma list for the similarity, run-time and MOD/VID tables")
    parser.add_argument("--pairs", default="",
                        help="comma list of CLEAN:FOOLED registry names for susceptibility "
                             "(CLEAN may be 'clean', the pretrained weights)")
    parser.add_argument("--methods", help="comma list restricting each table's methods")
    parser.add_argument("--tables", default=",".join(TABLES), help=f"default {','.join(TABLES)}")
    parser.add_argument("--limit", type=int, help="at most N images (and N synthetic test images)")
    parser.add_argument("--epsilon", type=float, default=2 / 255,
                        help="FGSM step in pixel space (default 2/255)")
    parser.add_argument("--seeds", type=int, default=3, help="training runs per objective")
    parser.add_argument("--holdouts", default="triangle",
                        help="comma list of held-out attack types for the training table")
    parser.add_argument("--training-steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    parser.add_argument("--out", type=Path, default=Path("eval_out"))


def split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def config_from(args: argparse.Namespace) -> EvaluationConfig:
    pairs = []
    for pair in split(args.pairs):
        clean, _, fooled = pair.partition(":")
        if not clean or not fooled:
            raise UserInputError(f"--pairs {pair!r}: write CLEAN:FOOLED, e.g. "
                                 "clean:sham-efficientnet_lite0")
        pairs.append((clean, fooled))
    if "susceptibility" in split(args.tables) and not pairs and args.tables != ",".join(TABLES):
        raise UserInputError("the susceptibility table needs --pairs CLEAN:FOOLED")
    if args.batch < 1 or (args.limit is not None and args.limit < 1):
        raise UserInputError("--batch and --limit must be at least 1")
    return EvaluationConfig(
        out=args.out, images=args.images, backbones=split(args.backbones), pairs=pairs,
        methods=split(args.methods) or None, tables=split(args.tables), limit=args.limit,
        epsilon=args.epsilon, seeds=args.seeds, holdouts=split(args.holdouts),
        training_steps=args.training_steps, batch=args.batch, device=args.device)


def run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evaluation.report import build_report

    config = config_from(args)
    bars: dict[str, tqdm] = {}

    def progress(what: str, done: int, total: int | None) -> None:
        if what not in bars:
            bars[what] = tqdm(total=total, desc=what, unit="image" if total is None else "step",
                              dynamic_ncols=True)
        bars[what].n = done
        bars[what].refresh()

    try:
        run_all(config, progress)
    finally:
        for bar in bars.values():
            bar.close()
    command = shlex.join(["python", "-m", "cams", *sys.argv[1:]])
    report = build_report(config.out, command)
    print(f"wrote {report}")
    return 0
