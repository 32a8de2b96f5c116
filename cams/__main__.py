"""``python -m cams explain|methods|backbones|evaluate|bench``.

The engine's own commands, plus the evaluation's and the benchmarks' (the one place the engine
package reaches up the layers: a command line gathers what sits above it).
"""

import sys

from benchmarks.cli import add_engine_commands as add_benchmark_commands
from cams.cli import add_commands, run_command_line
from evaluation.cli import add_commands as add_evaluation_commands


def main() -> int:
    """``python -m cams`` and the ``cams`` console script."""
    return run_command_line("python -m cams", "Explain images with every CAM method, reproduce the "
                            "papers' tables, and benchmark the engine.",
                            [add_commands, add_evaluation_commands, add_benchmark_commands])


if __name__ == "__main__":
    sys.exit(main())
