"""``python -m cam_studio evaluate``: the papers' tables on your backbones, checkpoints and images.

    python -m cam_studio evaluate --images examples --backbones efficientnet_lite0 \\
        --pairs clean:sham-one-class-efficientnet_lite0 --out eval_out
    python -m cam_studio evaluate --model models.py:build --layer layer4 --tables sanity

(``--model``: your own ``nn.Module``, for the tables of backbones: similarity, run time, MOD/VID,
faithfulness, ROAD, sanity.)

Per-image rows are appended to ``OUT/records/`` as they are computed, so an interrupted run
resumes where it stopped (run the same command again); ``OUT/report.md`` links the tables (CSV and
Markdown) and plots. The options are ``EvaluationConfig``'s fields.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from cam_studio.commands.explain import add_model_options, add_own_model_option, own_model
from cam_studio.commands.options import add_options, flag_of, from_options, given_values
from cam_studio.data.distributed import current, join, launch_command, leave
from cam_studio.evaluation.config import PLAN_OVERRIDES, PLANS, EvaluationConfig
from cam_studio.evaluation.report import build_report
from cam_studio.evaluation.run import estimate_lines, planned_tables, run_all
from cam_studio.evaluation.tables import TABLES
from cams.errors import Fix, UserInputError


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``evaluate``."""
    evaluate = commands.add_parser("evaluate", help="reproduce the papers' tables (similarity, "
                                                    "susceptibility, run time, MOD/VID, training)")
    add_arguments(evaluate)
    evaluate.set_defaults(run=run_evaluate)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, EvaluationConfig)
    tables = next(action for action in parser._actions if action.dest == "tables")
    tables.help = tables.help.replace("comma list of tables", "comma list of "
                                      + ", ".join(TABLES))
    parser.add_argument("--plan", choices=sorted(PLANS),
                        help="run a named set of stages instead (offline: the published report, "
                             "every table on what ships with the packages); "
                             f"{', '.join(flag_of(EvaluationConfig, name) for name in PLAN_OVERRIDES)}"
                             " still apply")
    own = parser.add_argument_group("your own model (instead of --backbones)")
    add_own_model_option(own)
    add_model_options(own)


def plan_stages(args: argparse.Namespace) -> list[tuple[EvaluationConfig, str]]:
    """(config, command line) of each stage: the plan's, or the command line as given."""
    if not args.plan:
        return [(from_options(EvaluationConfig, args),
                 launch_command(["-m", "cam_studio", *sys.argv[1:]]))]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    given = {name: value for name, value in given_values(EvaluationConfig, args).items()
             if name in PLAN_OVERRIDES}
    out = given.pop("out", EvaluationConfig.out)
    extra = [f"{flag_of(EvaluationConfig, name)}={value}" for name, value in given.items()]
    return [(from_options(EvaluationConfig, parser.parse_args(list(stage)), **given, out=out),
             launch_command(["-m", "cam_studio", "evaluate", *stage, *extra, "--out", str(out)]))
            for stage in PLANS[args.plan]]


def run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    stages = plan_stages(args)
    models = {}
    if args.model:
        if args.plan:
            raise UserInputError("--plan runs the published report's backbones, not --model",
                                 Fix("plan", "left out"))
        backbone = own_model(args)
        models = {backbone.name: backbone}
        stages[0][0].backbones = [backbone.name]
    # Under torchrun: one process group for the whole run; the processes only meet at the end of
    # each stage, so a slow shard may keep the others waiting for long.
    device = join(args.device, timeout=timedelta(hours=48))
    main = current().main
    bars: dict[str, tqdm] = {}

    def progress(what: str, done: int, total: int | None) -> None:
        if what not in bars:
            bars[what] = tqdm(total=total, desc=what, dynamic_ncols=True)
        bars[what].n = done
        bars[what].refresh()

    try:
        for config, command in stages:
            config.device = device
            if len(stages) > 1 and main:
                print(command, flush=True)
            if main:
                for line in estimate_lines(config, planned_tables(config)):
                    print(line, flush=True)
            run_all(config, progress, models=models)
            if main:
                report = build_report(config.out, command)
    finally:
        for bar in bars.values():
            bar.close()
        leave()
    if main:
        print(f"wrote {report}")
    return 0
