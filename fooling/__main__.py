"""``python -m fooling`` is now ``python -m cam_studio``: the same commands, behind one entry point."""

import sys

if __name__ == "__main__":
    print("error: the command lines moved: run python -m cam_studio "
          + " ".join(sys.argv[1:] or ["--help"]), file=sys.stderr)
    sys.exit(2)
