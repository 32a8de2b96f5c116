"""What every command shares: the runner, and the errors' fixes worded as this command line's flags.

A user's mistake ends with one line on stderr and exit code 2, no traceback; the engine's errors
name what to give (``cams.errors``) and ``cli_words`` says it once, as a flag.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import torch

from cams import __version__
from cams.errors import (
    BACKBONE,
    BATCH_SIZE,
    CLASS_NAMES,
    DEVICE,
    FALSE_CLASS,
    IMAGES,
    INPUT_SIZE,
    LAYER,
    MEAN,
    METHODS,
    STD,
    TARGET,
    WEIGHTS,
    Fix,
    UserInputError,
)

EXIT_BAD_INPUT = 2
Registrar = Callable[[argparse._SubParsersAction], None]
# The engine's inputs as this command line's flags (and what follows each flag).
FLAGS = {BACKBONE: ("--backbone", "NAME"), WEIGHTS: ("--weights", "FILE"),
         LAYER: ("--layer", "MODULE"), INPUT_SIZE: ("--input-size", "PIXELS"),
         MEAN: ("--mean", "R G B"), STD: ("--std", "R G B"),
         CLASS_NAMES: ("--class-names", "FILE"), TARGET: ("--target", "CLASS"),
         FALSE_CLASS: ("--false-class", "CLASS"), METHODS: ("--methods", "NAMES"),
         DEVICE: ("--device", "DEVICE"), BATCH_SIZE: ("--batch-size", "N"),
         IMAGES: ("--example", "NAME"), "resume": ("--resume", "")}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def setting_flag(name: str) -> tuple[str, str] | None:
    """The flag of a training or evaluation setting called ``name`` (``fooling.settings``)."""
    from cam_studio.commands.options import flag_of
    from cam_studio.evaluation.config import EvaluationConfig
    from fooling.config import TrainConfig
    for config in (TrainConfig, EvaluationConfig):
        if name in config.__dataclass_fields__:
            return flag_of(config, name), name.upper()
    return None


def cli_words(fix: Fix) -> str:
    """A fix as this command line says it: ``pass --weights FILE (a .safetensors file)``."""
    flag = FLAGS.get(fix.input) or (setting_flag(fix.input) if fix.input else None)
    if flag is None:
        return fix.neutral()
    option, metavar = flag
    if fix.value is not None:
        return f"pass {option} {fix.value}" + (f" ({fix.detail})" if fix.detail else "")
    return f"pass {' '.join(filter(None, (option, metavar)))}" + (
        f" ({fix.detail})" if fix.detail else "")


def run_command_line(prog: str, description: str, registrars: Sequence[Registrar],
                     argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` with the sub-commands each registrar adds (each sets ``run``), run the
    chosen one, and turn a user's mistake into one line on stderr and exit code 2."""
    parser = OneLineParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for register in registrars:
        register(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserInputError as error:
        print(f"error: {error.worded(cli_words)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except torch.cuda.OutOfMemoryError:
        print("error: out of GPU memory: use a smaller --batch-size, or --device cpu",
              file=sys.stderr)
        return 1
