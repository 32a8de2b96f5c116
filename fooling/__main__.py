"""``python -m fooling sham|train|list|check|bench`` (``bench`` is the benchmarks' command: a
command line gathers what sits above it)."""

import sys

from benchmarks.cli import add_training_commands
from cams.cli import run_command_line
from fooling.cli import __doc__ as description
from fooling.cli import add_commands


def main() -> int:
    """``python -m fooling`` and the ``fooling`` console script."""
    return run_command_line("python -m fooling", description.splitlines()[0],
                            [add_commands, add_training_commands])


if __name__ == "__main__":
    sys.exit(main())
