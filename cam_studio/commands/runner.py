"""What every command shares: the runner. A user's mistake ends with one line on stderr and exit
code 2, no traceback; the engine's errors name what to give (``cams.errors``) and
``cam_studio.commands.options.cli_words`` says it once, as a flag.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

import torch

from cam_studio.commands.options import cli_words
from cam_studio.tabs.logs import LOG_LEVELS, start_logging
from cams import __version__
from cams.errors import (
    UserInputError,
)

EXIT_BAD_INPUT = 2
Registrar = Callable[[argparse._SubParsersAction], None]
log = logging.getLogger("cam_studio.commands")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def run_command_line(prog: str, description: str, registrars: Sequence[Registrar],
                     argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` with the sub-commands each registrar adds (each sets ``run``), run the
    chosen one, and turn a user's mistake into one line on stderr and exit code 2."""
    parser = OneLineParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="WARNING", type=str.upper, choices=LOG_LEVELS,
                        help="what the command logs to stderr (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for register in registrars:
        register(commands)
    args = parser.parse_args(argv)
    start_logging(args.log_level)
    started = time.perf_counter()
    log.info("%s %s started", prog, args.command)
    try:
        code = args.run(args)
        log.info("%s %s ended in %.1f s (exit %s)", prog, args.command,
                 time.perf_counter() - started, code)
        return code
    except UserInputError as error:
        log.info("%s %s refused: %s", prog, args.command, error)
        print(f"error: {error.worded(cli_words)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (… | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except torch.cuda.OutOfMemoryError:
        print("error: out of GPU memory: use a smaller --batch-size, or --device cpu",
              file=sys.stderr)
        return 1
