"""``python -m cams evaluate``: the papers' tables on your backbones, checkpoints and images.

    python -m cams evaluate --images examples --backbones efficientnet_lite0 \\
        --pairs clean:sham-efficientnet_lite0 --out eval_out

Per-image rows are appended to ``OUT/records/`` as they are computed, so an interrupted run
resumes where it stopped (run the same command again); ``OUT/report.md`` links the tables (CSV and
Markdown) and plots.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from cams.distributed import current, join, launch_command, leave
from cams.errors import UserInputError
from evaluation.run import TABLES, EvaluationConfig, run_all

# The published report (docs/results/evaluation): all five tables on what is available offline,
# each stage on the images its checkpoints were made for.
PLANS: dict[str, tuple[tuple[str, ...], ...]] = {
    "offline": (
        ("--images", "photos", "--backbones",
         "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2",
         "--tables", "similarity,runtime,modvid"),
        # ScoreCAM left out here: 100 crops × 2 models × ~12 s on a 2-core CPU (it is in the
        # synthetic pairs below).
        ("--images", "crops:100", "--pairs", "clean:sham-efficientnet_lite0", "--methods",
         "GradCAM,GradCAM++,EigenCAM,HiResCAM,XGradCAM,MeanDiffGradCAM,MaxDiffGradCAM,"
         "LSEDiffGradCAM,MeanDiffGradCAM++,MaxDiffGradCAM++,LSEDiffGradCAM++",
         "--tables", "susceptibility"),
        ("--images", "synthetic:binary:500", "--pairs",
         "synthetic-binary-clean:synthetic-binary-sham,"
         "synthetic-binary-clean:synthetic-binary-sham-meandiff",
         "--tables", "susceptibility,training", "--seeds", "3", "--holdouts", "triangle",
         "--training-steps", "400"),
    ),
}
# What a user's command line may still set when it runs a plan.
PLAN_OVERRIDES = ("out", "limit", "device", "batch", "seeds", "training_steps")


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
    parser.add_argument("--plan", choices=sorted(PLANS),
                        help="run a named set of stages instead (offline: the published report, "
                             "every table on what ships with the packages); --out, --limit, "
                             "--device, --batch, --seeds and --training-steps still apply")


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


def plan_stages(args: argparse.Namespace) -> list[tuple[argparse.Namespace, str]]:
    """(arguments, command line) of each stage: the plan's, or the command line as given."""
    if not args.plan:
        return [(args, launch_command(["-m", "cams", *sys.argv[1:]]))]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    stages = []
    for stage in PLANS[args.plan]:
        given = {name: getattr(args, name) for name in PLAN_OVERRIDES
                 if getattr(args, name) != parser.get_default(name)}
        stage_args = parser.parse_args(list(stage))
        for name, value in given.items():
            setattr(stage_args, name, value)
        extra = [f"--{name.replace('_', '-')}={value}" for name, value in given.items()
                 if name != "out"]
        stages.append((stage_args, launch_command(["-m", "cams", "evaluate", *stage, *extra,
                                                   "--out", str(args.out)])))
    return stages


def run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evaluation.report import build_report

    stages = [(config_from(stage), command) for stage, command in plan_stages(args)]
    # Under torchrun: one process group for the whole run; the processes only meet at the end of
    # each stage, so a slow shard may keep the others waiting for long.
    device = join(args.device, timeout=timedelta(hours=48))
    main = current().main
    bars: dict[str, tqdm] = {}

    def progress(what: str, done: int, total: int | None) -> None:
        if what not in bars:
            bars[what] = tqdm(total=total, desc=what, unit="image" if total is None else "step",
                              dynamic_ncols=True)
        bars[what].n = done
        bars[what].refresh()

    try:
        for config, command in stages:
            config.device = device
            if len(stages) > 1 and main:
                print(command, flush=True)
            run_all(config, progress)
            if main:
                report = build_report(config.out, command)
    finally:
        for bar in bars.values():
            bar.close()
        leave()
    if main:
        print(f"wrote {report}")
    return 0
